"""A run's and a report's W&B record stand on their own: read back from the offline run files, as `wandb sync` would
upload them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import wandb

from styleexp import wandb_record
from styleexp.report import wandb_charts
from styleexp.report.cli import main as report_command
from styleexp.report.inference import spread
from styleexp.report.load import Run
from styleexp.weights import file_sha256

from .conftest import (
    job_folders,
    job_in,
    launch,
    require_weights,
    shared_image,
    summary,
    wandb_records,
    wandb_run_record,
    wandb_summary,
)

TINY = ["size=32", "steps=3", "logger=wandb", "measures.networks=[vgg19_caffe]"]


def test_absolute_paths_in_a_text_become_relative_to_the_working_folder():
    here = Path.cwd()
    text = f"done: {here}/outputs/runs/a/final.png (3 steps; loss/total 2e+08), {here.parent}/shared/x.jpg"
    assert wandb_record.portable(text) == "done: outputs/runs/a/final.png (3 steps; loss/total 2e+08), ../shared/x.jpg"
    assert wandb_record.portable(f"style=[{here}/a.jpg,checkers]") == "style=[a.jpg,checkers]"
    untouched = "see https://wandb.ai/a/b, ../shared/x.jpg, relu4_2 and 1/2"
    assert wandb_record.portable(untouched) == untouched


def test_the_config_holds_inputs_relative_with_their_sha256_and_the_evaluators(tmp_path):
    photo, painting = shared_image("tubingen.jpg"), shared_image("starry_night.jpg")
    job = job_in(
        tmp_path / "run",
        f"content={photo}",
        f"style=[{painting},checkers]",
        "init=image",
        f"init.path={photo}",
        "measures.networks=[vgg19_caffe,ssim]",
    )
    config = wandb_record.config(job)
    assert config["content"] == os.path.relpath(photo) and not Path(config["content"]).is_absolute()
    assert config["content_sha256"] == file_sha256(photo)
    assert config["style"] == [os.path.relpath(painting), "checkers"]
    assert config["style_sha256"] == [file_sha256(painting), None]  # a sample is its name
    assert config["init"]["path"] == os.path.relpath(photo) and config["init"]["path_sha256"] == file_sha256(photo)
    assert config["overrides"]["content"] == os.path.relpath(photo)
    assert config["measures"] == {"networks": ["vgg19_caffe", "ssim"]}
    assert str(Path.cwd().parent) not in json.dumps(config)  # no absolute path of this machine anywhere
    assert wandb_record.tags(job, "transfer") == ["gram:gram", "network:vgg19", "mode:transfer"]
    assert wandb_record.job_type() == "run"


def test_native_charts_hold_the_means_the_page_draws_and_the_loss_curves(tmp_path):
    keys = {"style": ["a", "b"], "gram": ["gram", "centered"], "seed": ["0", "1"]}
    runs = [
        Run(f"{style}-{gram}-{seed}", tmp_path, {"style": style, "gram": gram, "seed": seed},
            {"status": "completed"}, {"style/gram": 1.0 + keys["gram"].index(gram) + int(seed) / 10})
        for style in keys["style"] for gram in keys["gram"] for seed in keys["seed"]
    ]  # fmt: skip
    chart = wandb_charts.measure_chart(runs, keys, ["style", "gram"], "style/gram", "gram")
    assert chart.spec.spec_name == "wandb/line/v0" and chart.spec.fields == {"x": "x", "y": "mean", "stroke": "line"}
    assert "x: 0 gram, 1 centered" in chart.spec.string_fields["title"]
    rows = [dict(zip(chart.table.columns, row)) for row in chart.table.data]
    assert [(row["line"], row["value"], row["x"], row["runs"]) for row in rows] == [
        ("style=a", "gram", 0, 2), ("style=a", "centered", 1, 2),
        ("style=b", "gram", 0, 2), ("style=b", "centered", 1, 2),
    ]  # fmt: skip
    assert (rows[1]["mean"], rows[1]["low"], rows[1]["high"]) == spread([2.0, 2.1])
    seeds = wandb_charts.measure_chart(runs, keys, ["seed"], "style/gram", "seed")
    assert [row[1] for row in seeds.table.data] == [0.0, 1.0]  # numbers as themselves, no positions in the title
    assert "x:" not in seeds.spec.string_fields["title"]

    (tmp_path / "metrics.csv").write_text("step,loss/total\n1,1000\n10,10\n")
    losses = wandb_charts.loss_chart([(runs[0], "gram=gram")], "style=a")
    assert losses.spec.fields == {"x": "step", "y": "log10_loss_total", "stroke": "run"}
    assert losses.table.data == [[1, 1000.0, 3.0, "gram=gram"], [10, 10.0, 1.0, "gram=gram"]]


@pytest.mark.slow
def test_a_run_records_relative_inputs_its_costs_and_hashes_tags_and_its_folder_as_an_artifact(tmp_path):
    require_weights("vgg19", "caffe")
    photo, run_dir = shared_image("tubingen.jpg"), tmp_path / "run"
    assert launch(*TINY, f"content={photo}", f"hydra.run.dir={run_dir}") == 0
    wandb.teardown()  # the offline file flushed before it is read
    saved, record, records = summary(run_dir), wandb_summary(run_dir), wandb_records(run_dir)

    config = record["config"]
    assert config["content"] == os.path.relpath(photo) and config["content_sha256"] == file_sha256(photo)
    assert config["overrides"]["content"] == os.path.relpath(photo)
    assert config["measures"]["networks"] == ["vgg19_caffe"]
    # The same values as summary.json, read from it.
    final = record["summary"]
    for key in ("wall_time_s", "seconds_per_step", "peak_memory_mb", "device", "precision", "config_sha256"):
        assert final[key] == saved[key], key
    assert final["weights_sha256"] == saved["weights"]["sha256"]
    assert final["message"] == f"done: {os.path.relpath(run_dir / 'final.png')}"
    assert final["measure/style/gram"] == pytest.approx(saved["measures"]["style/gram"])

    run = next(r["run"] for r in records if r["type"] == "run")
    assert run["job_type"] == "run" and run["tags"] == ["gram:gram", "network:vgg19", "mode:transfer"]
    artifact = next(r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "run-folder")
    held = {item["path"]: item for item in artifact["manifest"]["contents"]}
    assert {"final.png", ".hydra/config.yaml", "summary.json", "metrics.csv", "content.png", "style.png"} <= set(held)
    # Staged inside the run folder (for `wandb sync`), as the files were once the run had ended.
    assert all(item["local_path"].startswith(str(run_dir / "wandb")) for item in held.values())
    staged = Path(held["summary.json"]["local_path"])
    assert json.loads(staged.read_text()) == saved
    metadata = json.loads(artifact["metadata"])
    assert metadata["overrides"] == [typed.replace(str(photo), os.path.relpath(photo)) for typed in saved["overrides"]]
    assert metadata["message"] == final["message"] and metadata["config_sha256"] == saved["config_sha256"]
    assert not any(path in artifact["metadata"] for path in ('"/', " /", "=/"))  # no absolute path in it


@pytest.mark.slow
def test_a_report_logs_native_charts_and_a_table_joined_to_the_runs_by_their_wandb_ids(tmp_path):
    require_weights("vgg19", "caffe")
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", "content=null", "style=checkers", "gram=gram,centered", *TINY, f"hydra.sweep.dir={sweep_dir}"]
    assert launch(*sweep) == 0
    assert launch(str(sweep_dir), "--no-validation", main=report_command) == 0
    wandb.teardown()

    runs = {job: wandb_run_record(sweep_dir / job) for job in job_folders(sweep_dir) if job != "report"}
    for job, run in runs.items():
        assert run["job_type"] == "sweep-job" and run["run_group"] == "sweep"
        assert f"gram:{job.removeprefix('gram=')}" in run["tags"] and "mode:synthesis" in run["tags"]
        assert summary(sweep_dir / job)["wandb"] == {
            "id": run["run_id"], "name": run["display_name"], "project": run["project"]
        }  # fmt: skip

    records = wandb_records(sweep_dir / "report")
    report_run = next(r["run"] for r in records if r["type"] == "run")
    assert report_run["job_type"] == "report" and report_run["run_group"] == "sweep"
    charts = {
        key.removeprefix("_wandb.visualize."): value["panel_config"]
        for r in records
        if r["type"] == "config"
        for key, value in r["config"]["update"].items()
        if key.startswith("_wandb.visualize.")
    }
    assert charts["measures/style/gram by gram"]["panelDefId"] == "wandb/line/v0"
    assert charts["measures/style/gram by gram"]["fieldSettings"] == {"x": "x", "y": "mean", "stroke": "line"}
    assert charts["losses/all runs"]["fieldSettings"] == {"x": "step", "y": "log10_loss_total", "stroke": "run"}
    history = json.dumps([r["history"] for r in records if r["type"] == "history"])
    assert '"report/measure_' not in history  # no chart as a picture

    files = sweep_dir / "report" / "wandb"
    table = json.loads(next(files.rglob("report/table_*.table.json")).read_text())
    logged = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert {(row["run"], row["wandb_id"], row["wandb_name"]) for row in logged} == {
        (job, run["run_id"], run["display_name"]) for job, run in runs.items()
    }
    losses = json.loads(next(files.rglob("losses/all runs_table_*.table.json")).read_text())
    assert {row[losses["columns"].index("run")] for row in losses["data"]} == {"gram=gram", "gram=centered"}
