"""On a CUDA GPU (tests marked ``gpu``, which ``make gpu-check`` runs there and conftest.py skips elsewhere): a run,
coarse to fine, a batched sweep, every precision and W&B offline. On the CPU: ``styleexp-gpu-check`` without a GPU,
its tables and verdicts from made-up results, and the float16 weights that travel to a lent GPU.

The GPU tests use VGG-19 Caffe weights alone and leave other evaluators out: they are what travels there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from styleexp import weights
from styleexp.bench import gpu, gpu_tables
from styleexp.images import load_image

from .conftest import compose_config, job_folders, require_weights, run_in_process, summary
from .test_speed import TOLERANCE

TINY = ["size=64", "steps=5"]
QUIET = ["logger=none", "measures.networks=[]"]
# As tests/test_speed.py's small case, on VGG-19: two blocks, Adam, a few steps.
SMALL = ["logger=none", "optim=adam", "size=64", "steps=8", "seed=2", "measures.networks=[]",
         "style_layers.layers=[relu1_1,relu2_1]", "content_layer=relu2_1"]  # fmt: skip


@pytest.fixture
def vgg19() -> None:
    require_weights("vgg19", "caffe")


def on_the_gpu(facts: dict) -> None:
    """``facts`` (a summary) say the run worked on this machine's GPU and measured its memory there."""
    assert facts["status"] == "completed", facts["message"]
    assert facts["device"] == torch.cuda.get_device_name(0)
    assert facts["peak_memory_kind"] == "cuda max allocated" and facts["peak_memory_mb"] > 0


@pytest.mark.gpu
def test_a_run_on_the_gpu_says_so_and_moves_the_image(tmp_path, vgg19):
    run_dir = tmp_path / "solo"
    run_in_process(run_dir, *TINY, "init=content", "logger=none", "measures.networks=[vgg19_caffe]")
    facts = summary(run_dir)
    on_the_gpu(facts)
    assert facts["losses"]["loss/total"] < facts["initial_losses"]["loss/total"]
    moved = (load_image(run_dir / "final.png") - load_image(run_dir / "content.png")).abs()
    assert moved.max() > 0.05
    assert np.isfinite(facts["measures"]["style/gram"])


@pytest.mark.gpu
def test_coarse_to_fine_on_the_gpu_with_total_variation(tmp_path, vgg19):
    assert compose_config().loss.tv > 0  # the default, which every scale's image pays
    run_dir = tmp_path / "scales"
    run_in_process(run_dir, "steps=5", *QUIET, "scales=[64,128]", "size=128")
    facts = summary(run_dir)
    on_the_gpu(facts)
    assert [scale["size"] for scale in facts["scales"]] == [64, 128] and max(facts["image_size"]) == 128
    assert facts["losses"]["loss/tv"] > 0


