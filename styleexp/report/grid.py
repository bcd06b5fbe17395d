"""The report's figure: each run's final image at the row and column of its swept values, labelled."""

from __future__ import annotations

import itertools

import torch
from PIL import Image, ImageDraw, ImageFont

from styleexp.report.load import Run, position
from styleexp.rundir import image_file

CELL = 160  # pixels: the longest side of each image in the grid


def layout(keys: dict[str, list[str]]) -> tuple[list[tuple[str, ...]], list[str]]:
    """Rows are the combinations of all swept keys but the last; columns are the last key's values."""
    if not keys:
        return [()], [""]
    *row_keys, column_key = keys
    return list(itertools.product(*(keys[k] for k in row_keys))), keys[column_key]


def grid(runs: list[Run], keys: dict[str, list[str]]) -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    """The output images laid out by the swept values, labelled, with each row's content and style in front.

    Also returns each run's cell as ``{run folder name: (left, top, right, bottom)}``.
    """
    rows, columns = layout(keys)
    inputs = [name for name in ("content", "style") if any(image_file(run.folder, name).is_file() for run in runs)]
    font = ImageFont.load_default(size=13)
    by_position = {position(run, keys): run for run in runs}
    label_width = max(int(font.getlength(_row_label(keys, row))) + 16 if row else 0 for row in rows)
    sheet = Image.new("RGB", (label_width + CELL * (len(inputs) + len(columns)), 28 + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    cells = {}
    for i, title in enumerate(inputs + [_column_label(keys, c) for c in columns]):
        draw.text((label_width + CELL * i + 4, 8), title, fill="black", font=font)
    for r, row in enumerate(rows):
        top = 28 + CELL * r
        draw.text((6, top + CELL // 2 - 7), _row_label(keys, row), fill="black", font=font)
        row_runs = [by_position.get((*row, column)) for column in columns] if keys else runs[:1]
        first = next((run for run in row_runs if run is not None), None)
        for i, name in enumerate(inputs):
            image = first.image(name) if first else None
            if image is not None:
                sheet.paste(thumbnail(image), (label_width + CELL * i + 2, top + 2))
        for c, run in enumerate(row_runs):
            left = label_width + CELL * (len(inputs) + c)
            image = run.image("final") if run is not None else None
            if run is not None:
                cells[run.folder.name] = (left, top, left + CELL, top + CELL)
            if image is not None:
                sheet.paste(thumbnail(image), (left + 2, top + 2))
            else:
                draw.rectangle((left + 2, top + 2, left + CELL - 3, top + CELL - 3), fill=(225, 225, 225))
            if run is None or run.status != "completed":
                draw.rectangle((left + 2, top + 2, left + CELL - 3, top + 22), fill=(200, 40, 40))
                draw.text((left + 8, top + 5), run.status if run is not None else "missing", fill="white", font=font)
    return sheet, cells


def _row_label(keys: dict[str, list[str]], row: tuple[str, ...]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(list(keys)[:-1], row))


def _column_label(keys: dict[str, list[str]], column: str) -> str:
    return f"{list(keys)[-1]}={column}" if keys else "output"


def thumbnail(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array)
    scale = (CELL - 4) / max(picture.size)
    # Small outputs are enlarged pixel for pixel, so the grid shows what the run made, unblurred.
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), resample)
