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
from styleexp.lockstep import Lockstep
from styleexp.optimizers import Optimizer
from styleexp.terms import Term, total


@dataclass
class Evaluation:
    """One point an element's optimiser evaluated: the element's image ``[3, H, W]``, its losses (numbers) and their
    gradient."""

    image: torch.Tensor
    losses: dict[str, torch.Tensor]
    grad: torch.Tensor


class StyleTransfer(pl.LightningModule):
    """Optimise ``image`` (``[N, 3, H, W]`` in [0, 1]) so the frozen ``extractor`` sees each element's targets.

    Each element's loss is the weighted sum of the ``terms`` that apply to it (``terms/``), and
    each element has an optimiser of its own (``lockstep.py``): a solo run is N = 1 and elements do
    not interact. ``active`` says which elements still step; ``finish(i, step)`` ends element i's
    optimisation (converged, at its cap or failed), and ``finished_at`` records when.
    ``losses()`` gives every logged key per element; ``output()`` the images as shown, where
    ``chroma`` (the content's, under ``colors=luminance``; ``coloured`` says for which elements)
    colours the optimised luminance. ``evaluations`` counts network passes and
    ``element_evaluations`` the passes that evaluated each element, which exceed its optimiser
    steps under L-BFGS's line search. ``renormalise`` says how the terms add up (``terms.RENORMALISATIONS``).
    """

    def __init__(
        self,
        extractor: Extractor,
        init_image: torch.Tensor,
        terms: Sequence[Term],
        optimizer: Optimizer,
        settings: Any,
        chroma: torch.Tensor | None = None,
        coloured: Sequence[bool] | None = None,
        renormalise: str = "none",
    ):
        super().__init__()
        self.automatic_optimization = False  # one step helper, `step`, for Lightning and plain loops alike
        self.image = nn.Parameter(init_image.detach().clone(memory_format=torch.contiguous_format))
        count = self.image.shape[0]
        self.extractor = extractor
        self.terms = nn.ModuleList(terms)
        self.optimizer, self.settings = optimizer, settings
        self.renormalise = renormalise
        self.register_buffer("chroma", chroma, persistent=False)  # [N, 2, H, W] for colors=luminance
        coloured = [chroma is not None] * count if coloured is None else list(coloured)
        self.register_buffer("coloured", torch.tensor(coloured).view(-1, 1, 1, 1), persistent=False)
        self.active = [True] * count
        self.finished_at: list[int | None] = [None] * count
        self.evaluations = 0
        self.element_evaluations = [0] * count
        # L-BFGS starts each step by evaluating the point its last line search ended on, which
        # that search already evaluated: each element's points of a step are kept to answer it again.
        self.evaluated: list[list[Evaluation]] = [[] for _ in range(count)]
        self.initial_losses: dict[str, torch.Tensor] = {}
        self.last_losses: dict[str, torch.Tensor] = {}
        self.optimizer_states: list[dict | None] = [None] * count  # where resumed elements' optimisers stood

    def losses(self, rows: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Every loss of the current images, keyed as logged, each ``[N]``; ``loss/total`` is the optimised one.

        With ``rows`` (sorted), of those elements only: each loss is ``[len(rows)]``, and the others
        cost nothing. Each element goes through the network only as deep as its own terms read.
        """
        every = rows is None or len(rows) == self.image.shape[0]
        rows = list(range(self.image.shape[0])) if every else list(rows)
        image = self.image if every else self.image.index_select(0, torch.tensor(rows, device=self.image.device))
        # Each element only as deep as its own terms read (the extractor holds every scale's and element's layers).
        needs = [{layer for term in self.terms if row in term.elements for layer in term.layers} for row in rows]
        return total(self.terms, self.extractor(image, needs), image, None if every else rows, self.renormalise)

    def output(self) -> torch.Tensor:
        """The images as saved and shown ``[N, 3, H, W]``: the optimised ones, or their luminance with ``chroma``."""
        image = self.image.detach()
        return image if self.chroma is None else torch.where(self.coloured, with_chroma(image, self.chroma), image)

    def finish(self, index: int, step: int) -> None:
        """End element ``index``'s optimisation after ``step`` steps; the trainer stops once every element has."""
        if self.active[index]:
            self.active[index], self.finished_at[index] = False, step

    def steps_of(self, index: int, step: int) -> int:
        """The steps element ``index`` took when the batch has taken ``step``."""
        return self.finished_at[index] if self.finished_at[index] is not None else step

    def units(self) -> dict[str, torch.Tensor]:
        """Each relative term's unit for every batch element (``[N]``, 0 where it does not apply, NaN until its first
        evaluation sets it)."""
        units = {}
        for term in self.terms:
            if term.relative:
                units[term.name] = units.get(term.name, self.image.new_zeros(self.image.shape[0])).index_copy(
                    0, term.index, term.reference
                )
        return units

    def use_units(self, units: dict[str, torch.Tensor]) -> None:
        """Give relative terms the units of an earlier scale: a weight then means the same at every scale."""
        for term in self.terms:
            if term.relative and term.name in units:
                term.reference = units[term.name].to(self.image.device).index_select(0, term.index)

    def step(
        self, optimizer: torch.optim.Optimizer, backward: Callable[[torch.Tensor], None] = torch.Tensor.backward
    ) -> None:
        """One optimiser step of every active element. ``optimizer`` is the ``Lockstep`` (or Lightning's wrapper of it),
        ``backward`` runs a backward pass. Points an element evaluated in its previous step are answered from memory."""
        lockstep = getattr(optimizer, "optimizer", optimizer)
        previous, self.evaluated = self.evaluated, [[] for _ in self.evaluated]
        if any([term.next_step() for term in self.terms]):  # every term told, so a list, not a generator
            previous = [[] for _ in previous]

        def remembered(i: int) -> Evaluation | None:
            return next((e for e in previous[i] if torch.equal(e.image, self.image[i])), None)

        def closure() -> torch.Tensor:
            known = {i: e for i in lockstep.requested if (e := remembered(i)) is not None}
            todo = [i for i in lockstep.requested if i not in known]
            self.image.grad = None
            if todo:
                losses = self.losses(todo)
                backward(losses["loss/total"].sum())
                self._record(todo, {key: value.detach() for key, value in losses.items()})
            else:
                self.image.grad = torch.zeros_like(self.image)
            for i, e in known.items():
                self.image.grad[i] = e.grad
                for key, value in e.losses.items():
                    self.last_losses[key][i] = value
            if self.optimizer.quasi_newton:
                for i in todo:
                    losses = {key: value[i].clone() for key, value in self.last_losses.items()}
                    self.evaluated[i].append(
                        Evaluation(self.image[i].detach().clone(), losses, self.image.grad[i].clone())
                    )
            return self.last_losses["loss/total"]

        optimizer.step(closure)
        if not self.optimizer.quasi_newton:
            with torch.no_grad():
                self.image.clamp_(0, 1)

    def _record(self, rows: list[int], losses: dict[str, torch.Tensor]) -> None:
        """Keep a network pass's losses of ``rows`` (each ``[len(rows)]``) as their last (the first pass's as the
        initial ones)."""
        self.evaluations += 1
        for i in rows:
            self.element_evaluations[i] += 1
        if not self.last_losses:
            count = self.image.shape[0]
            self.last_losses = {key: value.new_zeros(count) for key, value in losses.items()}
        index = torch.tensor(rows, device=self.image.device)
        for key, value in losses.items():
            self.last_losses[key].index_copy_(0, index, value)
        if not self.initial_losses:
            self.initial_losses = {key: value.clone() for key, value in self.last_losses.items()}

    def training_step(self, batch: object, batch_idx: int) -> None:
        self.step(self.optimizers(), self.manual_backward)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        if not any(self.active):
            self.trainer.should_stop = True
        # For the progress bar only (callbacks.LossLogger feeds the loggers), and only at logging
        # steps: each self.log call costs about 1 ms, a sixth of a step at 64 px.
        if self.trainer.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            self.log("loss/total", self.last_losses["loss/total"].sum(), prog_bar=True, logger=False)

    def configure_optimizers(self) -> Lockstep:
        return Lockstep(
            self.image, lambda rows: self.optimizer.build(rows, self.settings), self.active, self.optimizer_states
        )
