"""What the terms compare the image to, computed once from the content and style images.

In a sweep, targets are also shared between jobs through a ``TargetCache`` on disk: one file per
image, network, weights, pooling, layer and style loss, so a job reuses what an earlier job computed.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from styleexp.errors import UserError
from styleexp.extractors import Extractor
from styleexp.style_losses import StyleLoss

LOCK_TIMEOUT_S = 600  # far longer than any job takes to compute its targets


class TargetCache:
    """Targets as files in ``folder``, keyed by everything they depend on; safe for parallel jobs.

    ``network_key`` must name the extractor completely (network, weights file or seed, preprocessing,
    pooling). Each file starts with the SHA-256 of the tensor's bytes that follow: a truncated or
    altered entry is recomputed and replaced, with a warning, rather than read as a target.
    """

    def __init__(self, folder: Path, network_key: str):
        self.folder = Path(folder)
        self.network_key = network_key

    def path(self, image: torch.Tensor, layer: str, kind: str) -> Path:
        digest = hashlib.sha256(image.detach().cpu().contiguous().numpy().tobytes())
        digest.update(f"{list(image.shape)}|{self.network_key}|{layer}|{kind}".encode())
        return self.folder / f"{layer}-{kind}-{digest.hexdigest()[:24]}.pt"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache's lock: parallel jobs wait rather than compute the same targets twice.

        The lock file is never followed if it is a symbolic link (filelock opens it with ``O_NOFOLLOW``), nor
        truncated: a link planted there is refused, and the file it points at is left as it was.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "lock"
        lock = FileLock(path, timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise UserError(
                f"{path}: another process has held the target cache's lock for {LOCK_TIMEOUT_S} s; let it finish "
                "or end it, then go on with styleexp-resume SWEEP_DIR"
            ) from None
        except OSError:
            if not path.is_symlink():
                raise
            raise UserError(
                f"{path} is a symbolic link, which the target cache never follows; delete the link (the cache makes "
                "its own lock file)"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def load(self, path: Path, device: torch.device) -> torch.Tensor | None:
        """The tensor stored at ``path``; None if there is none, or if it is damaged (then said on stderr)."""
        if not path.is_file():
            return None
        data = path.read_bytes()
        digest, _, payload = data.partition(b"\n")
        if len(digest) != 64 or hashlib.sha256(payload).hexdigest().encode() != digest:
            reason = "its checksum does not match"
        else:
            try:
                return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
            except Exception as error:  # a file torch cannot read is recomputed, whatever torch raised
                # Torch's own account runs to paragraphs: its first line names the problem.
                reason = f"{type(error).__name__}: {str(error).splitlines()[0]}" if str(error) else type(error).__name__
        print(f"styleexp: warning: the cached target {path} is damaged ({reason}); computing it again", file=sys.stderr)
        return None

    def save(self, path: Path, tensor: torch.Tensor) -> None:
        """Store ``tensor`` at ``path`` atomically, behind its checksum."""
        buffer = io.BytesIO()
        torch.save(tensor.cpu(), buffer)
        payload = buffer.getvalue()
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with open(partial, "wb") as file:
            file.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)


class Targets:
    """Content activations and style targets of images, each computed once (one extractor pass per image).

    Images are ``[3, H, W]`` in [0, 1]; targets keep a leading batch dimension of 1. With a ``cache``,
    targets found there are loaded instead, and new ones are stored there. ``computed`` and
    ``reused`` count targets, one per image, layer and kind.
    """

    def __init__(self, extractor: Extractor, cache: TargetCache | None = None):
        self.extractor = extractor
        self.cache = cache
        self.computed = 0
        self.reused = 0
        self._features: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def activations(self, image: torch.Tensor, layer: str) -> torch.Tensor:
        """``[1, C, H', W']``: the extractor's activations of ``image`` at ``layer``."""
        return self._target(image, layer, "content", lambda features: features)

    def style(self, image: torch.Tensor, layer: str, loss: StyleLoss) -> torch.Tensor:
        """What the style loss ``loss`` keeps of ``image``'s activations at ``layer`` (its ``target``)."""
        return self._target(image, layer, loss.cache_kind, loss.target)

    @torch.no_grad()
    def _target(self, image: torch.Tensor, layer: str, kind: str, transform) -> torch.Tensor:
        device = next(self.extractor.buffers()).device
        if self.cache is None:
            self.computed += 1
            return transform(self._forward(image)[layer])
        with self.cache.locked():
            path = self.cache.path(image, layer, kind)
            found = self.cache.load(path, device)
            if found is not None:
                self.reused += 1
                return found
            target = transform(self._forward(image)[layer])
            self.cache.save(path, target)
            self.computed += 1
            return target

    def _forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if id(image) not in self._features:
            # The image is kept with its features, so its id cannot be reused while this holds it.
            device = next(self.extractor.buffers()).device
            self._features[id(image)] = (image, self.extractor(image[None].to(device)))
        return self._features[id(image)][1]
