"""Reports and fair measures from saved sweeps, and the ready studies and presets under experiments/."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from styleexp import measures, report
from styleexp.cli import CONFIG_DIR, EXPERIMENTS_DIR
from styleexp.extractors.vgg import VGGFeatures
from styleexp.images import load_image
from styleexp.measures import network as network_measures
from styleexp.measures import probes
from styleexp.report.cli import main as report_command
from styleexp.samples import load as load_sample

from .conftest import launch, require_weights, summary, wandb_records


@pytest.fixture(scope="module")
def network() -> list[measures.Evaluator]:
    require_weights("vgg19", "caffe")
    require_weights("vgg16", "caffe")
    return measures.evaluators(["vgg19_caffe"])


@pytest.fixture(scope="module")
def gram_sweep(tmp_path_factory, network) -> Path:
    """The Gram-variant study, tiny: two styles x three statistics, reported with W&B offline."""
    sweep_dir = tmp_path_factory.mktemp("report") / "sweep"
    sweep = ["study=gram_variants", "hydra.sweeper.params.style='dark_circle,checkers'", "size=32", "steps=5",
             "measures.networks=[vgg19_caffe,portilla_simoncelli]"]  # fmt: skip
    assert launch(*sweep, "logger=none", f"hydra.sweep.dir={sweep_dir}") == 0
    with pytest.MonkeyPatch.context() as patch:
        _validate_on_few_samples(patch)
        assert launch(str(sweep_dir), main=report_command) == 0
    return sweep_dir


def _validate_on_few_samples(patch: pytest.MonkeyPatch) -> None:
    """The measures validated on four of the samples, small: the page's table, in seconds (test_validation.py
    validates them for real)."""
    few = ("astronaut", "coffee", "checkers", "rainbow_circles")
    patch.setattr(probes, "bundled_images", lambda size=probes.SIZE: {name: load_sample(name, 48) for name in few})


@pytest.mark.slow
def test_a_report_of_a_measured_sweep_runs_no_evaluator_network(gram_sweep, monkeypatch):
    _validate_on_few_samples(monkeypatch)  # as the first report did: its validation is cached
    passes = []
    forward = VGGFeatures.forward
    monkeypatch.setattr(VGGFeatures, "forward", lambda self, *args: passes.append(1) or forward(self, *args))
    assert launch(str(gram_sweep), "--wandb", "disabled", main=report_command) == 0
    assert passes == [] and (gram_sweep / "report" / "index.html").is_file()


def chromium_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM once headless Chromium has run its scripts, or a skip where Chromium is not installed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's package where it can)")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom"]
    return subprocess.run([*command, page.as_uri() + fragment], capture_output=True, text=True, timeout=120).stdout


def read_table(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "report" / "table.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_the_table_has_one_row_per_run_with_finite_measures(gram_sweep):
    rows = read_table(gram_sweep)
    assert sorted((row["style"], row["gram"]) for row in rows) == sorted(
        (style, gram) for style in ("dark_circle", "checkers") for gram in ("gram", "centered", "both")
    )
    for row in rows:
        assert row["status"] == "completed"
        for name in network_measures.NetworkEvaluator.style:
            assert math.isfinite(float(row[name])) and float(row[name]) >= 0, name
        assert row["content/relu4_2"] == "" and row["ssim"] == ""  # pure style: no content to compare to
        assert row["converged"] == str(summary(gram_sweep / row["run"])["converged"])
    markdown = (gram_sweep / "report" / "table.md").read_text().splitlines()
    assert len(markdown) == 2 + len(rows) and "style/mean_std" in markdown[0]


@pytest.mark.slow
def test_the_grid_has_each_run_in_its_row_and_column(gram_sweep):
    runs, keys = report.load_runs(gram_sweep)
    assert keys == {"style": ["dark_circle", "checkers"], "gram": ["gram", "centered", "both"]}
    sheet, cells = report.grid(runs, keys)
    saved = Image.open(gram_sweep / "report" / "grid.png")
    assert saved.size == sheet.size
    assert len(cells) == 6
    for run in runs:
        left, top, _, _ = cells[run.folder.name]
        assert (top - 28) // report.CELL == keys["style"].index(run.choices["style"])
        assert (left - cells["style=dark_circle,gram=gram"][0]) // report.CELL == keys["gram"].index(
            run.choices["gram"]
        )
        thumbnail = report.thumbnail(run.image("final"))
        crop = saved.crop((left + 2, top + 2, left + 2 + thumbnail.width, top + 2 + thumbnail.height))
        assert np.array_equal(np.asarray(crop), np.asarray(thumbnail)), run.name


@pytest.mark.slow
def test_the_report_is_logged_to_the_sweeps_wandb_group(gram_sweep):
    records = wandb_records(gram_sweep / "report")
    run = next(record["run"] for record in records if record["type"] == "run")
    assert run["run_group"] == gram_sweep.name
    history = [record for record in records if record["type"] == "history"]
    assert "report/table" in json.dumps(history) and "report/grid" in json.dumps(history)


@pytest.mark.slow
def test_the_page_opens_in_headless_chromium_with_every_image_and_sorts(gram_sweep):
    page = gram_sweep / "report" / "index.html"
    assert "http" not in re.sub(r"https?://www\.w3\.org", "", page.read_text())  # nothing fetched from a server
    dom = chromium_dom(page, "#sort=style/gram")
    measured = [
        name
        for name in read_table(gram_sweep)[0]
        if name.startswith(("style/", "layout", "vgg16", "portilla", "colour", "speckle"))
        and any(row[name] for row in read_table(gram_sweep))
    ]
    charts = len(list((gram_sweep / "report").glob("measure_*.png"))) + len(
        list((gram_sweep / "report").glob("losses_*.png"))
    )
    assert charts == len(measured) + 2  # a chart per measure taken; loss curves for each of the two grid rows
    assert re.search(rf'id="image-check">all {1 + 6 + charts} images shown<', dom), dom[-500:]
    assert "Do the measures measure?" in dom and re.search(
        r"<td>portilla_simoncelli/style/ps</td><td>1\.00 \(\d+\)</td>", dom
    )
    runs_table = dom.split('id="runs"')[1].split("</table>")[0]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", runs_table)
    column = header.index("style/gram")
    assert 'class="sorted-asc"' in runs_table
    body = runs_table.split("<tbody>")[1].split("</tbody>")[0]
    shown = [float(re.findall(r"<td>([^<]*)</td>", row)[column]) for row in body.split("</tr>") if "<td>" in row]
    as_written = [float(row["style/gram"]) for row in read_table(gram_sweep)]
    assert len(shown) == 6 and shown == sorted(as_written) and shown != as_written  # the page re-ordered the rows


@pytest.mark.slow
def test_a_failed_run_shows_as_failed_in_the_report(tmp_path, network, cli):
    sweep_dir = tmp_path / "sweep"
    done = cli(
        "-m",
        "content=missing.jpg,astronaut",
        "style=null",
        "size=32",
        "steps=3",
        "logger=none",
        "measures.networks=[vgg19_caffe]",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert done.returncode == 2  # its one failure is a user's mistake
    reported = cli(str(sweep_dir), "--wandb", "disabled", "--no-validation", main=report_command)
    assert reported.returncode == 0 and "(1 not completed)" in reported.stdout
    rows = {row["content"]: row for row in read_table(sweep_dir)}
    assert rows["missing.jpg"]["status"] == "failed" and rows["missing.jpg"]["ssim"] == ""
    assert rows["astronaut"]["status"] == "completed" and 0 < float(rows["astronaut"]["ssim"]) <= 1
    runs, keys = report.load_runs(sweep_dir)
    sheet, cells = report.grid(runs, keys)
    left, top, _, _ = cells["content=missing.jpg"]
    assert sheet.getpixel((left + 4, top + 4)) == (200, 40, 40)  # the status banner
    assert "missing.jpg: no such file" in (sweep_dir / "report" / "index.html").read_text()


@pytest.fixture(scope="module")
def seed_sweeps(tmp_path_factory, network) -> tuple[Path, Path]:
    """Two statistics x two seeds of pure style, and one more seed in a second sweep."""
    root = tmp_path_factory.mktemp("seeds")
    for name, seeds in (("first", "0,1"), ("second", "2")):
        sweep = ["-m", "content=null", "style=checkers", "gram=gram,centered", f"seed={seeds}", "size=32", "steps=5",
                 "measures.networks=[vgg19_caffe]"]  # fmt: skip
        assert launch(*sweep, "logger=none", f"hydra.sweep.dir={root / name}") == 0
    return root / "first", root / "second"


@pytest.mark.slow
def test_replicates_give_means_with_intervals_paired_verdicts_and_numeric_wandb_columns(seed_sweeps, cli):
    first, _ = seed_sweeps
    reported = cli(str(first), "--no-validation", main=report_command)
    assert reported.returncode == 0, reported.stderr
    table = read_table(first)
    with open(first / "report" / "variants.csv") as f:
        variants = {row["gram"]: row for row in csv.DictReader(f)}
    for gram in ("gram", "centered"):
        values = [float(row["style/gram"]) for row in table if row["gram"] == gram]
        assert variants[gram]["runs"] == "2" and float(variants[gram]["style/gram"]) == pytest.approx(
            np.mean(values), rel=1e-3
        )
        assert (
            float(variants[gram]["style/gram low"])
            < float(variants[gram]["style/gram"])
            < float(variants[gram]["style/gram high"])
        )
    # One style image: the seeds are the unit, and two of them cannot decide anything.
    assert re.search(
        r"gram vs centered on style/gram: inconclusive: 2 seeds of one image, at least \d+ needed \("
        r"(gram|centered) lower in [12] of 2, median effect",
        reported.stdout,
    )

    wandb_table = next((first / "report" / "wandb").rglob("report/table_*.table.json"))
    logged = json.loads(wandb_table.read_text())
    column = logged["columns"].index("style/gram")
    assert all(isinstance(row[column], float) for row in logged["data"])
    assert logged["columns"][-1] == "final"

    dom = chromium_dom(first / "report" / "index.html")
    assert 'alt="measure_style_gram"' in dom and 'alt="losses_00"' in dom and "Variants over replicates" in dom
    assert re.search(r'id="image-check">all \d+ images shown<', dom), dom[-300:]


@pytest.mark.slow
def test_several_sweeps_are_reported_together(seed_sweeps, tmp_path, cli):
    out = tmp_path / "joint"
    reported = cli(
        *map(str, seed_sweeps), "--out", str(out), "--wandb", "disabled", "--no-validation", main=report_command
    )
    assert reported.returncode == 0, reported.stderr
    with open(out / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((row["sweep"], row["seed"]) for row in rows) == sorted(
        [("first", "0"), ("first", "0"), ("first", "1"), ("first", "1"), ("second", "2"), ("second", "2")]
    )
    with open(out / "variants.csv") as f:
        assert {row["gram"]: row["runs"] for row in csv.DictReader(f)} == {"gram": "3", "centered": "3"}
    missing_out = cli(*map(str, seed_sweeps), main=report_command)
    assert missing_out.returncode == 2 and "--out" in missing_out.stderr


def test_measures_score_images_the_same_whatever_run_made_them(tmp_path, network):
    content, style = load_sample("astronaut", 48), load_sample("checkers", 48)
    noise = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(0))
    same_as_style = measures.measure(network, style, content, style)
    assert all(same_as_style[f"style/{name}"] < 1e-10 for name in network_measures.STATISTICS)
    same_as_content = measures.measure(network, content, content, style)
    assert same_as_content["content/relu4_2"] < 1e-10 and same_as_content["ssim"] == pytest.approx(1.0)
    from_noise = measures.measure(network, noise, content, style)
    assert from_noise["content/relu4_2"] > 0.1 and from_noise["ssim"] < 0.2
    assert all(from_noise[f"style/{name}"] > 0.01 for name in network_measures.STATISTICS)
    # Sliced Wasserstein sees distributions, not places: the pattern shifted keeps to it, noise does not.
    assert same_as_style["style/sliced_w"] < 1e-10
    shifted = measures.measure(network, style.roll(shifts=(8, 8), dims=(1, 2)), content, style)["style/sliced_w"]
    assert shifted < 0.1 * from_noise["style/sliced_w"] and from_noise["style/sliced_w"] > 0.1
    smaller = measures.measure(network, style[:, :32, :32], None, style)["style/sliced_w"]
    assert smaller < 0.5 * from_noise["style/sliced_w"]  # a crop, of other size: through the style's quantiles

    # Two runs of different networks, pooling and statistics that left the same image score the same.
    runs = []  # saved without measures, as runs were before every run took them
    for name, choices in (
        ("a", {"network": "vgg16", "pooling": "avg", "gram": "centered"}),
        ("b", {"network": "vgg19"}),
    ):
        folder = tmp_path / name
        folder.mkdir()
        for image_name, image in (("final", noise), ("content", content), ("style", style)):
            Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy()).save(folder / f"{image_name}.png")
        runs.append(
            report.Run(name, folder, choices, {"status": "completed", "losses": {"loss/total": float(len(name))}})
        )
    report.score(runs, ["vgg19_caffe"])
    assert runs[0].scores == runs[1].scores
    assert runs[0].scores == measures.measure(network, load_image(tmp_path / "a" / "final.png"), content, style)


STUDIES = sorted(path.stem for path in Path(EXPERIMENTS_DIR, "study").glob("*.yaml"))


def sweep_values(cfg) -> dict[str, list[str]]:
    """Each swept key of a composed study and its values, as Hydra's basic sweeper expands them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(
        [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    )
    return {
        override.key_or_group: list(override.sweep_string_iterator())
        if override.is_sweep_override()
        else [override.get_value_element_as_str()]
        for override in parsed
    }


