"""Run a saved run or sweep again from what its folder recorded: overrides, config identity, threads."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.rundir import NOT_IDENTITY, config_identity, read_summary


def run_arguments(run_dir: Path, extra: list[str], config_dir: str) -> list[str]:
    """Command-line arguments that run ``run_dir`` again, changed by the ``extra`` overrides, into a new folder.

    Without ``extra`` the config composed today must be the one the run used, or a ``UserError`` says
    which keys changed.
    """
    overrides = list(OmegaConf.load(_existing(run_dir, ".hydra/overrides.yaml", "run")))
    summary = read_summary(run_dir)
    if not extra and summary.get("config_sha256"):
        _check_unchanged(run_dir, overrides, summary["config_sha256"], config_dir)
    # The same number of threads: results then match bit for bit, whatever the CPU reductions' order.
    threads = [f"threads={summary['threads']}"] if summary.get("threads") else []
    new_dir = Path("outputs/runs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    run_dir_given = any(override.startswith("hydra.run.dir=") for override in extra)
    return [*overrides, *threads, *extra, *([] if run_dir_given else [f"hydra.run.dir={new_dir}"])]


def sweep_arguments(sweep_dir: Path, extra: list[str], resume: bool) -> list[str]:
    """Command-line arguments that launch the sweep of ``sweep_dir`` again: into it (``resume``) or a new folder."""
    saved = OmegaConf.load(_existing(sweep_dir, "multirun.yaml", "sweep")).hydra.overrides
    launcher = [override for override in saved.hydra if not override.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    where = [f"hydra.sweep.dir={sweep_dir}"] if resume else []
    return ["-m", *saved.task, *launcher, *extra, *where]


def largest_pixel_difference(run_a: Path, run_b: Path) -> int:
    """The largest difference between the two runs' ``final.png``, in 8-bit levels (0 to 255)."""
    a, b = (load_image(run / "final.png") for run in (run_a, run_b))
    return round(float((a - b).abs().max()) * 255)


def _check_unchanged(run_dir: Path, overrides: list[str], identity: str, config_dir: str) -> None:
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    if config_identity(cfg) == identity:
        return
    saved = _leaves(OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml")))
    now = _leaves(OmegaConf.to_container(cfg, enum_to_str=True))
    changed = sorted(key for key in saved.keys() | now.keys() if saved.get(key) != now.get(key) and key.split(".")[0] not in NOT_IDENTITY)
    raise UserError(
        f"the config under conf/ has changed since {run_dir} was made ({', '.join(changed) or 'resolved values'}); "
        f"check out the commit in its summary.json (versions.styleexp_commit), or add overrides to run it changed"
    )


def _leaves(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {key: value for name, child in tree.items() for key, value in _leaves(child, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): tree}


def _existing(folder: Path, name: str, kind: str) -> Path:
    if not (folder / name).is_file():
        raise UserError(f"{folder} is not a {kind} folder: it has no {name}; give the folder of a finished {kind}")
    return folder / name
