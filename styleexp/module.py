"""The LightningModule: one image, its only parameter, optimised toward fixed content and style targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn

from styleexp.losses import content_loss, style_loss, tv_loss
from styleexp.statistics import Statistic
from styleexp.targets import Targets
from styleexp.vgg import VGGFeatures

LINE_SEARCH_EVALS = 25  # torch's default budget for one strong-Wolfe line search


@dataclass
class Evaluation:
    """The losses and gradient of one point the optimiser evaluated."""

    image: torch.Tensor
    losses: dict[str, torch.Tensor]
    grad: torch.Tensor | None = None


def _buffers(tensors: Mapping[str, torch.Tensor]) -> nn.Module:
    """A module holding tensors as non-persistent buffers: they follow ``.to(device)`` but are never saved."""
    holder = nn.Module()
    for name, tensor in tensors.items():
        holder.register_buffer(name, tensor, persistent=False)
    return holder


class StyleTransfer(pl.LightningModule):
    """Optimise ``image`` (``[1, 3, H, W]`` in [0, 1]) so the frozen ``extractor`` sees the targets.

    Logged each step (before the global loss weights): ``loss/content``, ``loss/style`` and
    ``loss/style/<layer>`` (layer-weighted parts that sum to ``loss/style``), ``loss/tv``; and
    ``loss/total``, the weighted sum that is optimised. ``evaluations`` counts forward+backward
    passes, which exceed optimiser steps under L-BFGS's line search.
    """

    def __init__(
        self,
        extractor: VGGFeatures,
        init_image: torch.Tensor,
        targets: Targets,
        statistic: Statistic,
        loss_weights: Mapping[str, float],
        layer_weights: Mapping[str, float] | None = None,
        optimizer: str = "lbfgs",
        lr: float = 1.0,
        history_size: int = 100,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        super().__init__()
        self.image = nn.Parameter(init_image.detach().unsqueeze(0).clone(memory_format=torch.contiguous_format))
        self.extractor = extractor
        self.content_targets = _buffers(targets.content)
        self.style_targets = _buffers(targets.style)
        self.statistic = statistic
        self.loss_weights = dict(loss_weights)
        self.layer_weights = dict(layer_weights or {})
        self.optimizer_name, self.lr, self.history_size = optimizer, lr, history_size
        self.betas, self.eps = tuple(betas), eps
        self.evaluations = 0
        # L-BFGS starts each step by evaluating the point its last line search ended on, which
        # that search already evaluated: those points are kept one step to answer it again.
        self.evaluated: list[Evaluation] = []
        self.previous_step: list[Evaluation] = []
        self.initial_losses: dict[str, torch.Tensor] = {}
        self.last_losses: dict[str, torch.Tensor] = {}

    def losses(self) -> dict[str, torch.Tensor]:
        """All loss terms of the current image, keyed as logged; ``loss/total`` is the optimised one."""
        features = self.extractor(self.image)
        zero = self.image.new_zeros(())
        losses: dict[str, torch.Tensor] = {}
        content = content_loss(features, dict(self.content_targets.named_buffers()))
        losses["loss/content"] = sum(content.values(), zero)
        style = style_loss(features, dict(self.style_targets.named_buffers()), self.statistic, self.layer_weights)
        losses["loss/style"] = sum(style.values(), zero)
        losses.update({f"loss/style/{layer}": part for layer, part in style.items()})
        losses["loss/tv"] = tv_loss(self.image) if self.loss_weights["tv"] else zero
        losses["loss/total"] = (
            self.loss_weights["content"] * losses["loss/content"]
            + self.loss_weights["style"] * losses["loss/style"]
            + self.loss_weights["tv"] * losses["loss/tv"]
        )
        return losses

    def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
        known = next((e for e in self.previous_step if e.grad is not None and torch.equal(e.image, self.image)), None)
        if known is not None:
            self.last_losses = known.losses
            # The known value, with the known gradient at this very point; no network pass.
            return known.losses["loss/total"] + ((self.image - self.image.detach()) * known.grad).sum()
        losses = self.losses()
        self.evaluations += 1
        self.last_losses = {key: value.detach() for key, value in losses.items()}
        if self.evaluations == 1:
            self.initial_losses = self.last_losses
        if self.optimizer_name == "lbfgs":
            self.evaluated.append(Evaluation(self.image.detach().clone(), self.last_losses))
        return losses["loss/total"]

    def on_after_backward(self) -> None:
        if self.evaluated and self.evaluated[-1].grad is None:
            self.evaluated[-1].grad = self.image.grad.detach().clone()

    def on_train_batch_start(self, batch: object, batch_idx: int) -> None:
        self.previous_step, self.evaluated = self.evaluated, []

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.optimizer_name != "lbfgs":
            with torch.no_grad():
                self.image.clamp_(0, 1)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        # Only on the steps Lightning passes to the loggers: each self.log call costs about 1 ms,
        # a sixth of a step at 64 px.
        if self.trainer.global_step % max(1, self.trainer.log_every_n_steps) and not self.trainer.should_stop:
            return
        self.log("loss/total", self.last_losses["loss/total"], prog_bar=True)
        self.log_dict({key: value for key, value in self.last_losses.items() if key != "loss/total"})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "lbfgs":
            # One L-BFGS iteration per Lightning step, so `steps` counts iterations and per-step
            # hooks (logging, images, NaN checks) see every one; the history carries over. torch
            # derives max_eval = max_iter * 5 // 4, which for max_iter=1 leaves the line search no
            # evaluations at all, so give it its own budget.
            return torch.optim.LBFGS(
                [self.image],
                lr=self.lr,
                max_iter=1,
                max_eval=1 + LINE_SEARCH_EVALS,
                history_size=self.history_size,
                line_search_fn="strong_wolfe",
            )
        return torch.optim.Adam([self.image], lr=self.lr, betas=self.betas, eps=self.eps)
