"""One run: config -> images, network, targets -> Trainer.fit -> a run folder with everything it produced."""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader

from styleexp import preprocessing, samples, speed, statistics, sweeps
from styleexp.callbacks import ImageSaver, NaNGuard, StepClock, log_image
from styleexp.errors import UserError
from styleexp.images import save_image
from styleexp.module import StyleTransfer
from styleexp.targets import TargetCache, compute_targets
from styleexp.vgg import VGGFeatures, resolve_layer
from styleexp.weights import Weights, file_sha256, load_weights

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class FreshRunDir(HydraCallback):
    """Refuse to start a single run in a folder that already holds files: earlier results stay intact."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if run_dir.is_dir() and any(run_dir.iterdir()):
            sys.exit(f"styleexp: error: {run_dir} already holds a run; choose a new hydra.run.dir (or leave it unset)")


@dataclass
class RunResult:
    """What a finished, stopped, failed or skipped run reports back to the command line."""

    run_dir: Path
    status: str  # completed | skipped | interrupted | nan | failed
    message: str
    error: Exception | None = None  # why a failed run failed

    @property
    def exit_code(self) -> int:
        if isinstance(self.error, UserError):
            return EXIT_USAGE
        return {"completed": 0, "skipped": 0, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


def run(cfg: DictConfig) -> RunResult:
    """Run the style transfer ``cfg`` describes in Hydra's output folder and return how it ended.

    It never raises for a run that goes wrong: a user mistake, a NaN, running out of memory or any
    other error is recorded as ``failed`` in ``summary.json`` and W&B and returned, so a sweep goes on.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    identity = sweeps.config_identity(cfg)
    if sweeps.is_multirun() and sweeps.completed_identity(run_dir) == identity:
        return RunResult(run_dir, "skipped", f"skipped: {run_dir} holds a completed run of this config")
    threads = sweeps.cpu_threads(cfg.threads)
    if threads:
        torch.set_num_threads(threads)
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    overrides = list(hydra_cfg.overrides.task)
    run_config = {
        **OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "choices": choices,
        "overrides": sweeps.overrides_dict(overrides),
    }
    record: dict[str, Any] = {
        "config_sha256": identity, "choices": choices, "overrides": overrides, "seed": cfg.seed,
        "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": _versions(),
    }
    loggers = _loggers(cfg, run_config)
    guard, clock = NaNGuard(cfg.log_every), StepClock(cfg.log_every)
    module: StyleTransfer | None = None
    trainer: pl.Trainer | None = None
    status, error, started = "failed", None, time.perf_counter()
    previous_sigterm = _on_sigterm(_raise_keyboard_interrupt)
    try:
        module, facts = prepare(cfg, run_dir)
        record.update(facts)
        trainer_config = OmegaConf.to_container(cfg.trainer, resolve=True)
        trainer_config["precision"] = speed.set_precision(cfg.speed.precision.value, next(module.extractor.buffers()).device)
        trainer = pl.Trainer(
            **trainer_config,
            logger=loggers or False,
            callbacks=[ImageSaver(run_dir, cfg.image_every), guard, clock, TQDMProgressBar(refresh_rate=cfg.log_every)],
        )
        print(f"styleexp: {record['mode']} run in {run_dir}", flush=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # our fresh run folder
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen VGG
            trainer.fit(module, DataLoader(range(cfg.steps), batch_size=None))
        status = "nan" if guard.failure else "completed"
    except (KeyboardInterrupt, SystemExit):
        # Lightning answers Ctrl-C (and our SIGTERM) with its own graceful shutdown and sys.exit(1).
        status = "interrupted"
    except Exception as caught:  # recorded, not raised: the run failed, the sweep goes on
        status, error = "failed", caught
    finally:
        _on_sigterm(previous_sigterm)
        step = trainer.global_step if trainer else 0
        final = save_image(module.image, run_dir / "final.png") if module is not None else None
        message = _message(status, error, step, final, guard.failure, cfg.size)
        summary = {
            "status": status,
            "message": message,
            **record,
            **(_progress(cfg, module, step, clock) if module is not None else {}),
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        _finish_wandb(loggers, step, final, summary)
    return RunResult(run_dir, status, message, error)


def prepare(cfg: DictConfig, run_dir: Path) -> tuple[StyleTransfer, dict[str, Any]]:
    """Images, weights, network and targets -> the module to optimise, and what the summary records of them."""
    content, style = _load_images(cfg)
    weights = load_weights(
        cfg.network.name.value,
        cfg.network.weights,
        directory=cfg.weights_dir,
        preprocessing_name=cfg.network.preprocessing,
        seed=cfg.seed,
        download=cfg.network.download,
    )
    content_layer = resolve_layer(cfg.network.name.value, cfg.content_layer)
    style_layers = select_style_layers(cfg) if style is not None else []
    extractor = VGGFeatures(
        cfg.network.name.value,
        ([content_layer] if content is not None else []) + style_layers,
        weights.state_dict,
        preprocessing.get(weights.preprocessing),
        cfg.network.pooling.value,
    )
    _check_size(extractor, content=content, style=style)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.get("accelerator") != "cpu" else "cpu")
    extractor.to(device)
    speed.configure(extractor, cfg.speed.channels_last, cfg.speed.compile)
    statistic = statistics.get(cfg.statistic.value)
    weights_facts = _weights_facts(weights)
    cache = None
    if sweeps.is_multirun():
        network_key = json.dumps([weights_facts, cfg.network.pooling.value, cfg.seed if weights.source == "random" else None])
        cache = TargetCache(Path(HydraConfig.get().sweep.dir) / ".targets", network_key)
    started = time.perf_counter()
    targets = compute_targets(extractor, content, style, content_layer, style_layers, statistic, cache)
    targets_seconds = round(time.perf_counter() - started, 4)

    module = StyleTransfer(
        extractor,
        init_image(cfg.init.name.value, content, style, cfg.seed),
        targets,
        statistic,
        loss_weights=OmegaConf.to_container(cfg.loss),
        layer_weights=_layer_weights(cfg, style_layers),
        optimizer=cfg.optim.name.value,
        lr=cfg.optim.lr,
        history_size=cfg.optim.history_size,
        betas=tuple(cfg.optim.betas),
        eps=cfg.optim.eps,
    )
    for name, image in (("content", content), ("style", style)):
        if image is not None:
            save_image(image, run_dir / f"{name}.png")
    mode = "transfer" if content is not None and style is not None else "reconstruction" if content is not None else "synthesis"
    return module, {
        "mode": mode,
        "content_layer": content_layer if content is not None else None,
        "style_layers": style_layers,
        "weights": weights_facts,
        "targets": {
            "computed": cache.computed if cache else len(targets.content) + len(targets.style),
            "reused": cache.reused if cache else 0,
            "seconds": targets_seconds,
        },
    }


def select_style_layers(cfg: DictConfig) -> list[str]:
    """The style layer names of ``cfg.style_layers``, after ``first`` (first k of the set) or ``only`` (k-th alone)."""
    network = cfg.network.name.value
    layers = [resolve_layer(network, layer) for layer in cfg.style_layers.layers]
    first, only = cfg.style_layers.first, cfg.style_layers.only
    if first is not None and only is not None:
        raise UserError("set style_layers.first or style_layers.only, not both")
    for key, k in (("first", first), ("only", only)):
        if k is not None and not 1 <= k <= len(layers):
            raise UserError(f"style_layers.{key}={k} is out of range; the set has layers 1..{len(layers)}")
    if first is not None:
        layers = layers[:first]
    if only is not None:
        layers = [layers[only - 1]]
    if not layers:
        raise UserError("no style layers; pick a set with style_layers=gatys (or another) or drop style")
    return layers


def init_image(init: str, content: torch.Tensor | None, style: torch.Tensor | None, seed: int) -> torch.Tensor:
    """The starting image ``[3, H, W]``: the output has the content's shape, else the style's."""
    shape = (content if content is not None else style).shape
    if init == "noise":
        return torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    if init == "content":
        if content is None:
            raise UserError("init=content needs a content image; set content= or use init=noise")
        return content
    if style is None:
        raise UserError("init=style needs a style image; set style= or use init=noise")
    return F.interpolate(style[None], size=shape[1:], mode="bilinear", antialias=True, align_corners=False)[0]


def _load_images(cfg: DictConfig) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if cfg.content is None and cfg.style is None:
        raise UserError("neither content nor style is set; give content=PATH_OR_SAMPLE, style=PATH_OR_SAMPLE or both")
    if cfg.size < 1 or cfg.steps < 1:
        raise UserError(f"size and steps must be positive, got size={cfg.size} steps={cfg.steps}")
    content = samples.load(cfg.content, cfg.size) if cfg.content is not None else None
    style = samples.load(cfg.style, cfg.size) if cfg.style is not None else None
    return content, style


def _check_size(extractor: VGGFeatures, **images: torch.Tensor | None) -> None:
    need = extractor.min_input_size
    for name, image in images.items():
        if image is not None and min(image.shape[1:]) < need:
            height, width = image.shape[1:]
            raise UserError(
                f"the {name} image is {width}x{height} px, too small for {extractor.layers[-1]} "
                f"(needs {need} px per side); raise size= or use shallower layers"
            )


def _layer_weights(cfg: DictConfig, style_layers: list[str]) -> dict[str, float] | None:
    if not cfg.style_layers.weights:
        return None
    network = cfg.network.name.value
    weights = {resolve_layer(network, layer): float(w) for layer, w in cfg.style_layers.weights.items()}
    unused = sorted(set(weights) - set(style_layers))
    if unused:
        raise UserError(f"style_layers.weights names {', '.join(unused)}, which are not style layers of this run")
    return weights


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler where Python allows one (the main thread) and return the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler or signal.SIG_DFL)