def test_the_classic_studies_sweep_their_keys():
    expected = {
        "content_layers": {"content_layer": 13},
        "gram_variants": {"style": 4, "gram": 3},
        "style_layers_first": {"style_layers.first": 13},
        "style_layers_only": {"style_layers.only": 13},
        "network_pooling": {"network": 2, "pooling": 2},
        "mostly_style": {"style": 13},
    }
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for study, counts in expected.items():
            swept = sweep_values(compose("config", overrides=[f"study={study}"], return_hydra_config=True))
            assert {key: len(values) for key, values in swept.items()} == {**counts, "seed": 1}, study


def test_every_study_has_a_credible_variant_at_384_px_with_three_seeds_batched_and_no_coarse_layout():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for study in STUDIES:
            cfg = compose("config", overrides=[f"study={study}", "scale=credible"], return_hydra_config=True)
            assert sweep_values(cfg)["seed"] == ["0", "1", "2"], study
            assert cfg.size == 384 and list(cfg.scales) == [96, 192, 384] and cfg.coarse_layers.value == "enough"
            assert cfg.hydra.launcher._target_.endswith("BatchedLauncher")


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_every_study_composes_every_job_of_its_sweep(study):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"study={study}"], return_hydra_config=True)
        swept = sweep_values(cfg)
        assert swept.pop("seed") == ["0"] and swept and all(len(values) >= 2 for values in swept.values())
        # The small variant is the default, and it stops once converged.
        assert cfg.size <= 128 and cfg.steps <= 1000
        assert cfg.stop.rtol is not None
        for key, values in swept.items():
            for value in values:
                job = compose("config", overrides=[f"study={study}", f"{key}={value}"], return_hydra_config=True)
                chosen = OmegaConf.select(job, key)
                held = (job.hydra.runtime.choices.get(key), str(chosen))
                assert value in held or (value, chosen) == ("null", None), (key, value)


