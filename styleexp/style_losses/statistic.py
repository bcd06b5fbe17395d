"""The statistics of ``statistics.py`` as losses: the mean squared error between the image's statistic and the style
image's (``gram``, ``centered``, ``both``, ``mean_std``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from styleexp.statistics import STATISTICS, mse
from styleexp.style_losses import StyleLoss, register


class StatisticLoss(StyleLoss):
    """``MSE(statistic(F), statistic(S))``, the statistic ``[n, ., C]`` divided by the positions (``statistics.py``)."""

    averaged = True
    squared_error = True

    @property
    def cache_kind(self) -> str:
        return f"style-{self.name}"  # as before the losses had settings: the caches already made stay valid

    def target(self, features: torch.Tensor) -> torch.Tensor:
        return STATISTICS[self.name](features)

    def score(self, features: torch.Tensor, targets: Sequence[torch.Tensor], seeds: Sequence[int]) -> torch.Tensor:
        return mse(STATISTICS[self.name](features), torch.cat(list(targets)))


SAID = {
    "gram": "The Gram matrix's squared error (Gatys et al.): channel products averaged over positions.",
    "centered": "The centered Gram matrix's squared error: the channels' covariance.",
    "both": "The Gram and centered Gram matrices stacked: channel means and covariances.",
    "mean_std": "Each channel's mean and standard deviation (AdaIN's statistics; MMD with a batch-norm kernel).",
}
for _name in STATISTICS:
    _made = {"name": _name, "__module__": __name__, "__doc__": SAID.get(_name, STATISTICS[_name].__doc__)}
    register(type(f"{_name.title().replace('_', '')}Loss", (StatisticLoss,), _made))
