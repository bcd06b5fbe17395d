"""One run: config -> images, network, targets -> Trainer.fit -> a run folder with everything it produced."""

from __future__ import annotations

import json
import platform
import resource
import signal
import sys
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
from torch.utils.data import DataLoader

from styleexp import preprocessing, samples, statistics
from styleexp.callbacks import ImageSaver, NaNGuard, StepClock, log_image
from styleexp.errors import UserError
from styleexp.images import save_image
from styleexp.module import StyleTransfer
from styleexp.targets import compute_targets
from styleexp.vgg import VGGFeatures, resolve_layer
from styleexp.weights import Weights, file_sha256, load_weights

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


class FreshRunDir(HydraCallback):
    """Refuse to start a single run in a folder that already holds files: earlier results stay intact."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if run_dir.is_dir() and any(run_dir.iterdir()):
            sys.exit(f"styleexp: error: {run_dir} already holds a run; choose a new hydra.run.dir (or leave it unset)")


@dataclass
class RunResult:
    """What a finished, stopped or failed run reports back to the command line."""

    run_dir: Path
    status: str  # completed | interrupted | nan
    message: str

    @property
    def exit_code(self) -> int:
        return {"completed": 0, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


def run(cfg: DictConfig) -> RunResult:
    """Run the style transfer ``cfg`` describes in Hydra's output folder and return how it ended."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    pl.seed_everything(cfg.seed, verbose=False)
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
    statistic = statistics.get(cfg.statistic.value)
    targets = compute_targets(extractor, content, style, content_layer, style_layers, statistic)

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
    )
    for name, image in (("content", content), ("style", style)):
        if image is not None:
            save_image(image, run_dir / f"{name}.png")

    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    run_config = {**OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "choices": choices}
    loggers = [
        # Not recursive: the run config passed to W&B holds `_target_` nodes that must stay data.
        hydra.utils.instantiate({**node, "config": run_config} if "config" in node else node, _recursive_=False, _convert_="all")
        for node in OmegaConf.to_container(cfg.logger, resolve=True).values()
        if node is not None
    ]
    guard, clock = NaNGuard(), StepClock()
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        logger=loggers or False,
        callbacks=[ImageSaver(run_dir, cfg.image_every), guard, clock],
    )
    mode = "transfer" if content is not None and style is not None else "reconstruction" if content is not None else "synthesis"
    print(f"styleexp: {mode} run in {run_dir}", flush=True)

    status, message, started = "interrupted", "", time.perf_counter()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # our fresh run folder
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen VGG
            trainer.fit(module, DataLoader(range(cfg.steps), batch_size=None))
        status = "nan" if guard.failure else "completed"
    except (KeyboardInterrupt, SystemExit):
        # Lightning answers Ctrl-C (and our SIGTERM) with its own graceful shutdown and sys.exit(1).
        status = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        final = save_image(module.image, run_dir / "final.png")
        message = {
            "completed": f"done: {final}",
            "interrupted": f"interrupted at step {trainer.global_step}; the image so far is in {final}",
            "nan": f"stopped: {guard.failure}; the last finite image is in {final}",
        }[status]
        summary = _summary(cfg, module, trainer, clock, weights, status, message, mode, content_layer, style_layers, choices)
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        _finish_wandb(trainer, final, summary)
    return RunResult(run_dir, status, message)


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


def _summary(cfg, module, trainer, clock, weights: Weights, status, message, mode, content_layer, style_layers, choices) -> dict:
    on_gpu = module.image.is_cuda
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "status": status,
        "message": message,
        "mode": mode,
        "steps": trainer.global_step,
        "max_steps": cfg.steps,
        "evaluations": module.evaluations,
        "losses": {key: float(value) for key, value in module.last_losses.items()},
        "initial_losses": {key: float(value) for key, value in module.initial_losses.items()},
        "seconds_per_step": clock.seconds_per_step,
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_kind": "cuda max allocated" if on_gpu else "process max resident",
        "device": torch.cuda.get_device_name() if on_gpu else platform.processor() or platform.machine(),
        "image_size": list(module.image.shape[2:]),
        "content_layer": content_layer if mode != "synthesis" else None,
        "style_layers": style_layers,
        "seed": cfg.seed,
        "weights": {
            "network": weights.network,
            "source": weights.source,
            "preprocessing": weights.preprocessing,
            "file": str(weights.path) if weights.path else None,
            "sha256": file_sha256(weights.path) if weights.path else None,
        },
        "choices": choices,
        "overrides": list(HydraConfig.get().overrides.task),
        "versions": {
            "python": platform.python_version(),
            **{name: version(name) for name in ("styleexp", "torch", "torchvision", "pytorch-lightning", "hydra-core", "wandb")},
        },
    }


def _finish_wandb(trainer: pl.Trainer, final: Path, summary: dict) -> None:
    """Log the final image and the run's status, then close the W&B run however the run ended."""
    from pytorch_lightning.loggers import WandbLogger

    wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
    if not wandb_loggers:
        return
    import wandb

    try:
        log_image(trainer, "images/final", final)
        for logger in wandb_loggers:
            logger.experiment.summary.update({"status": summary["status"], "evaluations": summary["evaluations"]})
    finally:
        wandb.finish(exit_code=0 if summary["status"] == "completed" else 1)
