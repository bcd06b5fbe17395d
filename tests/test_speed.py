"""Speed switches give the fp32 image within stated tolerances; automatic precision picks bf16 only where it pays; the
benchmark writes well-formed results."""

from __future__ import annotations

import json

import pytest
import torch

from styleexp import bench, speed
from styleexp.images import load_image

from .conftest import require_weights, run_in_process, summary

# Two blocks of VGG-16 are enough to tell a switch that changes the image, and compile in seconds.
SHALLOW = ["style_layers.layers=[relu1_1,relu2_1]", "content_layer=relu2_1"]
SMALL = ["logger=none", "network=vgg16", "optim=adam", "size=32", "steps=8", "trainer=cpu", "seed=2",
         "measures.networks=[]", "speed.precision=fp32", *SHALLOW]  # fmt: skip
# Largest and mean difference from the fp32 image, in [0, 1] pixel units. Another summation order
# (memory layout, compiled kernels) moves pixels by float32 rounding, less than one 8-bit level;
# bfloat16 keeps 8 bits of mantissa, so a few pixels move visibly but the image as a whole does not.
TOLERANCE = {
    "speed.channels_last=true": (1 / 255, 1e-3),
    "speed.compile=true": (1 / 255, 1e-3),
    "speed.precision=bf16": (0.25, 0.01),
}


@pytest.fixture(scope="module")
def fp32_image(tmp_path_factory):
    require_weights("vgg16", "caffe")
    run_dir = tmp_path_factory.mktemp("fp32") / "run"
    assert run_in_process(run_dir, *SMALL).status == "completed"
    return load_image(run_dir / "final.png"), summary(run_dir)["losses"]["loss/total"]


@pytest.mark.parametrize(
    "switch",
    [
        "speed.channels_last=true",
        pytest.param("speed.compile=true", marks=pytest.mark.slow),  # seconds of compilation
        "speed.precision=bf16",
    ],
)
def test_every_speed_switch_gives_the_fp32_image_within_tolerance(tmp_path, fp32_image, switch):
    reference, reference_loss = fp32_image
    result = run_in_process(tmp_path / "run", *SMALL, switch)
    assert result.status == "completed", result.message
    image = load_image(tmp_path / "run" / "final.png")
    difference = (image - reference).abs()
    print(f"{switch}: largest pixel difference {difference.max():.4f}, mean {difference.mean():.5f}")
    largest, mean = TOLERANCE[switch]
    assert difference.max() <= largest and difference.mean() <= mean
    assert summary(tmp_path / "run")["losses"]["loss/total"] == pytest.approx(reference_loss, rel=0.05)


@pytest.mark.parametrize(
    ("supported", "speedup", "expected"), [(False, 2.0, "fp32"), (True, 0.8, "fp32"), (True, 1.6, "bf16")]
)
def test_automatic_precision_runs_bf16_only_where_supported_and_faster_and_the_summary_says_which(
    tmp_path, monkeypatch, fp32_image, supported, speedup, expected
):
    monkeypatch.setattr(speed, "bf16_supported", lambda device: supported)
    monkeypatch.setattr(speed, "bf16_speedup", lambda device: speedup)
    result = run_in_process(tmp_path / "run", *SMALL, "speed.precision=auto")
    assert result.status == "completed", result.message
    assert summary(tmp_path / "run")["precision"] == expected
    image = load_image(tmp_path / "run" / "final.png")
    assert torch.equal(image, fp32_image[0]) == (expected == "fp32")  # bf16 moves some pixels; fp32 none


def test_the_bf16_speedup_is_measured_on_the_device():
    assert speed.bf16_speedup(torch.device("cpu")) > 0
    assert speed.resolve("fp32", torch.device("cpu")) == "fp32"


@pytest.mark.slow
def test_the_benchmark_runs_a_tiny_case_and_writes_well_formed_results(tmp_path, cli, monkeypatch):
    require_weights("vgg16", "caffe")
    out = tmp_path / "bench.json"
    # The bare loop in this process rather than one of its own (which only keeps its peak memory apart).
    monkeypatch.setattr(bench, "run_bare", bench.cases.bare)
    done = cli("--networks", "vgg16", "--optimizers", "lbfgs", "--sizes", "32", "--steps", "4", "--device", "cpu",
               "--modes", "bare", "end-to-end", "--out", str(out), main=bench.main)  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["machine"]["conv_flop_per_s"] > 0 and results["machine"]["threads"] >= 1
    cases = {(r["optimizer"], r["mode"]): r for r in results["results"]}
    assert set(cases) == {("lbfgs", "bare"), ("lbfgs", "end-to-end")}
    assert cases["lbfgs", "end-to-end"]["median_seconds_per_step"] > 0
    assert cases["lbfgs", "end-to-end"]["seconds_to_first_step"] > 1  # a new process: imports, weights, targets
    for case in cases.values():
        assert case["seconds_per_step"] > 0 and case["peak_memory_mb"] > 0 and case["flops_per_step"] > 0
        assert 0 < case["of_peak"] and case["passes_per_step"] >= 1
    assert "| vgg16 | gram | lbfgs | 32 | fp32 | - | bare |" in done.stdout and "| end-to-end |" in done.stdout
