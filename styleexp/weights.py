"""Where VGG weights come from: a weights directory, a download, a file, or a seeded random initialisation.

A weights directory holds ``{network}_imagenet_{source}.pth`` files, each the state dict of the
network's architecture (for VGG, torchvision's ``features``: keys ``0.weight``, ``0.bias``, ...). The directory is,
in order: the one passed in (the ``weights_dir`` config value), ``$STYLEEXP_WEIGHTS_DIR``, or
``~/.cache/styleexp/weights``. A missing file is downloaded there once, on a connected machine. A file may hold
float16 values (``make gpu-bundle`` writes such a copy to travel light); they are read as float32.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from styleexp import preprocessing
from styleexp.errors import UserError
from styleexp.extractors import NETWORKS

ENV_VAR = "STYLEEXP_WEIGHTS_DIR"
SOURCES = ("caffe", "torchvision", "random")


class WeightsUnavailable(UserError):
    """A network's weights can neither be found nor downloaded: every job that needs them would fail the same way."""


@dataclass(frozen=True)
class Weights:
    """A features state dict and where it came from.

    ``source`` is ``caffe``, ``torchvision``, ``random`` or a file path; ``preprocessing`` names the
    input convention the weights expect (see :mod:`styleexp.preprocessing`); ``path`` is the file
    read, ``None`` for random weights.
    """

    network: str
    source: str
    preprocessing: str
    state_dict: dict[str, torch.Tensor]
    path: Path | None


def weights_dir(configured: str | os.PathLike | None = None) -> Path:
    """The weights directory: ``configured``, else ``$STYLEEXP_WEIGHTS_DIR``, else the user cache."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "styleexp" / "weights"


def weights_file(network: str, source: str, directory: str | os.PathLike | None = None) -> Path:
    """Where ``network``'s ``source`` weights live: ``{dir}/{network}_imagenet_{source}.pth``."""
    return weights_dir(directory) / f"{network}_imagenet_{source}.pth"


def load_weights(
    network: str,
    source: str = "caffe",
    *,
    directory: str | os.PathLike | None = None,
    preprocessing_name: str | None = None,
    seed: int = 0,
    download: bool = True,
) -> Weights:
    """Load ``network``'s weights from ``source``: ``caffe``, ``torchvision``, ``random`` or a file path.

    Named sources imply their preprocessing; a file path needs ``preprocessing_name``. Missing
    named files are downloaded into the weights directory when ``download`` is true.
    """
    NETWORKS[network]  # an unknown network fails here, naming the known ones
    if source == "random":
        return Weights(
            network, source, _implied(source, preprocessing_name, "torchvision"), random_state_dict(network, seed), None
        )
    if source in SOURCES:
        path = weights_file(network, source, directory)
        if not path.is_file():
            if not download:
                raise WeightsUnavailable(_missing_message(path, network, source, "downloads are switched off"))
            _download(network, source, path)
        return Weights(network, source, _implied(source, preprocessing_name, source), _read(path, network), path)
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserError(
            f"network.weights={source}: no such file; use caffe, torchvision, random or a path to a .pth file"
        )
    if preprocessing_name is None:
        raise UserError(
            f"{path}: name the preprocessing these weights expect with network.preprocessing=caffe|torchvision"
        )
    preprocessing.get(preprocessing_name)
    return Weights(network, str(path), preprocessing_name, _read(path, network), path)


