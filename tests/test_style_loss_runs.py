"""The style losses inside runs: as the style term of a batch, in blends, in the target cache, in the memory guard, and
a tiny synthesis per loss that moves toward its style under an evaluator no loss optimises."""

from __future__ import annotations

import pytest
import torch

from styleexp import measures, memory
from styleexp.build import build
from styleexp.checks import check
from styleexp.errors import UserError
from styleexp.samples import load as load_sample
from styleexp.spec import Spec
from styleexp.style_losses import STYLE_LOSSES, make
from styleexp.targets import TargetCache, Targets
from styleexp.terms.style import Style
from tests.conftest import compose_config, job_in, require_weights

TINY = ["content=null", "style=brick", "size=32", "loss.tv=0", "logger=none", "measures.networks=[]", "stop.rtol=null"]


def _spec(styles: list[torch.Tensor], loss: str, blend: list[float], mode: str = "loss", seed: int = 0) -> Spec:
    return Spec(
        content=None, styles=styles, content_layer="relu2_1", style_layers=["relu1_1", "relu2_1"],
        layer_weights={"relu1_1": 0.5, "relu2_1": 0.5}, style_loss=make(loss),
        weights={"content": 0, "style": 1, "tv": 0}, init="noise", seed=seed, style_blend=blend, blend_mode=mode,
    )  # fmt: skip


class _Extractor(torch.nn.Module):
    """Two fixed random convolutions as ``relu1_1`` and ``relu2_1``: a network small enough for exact checks."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("one", torch.randn(4, 3, 3, 3, generator=generator))
        self.register_buffer("two", torch.randn(6, 4, 3, 3, generator=generator))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        first = torch.relu(torch.nn.functional.conv2d(image, self.one, padding=1))
        return {"relu1_1": first, "relu2_1": torch.relu(torch.nn.functional.conv2d(first, self.two, stride=2))}


def test_a_blend_of_a_distribution_loss_blends_the_losses_of_each_style_image():
    generator = torch.Generator().manual_seed(1)
    styles = [torch.rand(3, 12, 12, generator=generator), torch.rand(3, 10, 14, generator=generator)]
    extractor, targets = _Extractor(), Targets(_Extractor())
    image = torch.rand(1, 3, 12, 12, generator=generator)
    features = extractor(image)
    for name in ("histogram", "gaussian_w2", "mrf", "cmd"):
        (term,) = Style.build([_spec(styles, name, [0.25, 0.75])], targets)
        loss = make(name)
        for layer, part in term.parts(features, image).items():
            each = [loss.score(features[layer], [loss.target(extractor(s[None])[layer])], [0]) for s in styles]
            assert part.item() == pytest.approx(0.5 * (0.25 * each[0] + 0.75 * each[1]).item(), rel=1e-5), name


def test_a_batch_of_stochastic_losses_draws_per_element_and_anew_each_step():
    generator = torch.Generator().manual_seed(2)
    styles = [torch.rand(3, 12, 12, generator=generator) for _ in range(2)]
    extractor, targets = _Extractor(), Targets(_Extractor())
    images = torch.rand(2, 3, 12, 12, generator=generator)
    specs = [_spec([styles[i]], "sliced_w", [1.0], seed=i) for i in range(2)]
    (batch,) = Style.build(specs, targets)
    together = batch.parts(extractor(images), images)
    for i in range(2):  # each element's value is its solo run's: its draws follow its own seed
        (alone,) = Style.build([specs[i]], targets)
        solo = alone.parts(extractor(images[i : i + 1]), images[i : i + 1])
        assert all(together[layer][i].item() == pytest.approx(solo[layer].item()) for layer in solo)
    again = batch.parts(extractor(images), images)
    assert all(torch.equal(again[layer], together[layer]) for layer in again)  # the same draw within a step
    assert batch.next_step()
    redrawn = batch.parts(extractor(images), images)
    assert not torch.equal(redrawn["relu1_1"], together["relu1_1"])
    (statistic,) = Style.build([_spec([styles[0]], "gram", [1.0])], targets)
    assert not statistic.next_step()  # a deterministic loss keeps what the last step evaluated


def test_a_style_blend_of_statistics_is_refused_for_a_loss_whose_targets_do_not_average(tmp_path):
    blend = ["style=[brick,gravel]", "style_blend_mode=statistics"]
    check(job_in(tmp_path / "a", *blend, "gram=mmd_linear").cfg)  # means average
    with pytest.raises(UserError, match="gram=sliced_w cannot .* use style_blend_mode=loss"):
        check(job_in(tmp_path / "b", *blend, "gram=sliced_w").cfg)


def test_targets_are_cached_under_their_settings_and_read_back(tmp_path):
    image = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(3))
    cache = TargetCache(tmp_path / ".targets", "key")
    first = Targets(_Extractor(), cache)
    sliced, sixteen = make("sliced_w"), make("sliced_w", {"projections": 16})
    stored = first.style(image, "relu1_1", sliced)
    assert sliced.cache_kind != sixteen.cache_kind != make("mrf").cache_kind
    second = Targets(_Extractor(), cache)
    assert torch.equal(second.style(image, "relu1_1", sliced), stored) and second.reused == 1
    second.style(image, "relu1_1", make("histogram"))
    assert second.computed == 1


def test_the_memory_guard_counts_a_patch_or_distribution_losss_working_memory():
    gram = memory.estimate(compose_config("size=512", "gram=gram")).need_mb
    for name in ("mrf", "sliced_w", "mmd_gaussian"):
        more = memory.estimate(compose_config("size=512", f"gram={name}")).need_mb
        assert more - gram == pytest.approx(
            memory.style_loss_mb(compose_config("size=512", f"gram={name}"), 1.0), rel=0.3
        )
        assert more > gram + 10, name
    assert memory.style_loss_mb(compose_config("style=null"), 1.0) == 0


@pytest.mark.slow
def test_every_loss_moves_a_tiny_synthesis_toward_its_style_under_an_independent_evaluator():
    require_weights("vgg19", "caffe")
    cfgs = [compose_config(*TINY, f"gram={name}", "steps=10") for name in STYLE_LOSSES]
    built = build(cfgs)
    module, style = built.module, load_sample("brick", 32)
    judge = measures.evaluators(["portilla_simoncelli"])
    start = [measures.measure(judge, image.detach(), None, style)["style/ps"] for image in module.image]
    optimizer = module.configure_optimizers()
    for _ in range(10):
        module.step(optimizer)
    for name, before, image in zip(STYLE_LOSSES, start, module.image):
        after = measures.measure(judge, image.detach().clamp(0, 1), None, style)["style/ps"]
        assert after < 0.97 * before, name  # a loss that does not move the image leaves it where it was


def test_loss_style_is_in_the_gram_losss_units_unless_terms_count_in_their_own():
    from styleexp.build import spec_of

    def style_weight(*overrides: str) -> float:
        return spec_of(compose_config("size=32", *overrides), 32).weights["style"]

    assert style_weight("gram=gram") == style_weight("gram=centered") == 1e-5  # the statistics' runs as they were
    assert style_weight("gram=mmd_gaussian") == pytest.approx(1e-5 * STYLE_LOSSES["mmd_gaussian"].weight_unit)
    assert style_weight("gram=mmd_gaussian", "renormalise=running") == 1e-5
