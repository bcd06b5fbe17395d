"""``python -m styleexp.bench.bundle DIR``: what a lent GPU machine needs to run ``make gpu-check`` from this checkout.

That machine has its own Python 3.12 with torch, Lightning, numpy, Pillow, pytest and xdist, and no
network; at most 64 MiB of the checkout and its git-ignored folders travel to it. The bundle holds
the float16 VGG-19 weights (``weights/``, 40 MB) and wheels of the packages it lacks
(``wheels/``): Hydra and OmegaConf, and W&B with what it needs there, in the versions of this
environment. styleexp itself runs from the checkout (``cli.py`` finds ``conf/`` beside it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from styleexp.bench.gpu import write_half_weights

PROG = "styleexp-gpu-bundle"
ROOTS = ("hydra-core", "wandb", "typing-extensions")  # typing-extensions: pydantic needs a newer one than some have
# Of what the roots need, what the lent machine holds already (device/KINDS.md, as read on 2026-11-17).
THERE = {"anyio", "certifi", "charset-normalizer", "click", "h11", "httpcore", "httpx", "idna", "packaging",
         "protobuf", "pyyaml", "requests", "urllib3", "xxhash"}  # fmt: skip
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]  # fmt: skip
LIMIT = 64 * 2**20  # what travels to the machine: the checkout's tracked files and the carried folders


def carried() -> dict[str, str]:
    """Name -> version of every distribution to carry: the roots and what they need, less what is there."""
    versions: dict[str, str] = {}
    todo = list(ROOTS)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in versions or name in THERE:
            continue
        distribution = metadata.distribution(name)
        versions[name] = distribution.version
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": "", "python_version": "3.12"}):
                todo.append(requirement.name)
    return versions


def fetch(versions: dict[str, str], wheels: Path) -> None:
    """Wheels of ``versions`` for CPython 3.12 on x86-64 Linux into ``wheels``; a pure-Python source-only package
    (antlr4-python3-runtime) is built into one here."""
    pip = [sys.executable, "-m", "pip", "--quiet"]
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    for name, version in sorted(versions.items()):
        binary = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                  "--implementation", "cp", *platforms, "-d", str(wheels), f"{name}=={version}"]  # fmt: skip
        if subprocess.run(binary, capture_output=True).returncode != 0:
            subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), f"{name}=={version}"], check=True)


def mib(files: list[Path]) -> float:
    return sum(path.stat().st_size for path in files if path.is_file()) / 2**20


def checkout_files() -> list[Path]:
    """The checkout's files that travel with the bundle: tracked ones and untracked ones that git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
    return [Path(name.decode()) for name in listed if name]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, nargs="?", default=Path(".gpu-bundle"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.bundle, ignore_errors=True)
    write_half_weights(args.bundle / "weights")
    versions = carried()
    fetch(versions, args.bundle / "wheels")
    bundled, checkout = mib(list(args.bundle.rglob("*"))), mib(checkout_files())
    size = bundled + checkout
    print(f"{PROG}: {len(versions)} wheels in {args.bundle / 'wheels'}; the bundle is {bundled:.1f} MiB, with the "
          f"checkout {size:.1f} MiB travel (limit {LIMIT / 2**20:.0f} MiB)")  # fmt: skip
    if size * 2**20 > LIMIT:
        print(f"{PROG}: error: {size:.1f} MiB would not travel (limit {LIMIT / 2**20:.0f} MiB); leave out wheels the "
              "machine has, or untracked files", file=sys.stderr)  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
