"""Style blends, original colours, style scale and init images: each a config key that changes what a run computes."""

from __future__ import annotations

import pytest
import torch

from styleexp import colors, measures, preprocessing
from styleexp.build import build as build_run
from styleexp.build import spec_of
from styleexp.extractors.vgg import VGGFeatures
from styleexp.images import load_image
from styleexp.report import load_runs, table_rows
from styleexp.spec import Spec
from styleexp.statistics import STATISTICS
from styleexp.style_losses import make
from styleexp.targets import TargetCache, Targets
from styleexp.terms import mse
from styleexp.terms.style import Style
from styleexp.weights import random_state_dict
from tests.conftest import compose_config, require_weights, run_in_process, summary, wandb_summary

TINY = ["logger=none", "size=32", "measures.networks=[]", "stop.rtol=null"]
A, B = "checkers", "rainbow_circles"


def _final(run_dir) -> torch.Tensor:
    return load_image(run_dir / "final.png")


@pytest.mark.slow
def test_a_blend_ends_nearer_its_heavier_style_and_one_hot_blends_are_the_single_style_runs(tmp_path):
    require_weights("vgg19", "caffe")
    runs = {
        "a": [f"style={A}"],
        "b": [f"style={B}"],
        "a_of_blend": [f"style=[{A},{B}]", "style_blend=[1,0]"],
        "b_of_blend": [f"style=[{A},{B}]", "style_blend=[0,1]"],
        "mostly_a": [f"style=[{A},{B}]", "style_blend=[0.8,0.2]"],
        "mostly_b": [f"style=[{A},{B}]", "style_blend=[2,8]"],
    }
    for name, overrides in runs.items():
        logger = ["logger=wandb"] if name == "mostly_a" else []
        assert (
            run_in_process(tmp_path / name, *TINY, "steps=12", "content=null", *overrides, *logger).status
            == "completed"
        )
    record = wandb_summary(tmp_path / "mostly_a")  # each style image logged, the blend in the config
    assert {"images/style", "images/style_2"} <= set(record["summary"]) and record["config"]["style_blend"] == [
        0.8,
        0.2,
    ]
    assert torch.equal(_final(tmp_path / "a"), _final(tmp_path / "a_of_blend"))
    assert torch.equal(_final(tmp_path / "b"), _final(tmp_path / "b_of_blend"))
    assert summary(tmp_path / "mostly_b")["style_blend"] == pytest.approx([0.2, 0.8])
    assert torch.equal(load_image(tmp_path / "mostly_a" / "style_2.png"), load_image(tmp_path / "b" / "style.png"))

    # Judged by a network of another origin than the runs' (VGG-16, torchvision weights).
    judge = measures.load("vgg16_torchvision")
    style = {name: load_image(tmp_path / name / "style.png") for name in ("a", "b")}

    def distance(run: str, to: str) -> float:
        return judge.measure(_final(tmp_path / run), None, style[to])["style/gram"]

    assert distance("mostly_a", "a") < distance("mostly_b", "a")
    assert distance("mostly_b", "b") < distance("mostly_a", "b")
    assert distance("mostly_a", "a") < distance("b", "a") and distance("mostly_b", "b") < distance("a", "b")


def test_a_loss_blend_adds_the_styles_spread_to_the_statistics_blend_and_optimises_alike():
    extractor = VGGFeatures("vgg16", ["relu1_1", "relu2_1"], random_state_dict("vgg16", 0), preprocessing.torchvision())
    generator = torch.Generator().manual_seed(0)
    styles = [torch.rand(3, 16, 16, generator=generator) for _ in range(2)]
    targets = Targets(extractor)

    def term(mode: str) -> Style:
        spec = Spec(
            content=None,
            styles=styles,
            content_layer="relu2_1",
            style_layers=["relu1_1", "relu2_1"],
            layer_weights={"relu1_1": 0.5, "relu2_1": 0.5},
            style_loss=make("centered"),
            weights={"content": 0, "style": 1, "tv": 0},
            init="noise",
            seed=0,
            style_blend=[0.25, 0.75],
            blend_mode=mode,
        )
        return Style.build([spec], targets)[0]

    image = torch.rand(1, 3, 16, 16, generator=generator, requires_grad=True)
    features = extractor(image)
    by_loss, by_statistics = term("loss").parts(features, image), term("statistics").parts(features, image)
    for layer in ("relu1_1", "relu2_1"):
        mine = STATISTICS["centered"](features[layer])
        each = [targets.style(style, layer, make("centered")) for style in styles]
        blended = 0.25 * each[0] + 0.75 * each[1]
        assert float(by_loss[layer]) == pytest.approx(
            float(0.5 * (0.25 * mse(mine, each[0]) + 0.75 * mse(mine, each[1]))), rel=1e-5
        )
        assert float(by_statistics[layer]) == pytest.approx(float(0.5 * mse(mine, blended)), rel=1e-5)
        assert float(by_loss[layer]) > float(by_statistics[layer])
    gradients = [
        torch.autograd.grad(sum(parts.values()).sum(), image, retain_graph=True)[0]
        for parts in (by_loss, by_statistics)
    ]
    torch.testing.assert_close(gradients[0], gradients[1])


