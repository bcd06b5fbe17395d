"""Device-correct by construction: what a run holds follows its module, and the run names the one device it used.

No GPU is needed: Lightning ends every fit by moving the module back to the CPU, and a dtype round
trip (``module.double()``) moves exactly what a device move moves, buffers and parameters. A tensor
kept anywhere else would be left on the GPU, and shows here as one left in float32.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from styleexp import devices, fitting, run, speed
from styleexp.build import build, prepare
from styleexp.callbacks import ImageSaver, LossLogger, NaNGuard, StepClock, StopRule
from styleexp.errors import UserError

from .conftest import compose_config, require_weights, run_in_process, summary

TINY = ["logger=none", "network=vgg16", "style_layers=gatys", "measures.networks=[]", "stop.rtol=null"]


@pytest.fixture
def _weights() -> None:
    require_weights("vgg16", "caffe")


def _tensors(value: object, path: str, seen: set[int]) -> list[str]:
    """Where plain attributes of ``value`` (followed through containers and objects) hold tensors."""
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _tensors(item, f"{path}[{key!r}]", seen)]
    if isinstance(value, (list, tuple)):
        return [p for i, item in enumerate(value) for p in _tensors(item, f"{path}[{i}]", seen)]
    if isinstance(value, torch.nn.Module):  # its buffers, parameters and submodules move with it
        skip = {"_buffers", "_parameters", "_modules"}
        return [
            p for key, item in vars(value).items() if key not in skip for p in _tensors(item, f"{path}.{key}", seen)
        ]
    if hasattr(value, "__dict__") and type(value).__module__.startswith("styleexp"):
        return [p for key, item in vars(value).items() for p in _tensors(item, f"{path}.{key}", seen)]
    return []


def test_terms_and_callbacks_hold_no_tensor_outside_the_module_s_buffers(tmp_path, _weights):
    cfg = compose_config(*TINY, "size=32", "steps=3")
    module = build([cfg]).module
    callbacks = [
        LossLogger([[]], 1, 32, [0]), ImageSaver([tmp_path], [[]], 1, 32, [0]), StopRule([None], [None], [3]),
        StepClock(1), NaNGuard(),
    ]  # fmt: skip
    trainer = pl.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", callbacks=callbacks)  # fmt: skip
    trainer.fit(module, torch.utils.data.DataLoader(range(3), batch_size=None))
    assert any(term.relative for term in module.terms)  # TV's unit was set, and is a buffer
    held = [p for term in module.terms for p in _tensors(term, type(term).__name__, set())]
    held += [p for callback in callbacks for p in _tensors(callback, type(callback).__name__, set())]
    assert held == []


def test_a_two_scale_run_survives_its_module_moved_between_fits(tmp_path, _weights, monkeypatch):
    fit = pl.Trainer.fit

    def fit_then_move(trainer, module, *args, **kwargs):
        fit(trainer, module, *args, **kwargs)
        module.double()  # as Lightning's teardown moves a GPU module to the CPU

    monkeypatch.setattr(pl.Trainer, "fit", fit_then_move)
    cfg = compose_config(*TINY, "size=48", "scales=[32,48]", "steps=[3,2]")
    network = prepare(cfg)
    result = run_in_process(tmp_path / "run", *TINY, "size=48", "scales=[32,48]", "steps=[3,2]")
    assert result.status == "completed", result.message
    facts = summary(tmp_path / "run")
    assert [scale["steps"] for scale in facts["scales"]] == [3, 2] and facts["losses"]["loss/tv"] > 0
    # Each scale's targets are computed where the run works, in float32, however the last fit left the network.
    network.extractor.double()
    targets = build([cfg], network, 48).module.terms
    assert all(buffer.dtype in (torch.float32, torch.int64) for term in targets for buffer in term.buffers())


def test_trainer_devices_picks_the_one_gpu_everything_uses(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)

    def device(value: object, accelerator: str = "auto") -> torch.device:
        return devices.device_of(OmegaConf.create({"trainer": {"accelerator": accelerator, "devices": value}}))

    assert device(1) == device("1") == torch.device("cuda", 0)
    assert device([1]) == device("1,") == torch.device("cuda", 1)
    assert device([1], accelerator="cpu") == torch.device("cpu")
    for many in (2, [0, 1], [5], "auto"):
        with pytest.raises(UserError, match="a run uses one"):
            device(many)


def test_precision_is_checked_against_the_gpu_that_will_run(tmp_path, monkeypatch, _weights):
    monkeypatch.setattr(devices, "device_of", lambda cfg: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    result = run_in_process(tmp_path / "run", *TINY, "size=32", "steps=2", "speed.precision=tf32")
    assert result.status == "failed" and "Ampere" in result.message  # refused before any tensor reaches a GPU
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    speed.check_precision("tf32", devices.device_of(compose_config()))


def test_the_summary_names_the_device_the_run_used(tmp_path, _weights, monkeypatch):
    used = []
    monkeypatch.setattr(fitting.devices, "device_name", lambda device: used.append(device) or f"named {device}")
    run_in_process(tmp_path / "run", *TINY, "size=32", "steps=2")
    assert summary(tmp_path / "run")["device"] == "named cpu" and used == [run.devices.device_of(compose_config())]
