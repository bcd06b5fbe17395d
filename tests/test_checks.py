"""Settings that cannot work are refused before any work, with one line naming the setting."""

from __future__ import annotations

import pytest

from styleexp.errors import UserError

from .conftest import run_in_process, summary

BAD = [
    (["optim=lbfgs", "optim.lr=0"], "optim.lr=0.0 must be a finite number above 0"),
    (["optim=adam", "optim.lr=-1"], "optim.lr=-1.0 must be a finite number above 0"),
    (["optim=lbfgs", "optim.history_size=0"], "optim.history_size=0 must be a whole number of at least 1"),
    (["threads=-1"], "threads=-1 must be a whole number of at least 1"),
    (["size=0"], "size=0 must be a whole number of at least 1"),
    (["steps=[5,0]", "scales=[16,32]"], "steps=0 must be a whole number of at least 1"),
    (["loss.style=-1"], "loss.style=-1.0 must be a finite number of at least 0"),
    (["loss.style=nan"], "loss.style=nan must be a finite number of at least 0"),
    (["loss.content=0", "loss.style=0", "loss.tv=0"], "every loss is 0, so there is nothing to optimise"),
    (["loss.tv=inf"], "loss.tv=inf must be a finite number of at least 0"),
    (["stop.window=0"], "stop.window=0 must be a whole number of at least 1"),
    (["content=${oops}"], "content: Interpolation key 'oops' not found; fix the ${...} in that setting"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_a_setting_that_cannot_work_fails_before_any_work_with_one_line(tmp_path, overrides, expected):
    run_dir = tmp_path / "run"
    result = run_in_process(run_dir, "logger=none", "size=32", "steps=2", "measures.networks=[]", *overrides)
    assert result.status == "failed" and isinstance(result.error, UserError) and result.exit_code == 2
    assert expected in str(result.error) and "\n" not in str(result.error)
    assert summary(run_dir)["status"] == "failed" and sorted(p.name for p in run_dir.iterdir()) == [
        ".claim",
        "summary.json",
    ]


def test_good_settings_pass_the_checks(tmp_path):
    result = run_in_process(
        tmp_path / "run", "logger=none", "size=32", "steps=1", "measures.networks=[]", "loss.tv=0", "threads=1"
    )
    assert result.status == "completed"
