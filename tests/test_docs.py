"""The docs' code works: every ``styleexp`` command line in them composes, and each worked example of
docs/extending.md runs as written, then serves a run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from styleexp.cli import CONFIG_DIR

from .conftest import require_weights

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a Markdown page."""
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def commands() -> list[tuple[str, list[str]]]:
    """Every ``styleexp`` command line of the pages' bash blocks: where it is, and its arguments."""
    found = []
    for page in PAGES:
        for block in blocks(page, "bash"):
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["styleexp"] and not {"--help", "--cfg"} & set(words):
                    found.append((f"{page.name}: {line.strip()}", words[1:]))
    return found


def first_values(arguments: list[str]) -> list[str]:
    """The overrides of one job of a command: each swept key at its first value (a glob at the group's first option)."""
    overrides = []
    for override in OverridesParser.create().parse_overrides([a for a in arguments if a != "-m"]):
        key = override.get_key_element()
        if not override.is_sweep_override():
            overrides.append(f"{key}={override.get_value_element_as_str()}")
        elif "glob(" not in override.input_line:
            overrides.append(f"{key}={next(iter(override.sweep_string_iterator()))}")
    return overrides


def test_the_docs_hold_commands_to_check():
    assert len(commands()) > 20


@pytest.mark.slow
@pytest.mark.parametrize("where, arguments", commands(), ids=[where for where, _ in commands()])
def test_every_command_in_the_docs_composes(where, arguments):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        compose("config", overrides=first_values(arguments), return_hydra_config=True)


RUNS = textwrap.dedent(
    """
    import json, pathlib, sys
    from styleexp.cli import EXPERIMENTS_DIR, app
    from styleexp.rundir import read_summary

    tmp = pathlib.Path(sys.argv[1])
    tiny = ["size=32", "steps=3", "logger=none", "measures.networks=[]"]
    runs = {
        "statistic": ["content=null", "style=checkers", "gram=channel_mean"],
        "term": ["loss.mean_colour=10"],
        "network": ["network=vgg11", "network.weights=random"],
        "evaluator": ["measures.networks=[mean_rgb]"],
        "optimiser": ["optim=sgd", "optim.momentum=0.5"],
        "init": ["init=grey"],
    }
    ended = {}
    for kind, overrides in runs.items():
        sys.argv = ["styleexp", *tiny, *overrides, f"hydra.run.dir={tmp / kind}"]
        try:
            app()
        except SystemExit as done:
            ended[kind] = done.code
    sys.argv = ["styleexp", *tiny, "study=pooling_texture", f"hydra.sweep.dir={tmp / 'study'}",
                f"hydra.searchpath=[file://{EXPERIMENTS_DIR},file://{tmp / 'experiments'}]"]
    try:
        app()
    except SystemExit as done:
        ended["study"] = done.code
    summaries = {kind: read_summary(tmp / kind) for kind in runs}
    summaries["study"] = {job.name: read_summary(job) for job in sorted((tmp / "study").glob("pooling=*"))}
    print(json.dumps({"ended": ended, "summaries": summaries}))
    """
)


@pytest.mark.slow
def test_each_worked_example_of_extending_runs_as_written(tmp_path):
    require_weights("vgg19", "caffe")
    page = ROOT / "docs" / "extending.md"
    examples = blocks(page, "python")
    assert len(examples) == 6 and len(blocks(page, "yaml")) == 1
    study = tmp_path / "experiments" / "study" / "pooling_texture.yaml"
    study.parent.mkdir(parents=True)
    study.write_text(blocks(page, "yaml")[0])
    # Each example in a new process, before styleexp builds its config schema: as if it were in its file.
    script = "\n\n".join([*examples, RUNS])
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["ended"] == {}, done.stderr[-3000:]
    summaries = found["summaries"]
    for kind in ("statistic", "term", "network", "evaluator", "optimiser", "init"):
        assert summaries[kind]["status"] == "completed", (kind, summaries[kind])
    assert summaries["statistic"]["choices"]["gram"] == "channel_mean"
    assert summaries["term"]["losses"]["loss/mean_colour"] > 0
    assert (
        summaries["network"]["weights"]["network"] == "vgg11" and summaries["network"]["style_layers"][-1] == "relu5_1"
    )
    assert summaries["evaluator"]["measures"]["style/mean_rgb"] > 0
    assert summaries["optimiser"]["choices"]["optim"] == "sgd"
    assert summaries["init"]["initial_losses"]["loss/tv"] == 0  # it started flat
    assert sorted(summaries["study"]) == ["pooling=avg", "pooling=max"]
    assert all(job["status"] == "completed" for job in summaries["study"].values())