@functools.lru_cache(maxsize=4)
def random_state_dict(network: str, seed: int) -> dict[str, torch.Tensor]:
    """A seeded He initialisation (torchvision's VGG scheme): for tests of logic, not of style."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = NETWORKS[network].architecture("max")
        for module in features.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return features.state_dict()


def features_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a features state dict's names and float32 values, in layer order: the same for any file holding
    those weights."""
    digest = hashlib.sha256()
    for key in sorted(state_dict, key=_key_order):
        digest.update(key.encode())
        digest.update(state_dict[key].detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks (once per process for a file that has not changed)."""
    return _file_sha256(*_identity(Path(path)))


@functools.lru_cache(maxsize=16)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _implied(source: str, given: str | None, implied: str) -> str:
    if given is not None and given != implied:
        raise UserError(f"{source} weights expect {implied} preprocessing, not {given}; drop network.preprocessing")
    return implied


def _identity(path: Path) -> tuple[Path, int, int]:
    """A file as caches know it: where it is, its size and when it last changed."""
    facts = path.resolve().stat()
    return path.resolve(), facts.st_size, facts.st_mtime_ns


def _read(path: Path, network: str) -> dict[str, torch.Tensor]:
    """The features state dict in ``path``, read once per process (the jobs of a sweep share it; nothing changes it)."""
    return _read_file(*_identity(path), network)


@functools.lru_cache(maxsize=4)
def _read_file(path: Path, size: int, mtime_ns: int, network: str) -> dict[str, torch.Tensor]:
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise UserError(
            f"{path}: not a PyTorch weights file ({type(error).__name__}); replace it with a .pth state dict"
        ) from None
    if not isinstance(state_dict, dict):
        raise UserError(
            f"{path}: holds a {type(state_dict).__name__}, not a state dict; save model.features.state_dict()"
        )
    # A half-precision copy (what travels to a lent GPU) computes in float32 like the original; the
    # run records the file's own SHA-256, so its results stay told apart from the float32 file's.
    state_dict = {
        key: value.float() if value.is_floating_point() else value
        for key, value in NETWORKS[network].features_of(state_dict).items()
    }
    _check_layout(state_dict, network, path)
    return state_dict


def _check_layout(state_dict: dict[str, torch.Tensor], network: str, path: Path) -> None:
    with torch.device("meta"):
        expected = {key: value.shape for key, value in NETWORKS[network].architecture("max").state_dict().items()}
    missing = sorted(expected.keys() - state_dict.keys(), key=_key_order)
    unexpected = sorted(state_dict.keys() - expected.keys(), key=_key_order)
    wrong = [
        key
        for key in sorted(expected.keys() & state_dict.keys(), key=_key_order)
        if state_dict[key].shape != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if wrong:
        key = wrong[0]
        problems.append(
            f"wrong shape for {_few(wrong)} (e.g. {key}: {tuple(state_dict[key].shape)}, expected "
            f"{tuple(expected[key])})"
        )
    if problems:
        raise UserError(
            f"{path}: not {network} features weights: {'; '.join(problems)}; check network= matches the file"
        )


def _key_order(key: str) -> tuple[int, str]:
    head, _, tail = key.partition(".")
    return (int(head), tail) if head.isdigit() else (1 << 30, key)


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def _download(network: str, source: str, target: Path) -> None:
    url = NETWORKS[network].downloads.get(source)
    if url is None:
        raise WeightsUnavailable(_missing_message(target, network, source, "no download of them is known"))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            raw = Path(tmp) / url.rsplit("/", 1)[-1]
            # torchvision's files are named by their SHA-256 prefix, which torch.hub checks.
            prefix = re.search(r"-([0-9a-f]{8,})\.pth$", url) if "download.pytorch.org" in url else None
            torch.hub.download_url_to_file(url, str(raw), hash_prefix=prefix and prefix.group(1), progress=True)
            features = NETWORKS[network].features_of(torch.load(raw, map_location="cpu", weights_only=True))
            expected = NETWORKS[network].features_sha256.get(source)
            if expected and features_sha256(features) != expected:
                raise WeightsUnavailable(
                    _missing_message(
                        target,
                        network,
                        source,
                        f"the download from {url} is not the genuine weights (their SHA-256 differs), so it was not "
                        "stored",
                    )
                )
            converted = Path(tmp) / target.name
            torch.save(features, converted)
            os.replace(converted, target)
    except (URLError, OSError, RuntimeError) as error:  # RuntimeError: torch.hub's hash check
        raise WeightsUnavailable(
            _missing_message(target, network, source, f"the download from {url} failed: {_reason(error)}")
        ) from None


def _reason(error: Exception) -> str:
    return str(getattr(error, "reason", None) or error).splitlines()[0]


def _missing_message(path: Path, network: str, source: str, why: str) -> str:
    return (
        f"{network} {source} weights not found: expected {path.name} in {path.parent} and {why}; "
        f"copy the file there, or point {ENV_VAR} (or weights_dir=) at a directory that holds it"
    )