def test_presets_reproduce_the_published_configurations():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        gatys = compose("config", overrides=["preset=gatys2016"])
        keras = compose("config", overrides=["preset=keras_tutorial"])
        implementation = compose("config", overrides=["preset=artistic_style_2018"])
    assert (gatys.network.name.value, gatys.network.pooling.value, gatys.optim.name.value) == ("vgg19", "avg", "lbfgs")
    assert gatys.content_layer == "relu4_2" and list(gatys.style_layers.layers) == [
        "relu1_1",
        "relu2_1",
        "relu3_1",
        "relu4_1",
        "relu5_1",
    ]
    assert (keras.optim.name.value, keras.init.name.value, keras.content_layer) == ("adam", "content", "relu5_2")
    assert keras.loss.style / keras.loss.content == pytest.approx(1e-5)
    assert (implementation.network.pooling.value, implementation.optim.name.value, implementation.steps) == (
        "avg",
        "adam",
        5000,
    )
    # alpha 1e-4, beta 5 in their own units, converted for each image (tests/test_writeup_switches.py).
    assert implementation.loss_units.value == "gatys"
    assert (implementation.loss.content, implementation.loss.style) == pytest.approx((1e-4, 5))
    assert Path(EXPERIMENTS_DIR, "preset", "gatys2016.yaml").is_file()