def _loggers(cfg: DictConfig, run_config: dict) -> list:
    """The configured loggers; nodes with a ``config`` key (W&B) get the resolved run config."""
    return [
        # Not recursive: the run config passed to W&B holds `_target_` nodes that must stay data.
        hydra.utils.instantiate({**node, "config": run_config} if "config" in node else node, _recursive_=False, _convert_="all")
        for node in OmegaConf.to_container(cfg.logger, resolve=True).values()
        if node is not None
    ]


def _message(status: str, error: Exception | None, step: int, final: Path | None, nan: str | None, size: int) -> str:
    if status == "failed":
        if isinstance(error, torch.OutOfMemoryError):
            return f"out of memory at size={size}; lower size= or use fewer or shallower style layers"
        return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    return {
        "completed": f"done: {final}",
        "interrupted": f"interrupted at step {step}; the image so far is in {final}",
        "nan": f"stopped: {nan}; the last finite image is in {final}",
    }[status]


def _weights_facts(weights: Weights) -> dict[str, Any]:
    return {
        "network": weights.network,
        "source": weights.source,
        "preprocessing": weights.preprocessing,
        "file": str(weights.path) if weights.path else None,
        "sha256": file_sha256(weights.path) if weights.path else None,
    }


def _progress(cfg: DictConfig, module: StyleTransfer, step: int, clock: StepClock) -> dict[str, Any]:
    on_gpu = module.image.is_cuda
    peak_mb = speed.peak_memory_mb(module.image.device)
    return {
        "steps": step,
        "max_steps": cfg.steps,
        "evaluations": module.evaluations,
        "losses": {key: float(value) for key, value in module.last_losses.items()},
        "initial_losses": {key: float(value) for key, value in module.initial_losses.items()},
        "seconds_per_step": clock.seconds_per_step,
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_kind": "cuda max allocated" if on_gpu else "process max resident",
        "device": speed.device_name(module.image.device),
        "image_size": list(module.image.shape[2:]),
    }


def _versions() -> dict[str, str | None]:
    """Package versions, and the styleexp commit when it runs from a git checkout."""
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
        commit = git.stdout.strip() if git.returncode == 0 else None
    except OSError:  # no git on this machine
        commit = None
    return {
        "python": platform.python_version(),
        **{name: version(name) for name in ("styleexp", "torch", "torchvision", "pytorch-lightning", "hydra-core", "wandb")},
        "styleexp_commit": commit,
    }


def _finish_wandb(loggers: list, step: int, final: Path | None, summary: dict) -> None:
    """Log the final image and the run's status, then close the W&B run however the run ended."""
    from pytorch_lightning.loggers import WandbLogger

    wandb_loggers = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not wandb_loggers:
        return
    import wandb

    try:
        if final is not None:
            log_image(wandb_loggers, "images/final", final, step)
        for logger in wandb_loggers:
            logger.experiment.summary.update(
                {"status": summary["status"], "message": summary["message"], "evaluations": summary.get("evaluations", 0)}
            )
    finally:
        wandb.finish(exit_code=0 if summary["status"] == "completed" else 1)