@pytest.mark.gpu
def test_a_batched_sweep_on_the_gpu_gives_each_job_its_folder(tmp_path, vgg19, cli):
    sweep_dir = tmp_path / "sweep"
    styles = "style=checkers,dark_circle,rainbow_circles"
    done = cli("-m", "hydra/launcher=batched", "content=null", styles, *TINY, *QUIET, f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 0, done.stderr
    jobs = job_folders(sweep_dir)
    assert len(jobs) == 3
    for job in jobs:
        facts = summary(sweep_dir / job)
        on_the_gpu(facts)
        assert sorted(facts["batch"]) == jobs and (sweep_dir / job / "final.png").is_file()


@pytest.fixture(scope="module")
def fp32_image(tmp_path_factory) -> torch.Tensor:
    require_weights("vgg19", "caffe")
    run_dir = tmp_path_factory.mktemp("fp32") / "run"
    run_in_process(run_dir, *SMALL, "speed.precision=fp32")
    on_the_gpu(summary(run_dir))
    return load_image(run_dir / "final.png")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_every_precision_runs_on_the_gpu_and_gives_the_fp32_image_within_tolerance(tmp_path, fp32_image, precision):
    run_dir = tmp_path / precision
    run_in_process(run_dir, *SMALL, f"speed.precision={precision}")
    on_the_gpu(summary(run_dir))
    difference = (load_image(run_dir / "final.png") - fp32_image).abs()
    # bfloat16's tolerance bounds TF32 too, which keeps more mantissa bits (10 to bfloat16's 7).
    largest, mean = TOLERANCE["speed.precision=bf16"]
    assert difference.max() <= largest and difference.mean() <= mean, (difference.max(), difference.mean())


@pytest.mark.gpu
def test_a_run_on_the_gpu_keeps_an_offline_wandb_run(tmp_path, vgg19, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the logger's default: offline
    run_dir = tmp_path / "tracked"
    run_in_process(run_dir, *TINY, "measures.networks=[]")
    on_the_gpu(summary(run_dir))
    assert list((run_dir / "wandb").glob("offline-run-*"))


def test_the_gpu_check_without_a_gpu_says_so_in_one_line_and_exits_2(cli, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    done = cli(main=gpu.main)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "styleexp-gpu-check: no CUDA GPU here; run it on a GPU machine (make gpu-check)\n"


def test_the_gpu_check_refuses_a_budget_of_nothing_in_one_line(cli):
    done = cli("--budget", "0", main=gpu.main)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "positive" in done.stderr


def made_up_results(tmp_path) -> dict:
    """What the check would find on an H200 where everything went well but the last benchmark size ran out of time."""
    bench = [
        {
            "size": size,
            "precision": precision,
            "mode": "pipeline",
            "seconds_per_step": 0.0123,
            "passes_per_step": 1.13,
            "peak_memory_mb": 812.4,
            "of_peak": 0.4,
        }  # fmt: skip
        for size in (256, 512)
        for precision in gpu_tables.PRECISIONS
    ] + [{"size": 1024, "precision": precision, "error": "out of time"} for precision in gpu_tables.PRECISIONS]
    batched, basic = tmp_path / "batched", tmp_path / "basic"
    for k in range(1, gpu_tables.SWEEP_JOBS + 1):
        for folder in (batched, basic):
            image = np.full((8, 8, 3), 100, dtype=np.uint8)
            image[0, 0, 0] += 3 * (k == 5 and folder == batched)  # one channel of one pixel, 3 levels off
            (folder / f"style_layers.first={k}").mkdir(parents=True)
            Image.fromarray(image).save(folder / f"style_layers.first={k}" / "final.png")
    sweep = {"completed": 13, "exit_code": 0, "command": "styleexp -m ..."}
    return {
        "machine": {
            "gpu": "NVIDIA H200",
            "capability": "9.0",
            "memory_gib": 139.8,
            "torch": "2.11.0",
            "cuda": "13.0",
            "cudnn": 91000,
            "date": "2026-12-05T10:11:12",
            "weights": {"dtype": "float16"},
        },  # fmt: skip
        "tests": {
            "exit_code": 0,
            "seconds": 41.2,
            "passed": 9,
            "failed": 0,
            "errors": 0,
            "skipped": 0,
            "failed_tests": [],
        },  # fmt: skip
        "bench": {
            "mode": "pipeline",
            "steps": 30,
            "results": bench,
            "runs": [
                {"seconds": 40.0, "conv_flop_per_s": 4.9e13},
                {"seconds": 50.0, "conv_flop_per_s": 5.1e13},
                {"seconds": 0.0},
            ],
        },  # fmt: skip
        "sweep": {
            "steps": 10,
            "batched": {**sweep, "seconds": 12.34, "batch_sizes": [13]},
            "basic": {**sweep, "seconds": 40.0, "batch_sizes": [1]},
            "comparison": gpu.compare_finals(batched, basic),
        },  # fmt: skip
        "seconds": 281.0,
    }


def test_the_check_writes_its_results_and_tables_from_made_up_results(tmp_path):
    results = made_up_results(tmp_path)
    comparison = results["sweep"]["comparison"]
    assert comparison["passed"] and comparison["largest"] == 3 and comparison["largest_mean"] == 0.0156
    paths = gpu_tables.write_results(results, ["$ pytest -m gpu", "9 passed"], tmp_path / "out")
    assert {path.name for path in paths.values()} == {f"2026-12-05_10-11-12_NVIDIA-H200.{suffix}" for suffix in
                                                      ("json", "md", "log")}  # fmt: skip
    assert json.loads(paths["json"].read_text()) == results
    table = paths["md"].read_text()
    assert table.startswith("## Measured on a GPU: NVIDIA H200 (2026-12-05)")
    assert "| 256 | tf32 | 12.3 | 1.13 | 812 | 40% |" in table and "| 1024 | bf16 | out of time | | | |" in table
    assert "reference ran at 49-51 TFLOP/s" in table and "from a float16 file" in table
    assert "| batched | 13 of 13 | 13 | 12.3 |" in table and "| basic (one by one) | 13 of 13 | 1 | 40.0 |" in table
    assert "largest difference 3 levels of 255 (style_layers.first=5)" in table and ": pass." in table
    assert gpu_tables.verdict(results, "bench") == "6 of 9 cases in 90 s"
    assert gpu_tables.verdict(results, "tests") == "9 passed, 0 failed, 0 errors, 0 skipped in 41 s"
    assert not gpu_tables.passed(results)  # three cases not measured
    for result in results["bench"]["results"][6:]:
        del result["error"]
        result.update(seconds_per_step=0.05, passes_per_step=1.1)
    assert gpu_tables.passed(results)


def test_junit_counts_tell_passed_from_failed_and_skipped(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.test_gpu" name="a"/><testcase classname="tests.test_gpu" name="b"><failure/>'
        '</testcase><testcase classname="tests.test_gpu" name="c"><skipped/></testcase>'
        '<testcase classname="tests.test_gpu" name="d"/></testsuite></testsuites>'
    )
    assert gpu.junit_counts(report) == {
        "passed": 2, "failed": 1, "errors": 0, "skipped": 1, "failed_tests": ["tests.test_gpu::b"]
    }  # fmt: skip


def test_the_float16_weights_copy_is_read_as_float32_and_recorded_as_itself(tmp_path):
    original = require_weights("vgg16", "caffe")
    copy = gpu.write_half_weights(tmp_path, "vgg16", "caffe")
    assert copy.name == original.name and copy.stat().st_size < 0.55 * original.stat().st_size
    loaded, reference = weights.load_weights("vgg16", "caffe", directory=tmp_path), weights.load_weights("vgg16")
    assert loaded.path == copy and weights.file_sha256(copy) != weights.file_sha256(original)
    for key, value in reference.state_dict.items():
        assert loaded.state_dict[key].dtype == torch.float32
        torch.testing.assert_close(loaded.state_dict[key], value, rtol=1e-3, atol=1e-4)


def test_a_command_out_of_time_is_ended_with_the_processes_it_started():
    log = []
    # The background sleep holds the output pipe: had it outlived its shell, reading the output would wait for it.
    code, seconds = gpu.run_command(["bash", "-c", "echo started; sleep 30 & sleep 30"], 0.5, log)
    assert code is None and seconds < 5
    assert "started" in log[0] and "[exit code None" in log[0]


def test_the_bundle_carries_what_a_lent_machine_lacks_and_nothing_it_has():
    from styleexp.bench import bundle

    carried = bundle.carried()
    assert {"hydra-core", "omegaconf", "antlr4-python3-runtime", "wandb", "pydantic", "pydantic-core"} <= set(carried)
    assert not set(carried) & (bundle.THERE | {"torch", "pytorch-lightning", "numpy", "pillow", "styleexp"})
