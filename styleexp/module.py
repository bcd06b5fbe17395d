"""The LightningModule: a batch of images, its only parameter, optimised toward fixed targets by its loss terms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from styleexp.colors import with_chroma
from styleexp.extractors import Extractor
from styleexp.optimizers import Optimizer
from styleexp.terms import Term, total


@dataclass
class Evaluation:
    """One point the optimiser evaluated: the image, its losses (each ``[N]``) and the gradient of their sum."""

    image: torch.Tensor
    losses: dict[str, torch.Tensor]
    grad: torch.Tensor


class StyleTransfer(pl.LightningModule):
    """Optimise ``image`` (``[N, 3, H, W]`` in [0, 1]) so the frozen ``extractor`` sees each element's targets.

    Each element's loss is the weighted sum of the ``terms`` that apply to it (``terms.py``); the
    optimiser minimises their sum over the batch, so a solo run is N = 1 and elements do not
    interact. ``losses()`` gives every logged key per element; ``output()`` the images as shown, where
    ``chroma`` (the content's, under ``colors=luminance``) colours the optimised luminance.
    ``evaluations`` counts forward+backward passes, which exceed optimiser steps under L-BFGS's line search.
    """

    def __init__(
        self,
        extractor: Extractor,
        init_image: torch.Tensor,
        terms: Sequence[Term],
        optimizer: Optimizer,
        settings: Any,
        chroma: torch.Tensor | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False  # one step helper, `step`, for Lightning and plain loops alike
        self.image = nn.Parameter(init_image.detach().clone(memory_format=torch.contiguous_format))
        self.extractor = extractor
        self.terms = nn.ModuleList(terms)
        self.optimizer, self.settings = optimizer, settings
        self.register_buffer("chroma", chroma, persistent=False)  # [N, 2, H, W] for colors=luminance
        self.evaluations = 0
        # L-BFGS starts each step by evaluating the point its last line search ended on, which
        # that search already evaluated: the points of a step are kept to answer it again.
        self.evaluated: list[Evaluation] = []
        self.initial_losses: dict[str, torch.Tensor] = {}
        self.last_losses: dict[str, torch.Tensor] = {}

    def losses(self) -> dict[str, torch.Tensor]:
        """Every loss of the current image, keyed as logged, each ``[N]``; ``loss/total`` is the optimised one."""
        features = self.extractor(self.image)
        return total(self.terms, features, self.image)

    def output(self) -> torch.Tensor:
        """The images as saved and shown ``[N, 3, H, W]``: the optimised ones, or their luminance with ``chroma``."""
        image = self.image.detach()
        return image if self.chroma is None else with_chroma(image, self.chroma)

    def units(self) -> dict[str, torch.Tensor]:
        """Each relative term's unit for every batch element (``[N]``, 0 where it does not apply), set by its first evaluation."""
        units = {}
        for term in self.terms:
            if term.relative and term.reference is not None:
                units[term.name] = units.get(term.name, self.image.new_zeros(self.image.shape[0])).index_copy(0, term.index, term.reference)
        return units

    def use_units(self, units: dict[str, torch.Tensor]) -> None:
        """Give relative terms the units of an earlier scale: a weight then means the same at every scale."""
        for term in self.terms:
            if term.relative and term.name in units:
                term.reference = units[term.name].to(self.image.device).index_select(0, term.index)

    def step(self, optimizer: torch.optim.Optimizer, backward: Callable[[torch.Tensor], None] = torch.Tensor.backward) -> None:
        """One optimiser step on the image: the closure, the known-point answer, clamping. ``backward`` runs a backward pass."""
        previous, self.evaluated = self.evaluated, []

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            known = next((e for e in previous if torch.equal(e.image, self.image)), None)
            if known is not None:
                # Evaluated in the previous step: its value and gradient, no network pass.
                self.last_losses = known.losses
                self.image.grad = known.grad.clone()
                return known.losses["loss/total"].sum()
            losses = self.losses()
            loss = losses["loss/total"].sum()
            backward(loss)
            self.evaluations += 1
            self.last_losses = {key: value.detach() for key, value in losses.items()}
            if self.evaluations == 1:
                self.initial_losses = self.last_losses
            if self.optimizer.quasi_newton:
                self.evaluated.append(Evaluation(self.image.detach().clone(), self.last_losses, self.image.grad.detach().clone()))
            return loss.detach()

        optimizer.step(closure)
        if not self.optimizer.quasi_newton:
            with torch.no_grad():
                self.image.clamp_(0, 1)

    def training_step(self, batch: object, batch_idx: int) -> None:
        self.step(self.optimizers(), self.manual_backward)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        # For the progress bar only (callbacks.LossLogger feeds the loggers), and only at logging
        # steps: each self.log call costs about 1 ms, a sixth of a step at 64 px.
        if self.trainer.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            self.log("loss/total", self.last_losses["loss/total"].sum(), prog_bar=True, logger=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer.build([self.image], self.settings)