@pytest.mark.slow
def test_colour_modes_keep_the_contents_chrominance_and_every_new_key_shows_in_the_report(tmp_path, cli):
    require_weights("vgg19", "caffe")
    colours = tmp_path / "colours"
    done = cli(
        "-m",
        "colors=null,luminance,match",
        f"style={A}",
        "size=48",
        "steps=30",
        "logger=csv",
        "measures.networks=[portilla_simoncelli]",  # chroma is measured whatever the evaluators
        f"hydra.sweep.dir={colours}",
    )
    assert done.returncode == 0, done.stderr
    chroma = {
        mode: summary(colours / f"colors={mode}")["measures"]["chroma"] for mode in ("null", "luminance", "match")
    }
    assert chroma["luminance"] < 0.1 * chroma["null"] and chroma["match"] < 0.7 * chroma["null"]
    content = load_image(colours / "colors=luminance" / "content.png")
    assert colors.chroma_distance(_final(colours / "colors=luminance"), content) == pytest.approx(
        chroma["luminance"], abs=1e-6
    )
    # The inputs on record are the user's, not the grey or recoloured ones the network saw.
    assert colors.chroma_of(load_image(colours / "colors=luminance" / "style.png")).abs().max() > 0.2

    blends = tmp_path / "blends"
    done = cli(
        "-m",
        "style_blend=[1,0],[0.3,0.7]",
        "style_scale=1,0.75",
        f"style=[{A},{B}]",
        "style_blend_mode=statistics",
        "init=image",
        "init.path=halves",
        "content=null",
        "size=32",
        "steps=2",
        "logger=csv",
        "measures.networks=[]",
        f"hydra.sweep.dir={blends}",
    )
    assert done.returncode == 0, done.stderr
    runs, keys = load_runs(colours, blends)  # the report's own table, without its charts
    rows = table_rows(runs, keys)
    assert {"colors", "style_blend", "style_scale"} <= set(rows[0])
    assert {row["colors"] for row in rows} >= {"null", "luminance", "match"}
    assert {row["style_blend"] for row in rows} >= {"[1,0]", "[0.3,0.7]"}
    blend = summary(blends / "style_blend=[0.3,0.7],style_scale=0.75")
    assert blend["style_blend"] == pytest.approx([0.3, 0.7]) and blend["style_shape"] == [24, 24]


def test_style_scale_changes_the_style_seen_its_statistics_and_the_cache_key(tmp_path):
    extractor = VGGFeatures("vgg16", ["relu1_1"], random_state_dict("vgg16", 0), preprocessing.torchvision())
    cache = TargetCache(tmp_path, "key")
    specs = {
        scale: spec_of(compose_config(f"style_scale={scale}", "content=astronaut", f"style={A}"), 64)
        for scale in (1, 0.5)
    }
    assert specs[1].style.shape[1:] == (64, 64) and specs[0.5].style.shape[1:] == (32, 32)
    assert specs[1].shape == specs[0.5].shape  # the output keeps the run's size
    statistics = [Targets(extractor).style(spec.style, "relu1_1", make("gram")) for spec in specs.values()]
    assert not torch.allclose(statistics[0], statistics[1], rtol=1e-2)
    assert cache.path(specs[1].style, "relu1_1", "style-gram") != cache.path(specs[0.5].style, "relu1_1", "style-gram")
    synthesis = spec_of(compose_config("style_scale=0.5", "content=null", f"style={A}"), 64)
    assert synthesis.shape[1:] == (64, 64) and synthesis.style.shape[1:] == (32, 32)


def test_init_image_starts_from_a_run_folders_final_image_resized(tmp_path):
    require_weights("vgg19", "caffe")
    run_in_process(tmp_path / "first", *TINY, "steps=3")
    for size in (32, 48):  # the same size, and a run continued at a larger one
        built = build_run([compose_config(*TINY, f"size={size}", "init=image", f"init.path={tmp_path / 'first'}")])
        torch.testing.assert_close(built.module.image.detach()[0], load_image(tmp_path / "first" / "final.png", size))
