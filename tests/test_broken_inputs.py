"""Broken or hostile inputs end in one line, exit 2, with nothing lost: an image bomb, a seed out of range, an objective
that names nothing, another sweep into a sweep's folder, a planted symbolic link or pickle, an edited run folder,
missing weights, and folders that are not there."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import zlib
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from PIL import Image

from styleexp import bench, checkpoints, checks
from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.measures.cli import main as validate_measures
from styleexp.report.cli import main as report
from styleexp.reproduce import reproduce_main as reproduce
from styleexp.reproduce import resume_main as resume
from styleexp.samples import aspect
from styleexp.sweeps import SweepRecord
from styleexp.targets import TargetCache

from .conftest import compose_config, require_weights, run_in_process, summary

TINY = ["size=32", "steps=1", "logger=none", "measures.networks=[]"]


def bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and "warning:" not in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_an_image_over_pillows_pixel_limit_is_refused_by_its_size_before_decoding(tmp_path):
    huge, above = bomb(tmp_path / "huge.png"), Image.MAX_IMAGE_PIXELS + 1
    # Past twice the limit Pillow raises; past the limit it only warns and decodes: both are refused.
    for path, size in [(huge, "100000 x 100000"), (bomb(tmp_path / "warned.png", above, 1), f"{above} x 1")]:
        for read in (load_image, aspect):
            with pytest.raises(UserError) as refused:
                read(path)
            assert str(refused.value) == (
                f"{path}: {size} pixels, more than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels against "
                "decompression bombs; scale it down first (a run resizes it to size= pixels anyway)"
            )
    for role in ("content", "style"):
        run_dir = tmp_path / role
        result = run_in_process(run_dir, *TINY, f"{role}={huge}")
        assert result.status == "failed" and result.exit_code == 2 and "100000 x 100000 pixels" in str(result.error)
        assert summary(run_dir)["status"] == "failed" and summary(run_dir)["message"] == str(result.error)


@pytest.mark.slow
def test_a_sweep_records_its_bomb_job_as_failed_and_refuses_another_sweep_into_its_folder(tmp_path, cli):
    require_weights("vgg19", "caffe")
    huge, sweep_dir = bomb(tmp_path / "huge.png"), tmp_path / "sweep"
    done = cli("-m", f"style={huge},dark_circle", *TINY, f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 2  # its one failure is a user's mistake
    assert "2 jobs, 1 completed (0 skipped as done before), 1 failed" in done.stderr
    failed = next(folder for folder in sweep_dir.iterdir() if folder.name.startswith("style=huge.png"))
    assert "100000 x 100000 pixels" in summary(failed)["message"] and summary(failed)["exit_code"] == 2
    written = (sweep_dir / "multirun.yaml").read_text()

    other = cli("-m", "style=checkers", *TINY, f"hydra.sweep.dir={sweep_dir}")
    assert other.returncode == 2 and one_line(other.stderr) == (
        f"styleexp: error: {sweep_dir} holds another sweep: style=checkers would change its jobs (it ran "
        f"style={huge},dark_circle), and its report would mix two configurations; launch into a fresh folder "
        f"(hydra.sweep.dir=NEW), or go on with that sweep with: styleexp-resume {sweep_dir}"
    )
    assert (sweep_dir / "multirun.yaml").read_text() == written
    # The same sweep again goes on there, as styleexp-resume does: what completed is skipped.
    again = cli("-m", f"style={huge},dark_circle", *TINY, "threads=1", f"hydra.sweep.dir={sweep_dir}")
    assert again.returncode == 2 and "(1 skipped as done before), 1 failed" in again.stderr


def test_a_sweep_into_a_folder_of_another_is_refused_before_its_definition_is_overwritten(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    written = {"hydra": {"sweeper": {"params": None}, "overrides": {"task": ["seed=0,1", "size=32"], "hydra": []}}}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(written))

    def launch(*task: str, params: dict | None = None) -> None:
        config = {
            "hydra": {"sweep": {"dir": str(sweep_dir)}, "sweeper": {"params": params}, "overrides": {"task": task}}
        }
        SweepRecord().on_multirun_start(OmegaConf.create(config))

    launch("size=32", "seed=0,1", "threads=1", "logger=none")  # the same sweep, run differently: goes on
    for task, params, changed, ran in [
        (["seed=2,3", "size=32"], None, "seed=2,3", "seed=0,1"),
        (["seed=0,1"], None, "its defaults", "size=32"),
        (["seed=0,1", "size=32"], {"gram": "gram,both"}, "gram=gram,both", "the defaults"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            launch(*task, params=params)
        assert exit_.value.code == 2
        assert one_line(capsys.readouterr().err).startswith(
            f"styleexp: error: {sweep_dir} holds another sweep: {changed} would change its jobs (it ran {ran})"
        )
    assert yaml.safe_load((sweep_dir / "multirun.yaml").read_text()) == written


def test_a_seed_outside_torchs_range_is_refused_in_one_line(tmp_path):
    result = run_in_process(tmp_path / "run", *TINY, f"seed={2**70}")
    assert result.status == "failed" and result.exit_code == 2
    assert str(result.error) == (
        f"seed={2**70} is out of range; a seed is a whole number from -2**63 to 2**64-1, e.g. seed=0"
    )
    for seed in (-(2**63), 2**64 - 1):
        checks.check(compose_config(*TINY, f"seed={seed}"))
    with pytest.raises(UserError, match="out of range"):
        checks.check(compose_config(*TINY, f"seed={2**64}"))


def test_an_objective_that_names_nothing_a_run_records_is_refused_naming_the_keys(tmp_path, cli):
    for good in ["measure/style/gram", "measure/vgg16_torchvision/style/both", "loss/total", "loss/style/relu3_1",
                 "wall_time_s", "{measure/style/gram: 1, measure/ssim: -1}"]:  # fmt: skip
        checks.objective(compose_config(f"objective={good}"))
    with pytest.raises(UserError) as refused:
        checks.objective(compose_config("objective=measure/style/gams"))
    message = str(refused.value)
    assert message.startswith("objective=measure/style/gams is not a number a run records; did you mean "
                              "measure/style/gram? choose a measure (measure/style/gram, ")  # fmt: skip
    assert "measure/ssim" in message and "loss/total, loss/content, loss/style, loss/tv" in message
    assert message.endswith("or one of wall_time_s, steps, evaluations, seconds_per_step, peak_memory_mb")
    with pytest.raises(UserError, match=r"choose a measure \(none: measures.networks=\[\] takes no measures\)"):
        checks.objective(compose_config("objective=measure/style/gram", "measures.networks=[]"))
    with pytest.raises(UserError, match="a weight must be a finite number"):
        checks.objective(compose_config("objective={loss/total: nan}"))
    # A sweep (an Optuna search's every trial would fail) stops at its launch.
    done = cli("-m", "seed=0,1", "objective=bogus_key", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert done.returncode == 2 and one_line(done.stderr).startswith(
        "styleexp: error: objective=bogus_key is not a number a run records; choose a measure"
    )
    assert not list((tmp_path / "sweep").glob("*/summary.json"))


def test_a_symbolic_link_where_the_target_caches_lock_goes_is_refused_and_never_followed(tmp_path):
    cache = TargetCache(tmp_path / ".targets", "key")
    with cache.locked():  # an ordinary lock: taken, and its file left for the next job
        assert (tmp_path / ".targets" / "lock").is_file()
    (tmp_path / ".targets" / "lock").unlink()
    precious = tmp_path / "precious.txt"
    precious.write_text("precious data")
    for pointed in (precious, tmp_path / "nowhere"):
        (tmp_path / ".targets" / "lock").symlink_to(pointed)
        with pytest.raises(UserError) as refused, cache.locked():
            pass
        assert str(refused.value) == (
            f"{tmp_path / '.targets' / 'lock'} is a symbolic link, which the target cache never follows; delete the "
            "link (the cache makes its own lock file)"
        )
        (tmp_path / ".targets" / "lock").unlink()
    assert precious.read_text() == "precious data" and not (tmp_path / "nowhere").exists()


class Planted:
    """A pickle that would run code when loaded: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_a_planted_pickle_in_the_target_cache_or_a_resume_point_is_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Planted(marker)))  # what an unguarded load would do
    assert marker.read_text() == "ran"
    marker.unlink()
    cache = TargetCache(tmp_path / ".targets", "key")
    cache.folder.mkdir()
    entry = cache.path(torch.zeros(3, 4, 4), "relu1_1", "content")
    buffer = io.BytesIO()
    torch.save(Planted(marker), buffer)
    payload = buffer.getvalue()
    entry.write_bytes(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    assert cache.load(entry, torch.device("cpu")) is None and not marker.exists()
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and warning.startswith(
        f"styleexp: warning: the cached target {entry} is damaged (UnpicklingError: Weights only load failed."
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save(Planted(marker), run_dir / "resume.pt")
    assert checkpoints.load(run_dir, "identity") is None and not marker.exists()
    assert "resume.pt cannot be read (UnpicklingError); the run starts over" in capsys.readouterr().err


def test_reproduce_names_the_saved_file_that_differs_from_what_its_overrides_compose(tmp_path, cli):
    require_weights("vgg19", "caffe")
    original = tmp_path / "original"
    assert cli(*TINY, "seed=5", f"hydra.run.dir={original}").returncode == 0
    config, overrides = original / ".hydra" / "config.yaml", original / ".hydra" / "overrides.yaml"
    saved_config, saved_overrides = config.read_text(), overrides.read_text()

    config.write_text(saved_config.replace("seed: 5", "seed: 9"))
    refused = cli(str(original), main=reproduce)
    assert refused.returncode == 2 and one_line(refused.stderr) == (
        f"styleexp: error: {config} differs from what its .hydra/overrides.yaml compose (seed=9 saved, 5 composed): "
        f"it was edited after the run; restore it, or give a change as overrides: styleexp-reproduce {original} "
        "KEY=VALUE"
    )
    config.write_text(saved_config)
    overrides.write_text(saved_overrides.replace("seed=5", "seed=7"))
    refused = cli(str(original), main=reproduce)
    assert refused.returncode == 2 and one_line(refused.stderr) == (
        f"styleexp: error: {overrides} differs from the overrides its summary.json records (seed=7 where the run had "
        f"seed=5): it was edited after the run; restore it, or give a change as overrides: styleexp-reproduce "
        f"{original} KEY=VALUE"
    )
    assert not (tmp_path / "outputs").exists()


def test_the_benchmark_without_its_weights_says_so_in_one_line_before_timing_anything(tmp_path, cli, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("offline")

    monkeypatch.setenv("STYLEEXP_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(bench, "conv_throughput", lambda device: pytest.fail("timed without weights"))
    for arguments in (["--networks", "vgg19"], ["--networks", "vgg16", "--peer", "peer"]):
        done = cli(*arguments, "--device", "cpu", "--out", str(tmp_path / "bench.json"), main=bench.main)
        assert done.returncode == 2 and one_line(done.stderr).startswith(
            f"styleexp: error: {arguments[1]} caffe weights not found: expected {arguments[1]}_imagenet_caffe.pth in "
            f"{tmp_path / 'empty'} and the download from "
        )
        assert "failed: offline; copy the file there" in done.stderr


def test_a_missing_folder_is_called_missing_and_a_file_a_file(tmp_path, cli):
    missing, file = tmp_path / "nowhere", tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(file)
    for main, folder, fix in [
        (report, missing, "give a sweep folder, e.g. one under outputs/sweeps/"),
        (report, file, "give a sweep folder, e.g. one under outputs/sweeps/"),
        (resume, missing, "give the folder of a finished run or sweep"),
        (reproduce, missing, "give the folder of a finished run"),
        (reproduce, file, "give the folder of a finished run"),
        (validate_measures, file, "give folders of images (or run folders with --run)"),
        (validate_measures, missing, "give folders of images (or run folders with --run)"),
    ]:
        done = cli(str(folder), main=main)
        what = "no such folder" if folder == missing else "a file, not a folder"
        assert done.returncode == 2 and one_line(done.stderr) == f"styleexp: error: {folder}: {what}; {fix}", main


def test_a_bad_loss_weights_example_is_a_value_of_that_weight(tmp_path):
    for key, example in [
        ("loss.tv", "loss.tv=0.3"),
        ("loss.style", "loss.style=1e-05"),
        ("loss.content", "loss.content=1"),
    ]:
        with pytest.raises(UserError) as refused:
            checks.check(compose_config(*TINY, f"{key}=inf"))
        assert str(refused.value) == f"{key}=inf must be a finite number of at least 0; e.g. {example}"
    with pytest.raises(UserError, match=r"style_layers.weights.relu1_1=-1.0 .* e.g. style_layers.weights.relu1_1=1$"):
        cfg = compose_config(*TINY)
        cfg.style_layers.weights = {"relu1_1": -1.0}
        checks.check(cfg)
