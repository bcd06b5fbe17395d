"""``styleexp-validate-measures``: every fair measure through the validation tests, from the command line."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from styleexp import outcome
from styleexp.errors import UserError
from styleexp.measures import probes, validation
from styleexp.measures.evaluator import DEFAULT_EVALUATORS, evaluators


def main(argv: list[str] | None = None) -> None:
    """``styleexp-validate-measures [IMAGE_DIR ...]``: every fair measure through tests whose answer is known.

    Writes ``validation.csv`` and ``validation.md`` (measure x test -> accuracy, with the number of
    trials; the negative controls last) into a new folder under ``outputs/validation/``, prints the
    table and says which measures are weak and why.
    """
    parser = argparse.ArgumentParser(prog="styleexp-validate-measures", description=main.__doc__)
    parser.add_argument(
        "folders",
        type=Path,
        nargs="*",
        metavar="IMAGE_DIR",
        help="folders of images (default: the bundled samples not kept for fitting reference statistics)",
    )
    parser.add_argument("--evaluators", nargs="+", default=list(DEFAULT_EVALUATORS), help="evaluators to validate")
    parser.add_argument(
        "--run", type=Path, action="append", default=[], help="a run folder whose output tests the content measures"
    )
    parser.add_argument("--size", type=int, default=probes.SIZE, help="longest side of the test images, in pixels")
    parser.add_argument(
        "--out", type=Path, help="where to write the table (default: a new folder under outputs/validation/)"
    )
    parser.add_argument("--weights-dir", help="where the evaluators' weights are (default: as for runs)")
    args = parser.parse_args(argv)
    try:
        for folder in [*args.folders, *args.run]:
            if not folder.is_dir():
                what = "a file, not a folder" if folder.exists() else "no such folder"
                raise UserError(f"{folder}: {what}; give folders of images (or run folders with --run)")
        images = probes.folder_images(args.folders, args.size) if args.folders else probes.bundled_images(args.size)
        if len(images) < 2:
            raise UserError(
                f"{len(images)} image found; the tests compare images with each other, so give at least two"
            )
        judges = evaluators(args.evaluators, args.weights_dir)
    except UserError as error:
        outcome.refuse(error)
    results = validation.validate(images, judges, args.run) + validation.controls(images)
    out = args.out or Path("outputs/validation") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    validation.write(results, out)
    print(validation.markdown(results), end="")
    print(f"styleexp: {len(images)} images, {len(judges)} evaluators and the controls; table in {out}/validation.csv")
    for measure, reason in validation.reasons(results).items():
        print(f"styleexp: weak: {measure}: {reason}")
