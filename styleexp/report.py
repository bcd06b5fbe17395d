"""A finished sweep as a paper would show it: an image grid, a table of fair measures, an HTML page.

Reads the saved run folders only; never reruns anything. Writes ``<sweep>/report/``: ``grid.png``,
``table.csv``, ``table.md`` and ``index.html`` (self-contained: images inlined, opens from disk).
"""

from __future__ import annotations

import base64
import csv
import html
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf
from PIL import Image, ImageDraw, ImageFont

from styleexp import measures
from styleexp.errors import UserError
from styleexp.images import load_image
from styleexp.sweeps import ATTEMPT, overrides_dict, read_summary, swept_values

CELL = 160  # pixels: the longest side of each image in the grid
LOSSES = ["loss/total", "loss/content", "loss/style"]


@dataclass
class Run:
    """One job of the sweep as its folder recorded it (its latest attempt)."""

    name: str
    folder: Path
    choices: dict[str, str]
    summary: dict = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.summary.get("status", "unfinished")

    def image(self, name: str) -> torch.Tensor | None:
        path = self.folder / f"{name}.png"
        return load_image(path) if path.is_file() else None


def load_runs(sweep_dir: Path) -> tuple[list[Run], dict[str, list[str]]]:
    """The sweep's jobs (one per job: its completed attempt, else its latest) and its swept keys with their values."""
    if not (sweep_dir / "multirun.yaml").is_file():
        raise UserError(f"{sweep_dir} is not a sweep folder: it has no multirun.yaml; give a folder under outputs/sweeps/")
    attempts: dict[str, list[Path]] = {}
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        folder = overrides_file.parent.parent
        attempts.setdefault(folder.name.split(ATTEMPT)[0], []).append(folder)
    runs = []
    for name, folders in attempts.items():
        folders.sort(key=lambda f: int(f.name.split(ATTEMPT)[1]) if ATTEMPT in f.name else 1)
        summaries = [read_summary(f) for f in folders]
        done = [i for i, s in enumerate(summaries) if s.get("status") == "completed"]
        pick = done[-1] if done else len(folders) - 1
        overrides = list(OmegaConf.load(folders[pick] / ".hydra" / "overrides.yaml"))
        runs.append(Run(name, folders[pick], overrides_dict(overrides), summaries[pick]))
    if not runs:
        raise UserError(f"{sweep_dir} holds no runs yet; launch the sweep first")
    definition = swept_values(sweep_dir) or {}
    keys = {key: values or natural_sorted({run.choices.get(key, "") for run in runs}) for key, values in definition.items()}
    return runs, keys


def score(runs: list[Run], network: torch.nn.Module) -> None:
    """Fill each run's ``scores`` with the fixed measures of its final image."""
    for run in runs:
        output = run.image("final")
        if output is not None:
            run.scores = measures.measure(network, output, run.image("content"), run.image("style"))


def write(sweep_dir: Path, runs: list[Run], keys: dict[str, list[str]]) -> tuple[Path, list[dict[str, object]]]:
    """Write the grid, the tables and the page into ``<sweep_dir>/report/``; return that folder and the table."""
    out = sweep_dir / "report"
    out.mkdir(exist_ok=True)
    rows = table_rows(runs, keys)
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(markdown_table(rows))
    grid(runs, keys)[0].save(out / "grid.png")
    (out / "index.html").write_text(page(sweep_dir, runs, rows, out / "grid.png"))
    return out, rows


def log_to_wandb(sweep_dir: Path, runs: list[Run], rows: list[dict[str, object]], grid_png: Path, mode: str) -> None:
    """Log the table and the grid as a ``report`` run in the sweep's W&B group (offline unless ``mode`` says otherwise)."""
    import wandb

    saved = OmegaConf.load(runs[0].folder / ".hydra" / "config.yaml")
    project = OmegaConf.select(saved, "logger.wandb.project", default="styleexp")
    run = wandb.init(project=project, group=sweep_dir.name, name=f"report-{sweep_dir.name}", job_type="report",
                     dir=grid_png.parent, mode=mode, config={"sweep_dir": str(sweep_dir)})
    try:
        table = wandb.Table(columns=list(rows[0]), data=[[str(value) for value in row.values()] for row in rows])
        run.log({"report/table": table, "report/grid": wandb.Image(str(grid_png))})
    finally:
        run.finish()


def table_rows(runs: list[Run], keys: dict[str, list[str]]) -> list[dict[str, object]]:
    """One row per run: its swept values, status, final losses, the fixed measures, steps and time."""
    rows = []
    for run in sorted(runs, key=lambda r: _order(r, keys)):
        losses = run.summary.get("losses", {})
        rows.append({
            "run": run.folder.name,
            **{key: run.choices.get(key, "") for key in keys},
            "status": run.status,
            **{loss: _number(losses.get(loss)) for loss in LOSSES},
            **{name: _number(run.scores.get(name)) for name in measures.NAMES},
            "steps": run.summary.get("steps", ""),
            "seconds": run.summary.get("wall_time_s", ""),
        })
    return rows


def markdown_table(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
    inputs = [name for name in ("content", "style") if any((run.folder / f"{name}.png").is_file() for run in runs)]
    font = ImageFont.load_default(size=13)
    by_position = {_position(run, keys): run for run in runs}
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
                sheet.paste(_thumbnail(image), (label_width + CELL * i + 2, top + 2))
        for c, run in enumerate(row_runs):
            left = label_width + CELL * (len(inputs) + c)
            image = run.image("final") if run is not None else None
            if run is not None:
                cells[run.folder.name] = (left, top, left + CELL, top + CELL)
            if image is not None:
                sheet.paste(_thumbnail(image), (left + 2, top + 2))
            else:
                draw.rectangle((left + 2, top + 2, left + CELL - 3, top + CELL - 3), fill=(225, 225, 225))
            if run is None or run.status != "completed":
                draw.rectangle((left + 2, top + 2, left + CELL - 3, top + 22), fill=(200, 40, 40))
                draw.text((left + 8, top + 5), run.status if run is not None else "missing", fill="white", font=font)
    return sheet, cells


def page(sweep_dir: Path, runs: list[Run], rows: list[dict[str, object]], grid_png: Path) -> str:
    """A self-contained HTML page: the grid, the table sortable by any column, each run's images and loss curves."""
    by_name = {run.folder.name: run for run in runs}
    header = "".join(f'<th data-col="{i}">{html.escape(str(key))}</th>' for i, key in enumerate(rows[0]))
    body = []
    for row in rows:
        run = by_name[row["run"]]
        cells = "".join(f"<td>{html.escape(str(value))}</td>" for value in row.values())
        body.append(f'<tr class="{html.escape(run.status)}">{cells}</tr>')
    details = []
    for row in rows:
        run = by_name[row["run"]]
        final = run.folder / "final.png"
        image = f'<img alt="{html.escape(run.name)}" src="{_data_uri(final)}">' if final.is_file() else "<p>no image</p>"
        details.append(
            f'<section><h3>{html.escape(run.folder.name)} <small>{html.escape(run.status)}</small></h3>'
            f'<p>{html.escape(run.summary.get("message", "no summary.json: the run never finished"))}</p>'
            f"<div class=run>{image}{_loss_curves(run.folder / 'metrics.csv')}</div></section>"
        )
    return _PAGE.format(
        title=html.escape(f"styleexp report: {sweep_dir.name}"),
        grid=_data_uri(grid_png),
        header=header,
        body="\n".join(body),
        details="\n".join(details),
        definitions=html.escape(measures.__doc__.split("\n\n", 1)[1].replace("``", "")),
    )


def natural_sorted(values: set[str]) -> list[str]:
    """Sorted so that ``2`` comes before ``10``."""
    return sorted(values, key=lambda v: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", v)])


def _position(run: Run, keys: dict[str, list[str]]) -> tuple[str, ...]:
    return tuple(run.choices.get(key, "") for key in keys)


def _order(run: Run, keys: dict[str, list[str]]) -> tuple[int, ...]:
    """Where ``run`` comes in the sweep's own order of values (unknown values last)."""
    values = _position(run, keys)
    return tuple(keys[key].index(value) if value in keys[key] else len(keys[key]) for key, value in zip(keys, values))


def _row_label(keys: dict[str, list[str]], row: tuple[str, ...]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(list(keys)[:-1], row))


def _column_label(keys: dict[str, list[str]], column: str) -> str:
    return f"{list(keys)[-1]}={column}" if keys else "output"


def _thumbnail(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    picture = Image.fromarray(array)
    scale = (CELL - 4) / max(picture.size)
    # Small outputs are enlarged pixel for pixel, so the grid shows what the run made, unblurred.
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), resample)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _loss_curves(metrics_csv: Path) -> str:
    """An inline SVG of the logged losses against the step, on a log scale."""
    if not metrics_csv.is_file():
        return "<p>no metrics.csv</p>"
    with open(metrics_csv) as f:
        records = list(csv.DictReader(f))
    width, height, colours = 360, 160, dict(zip(LOSSES, ["#222", "#1f77b4", "#d62728"]))
    series = {}
    for loss in LOSSES:
        points = [(int(r["step"]), float(r[loss])) for r in records if r.get(loss) and float(r[loss]) > 0]
        if points:
            series[loss] = points
    if not series:
        return "<p>no losses logged</p>"
    steps = [s for points in series.values() for s, _ in points]
    logs = [math.log10(v) for points in series.values() for _, v in points]
    x0, x1, y0, y1 = min(steps), max(max(steps), min(steps) + 1), min(logs), max(max(logs), min(logs) + 1e-6)
    svg = [f'<svg width="{width}" height="{height + 20}" role="img"><rect width="{width}" height="{height}" fill="#fafafa"/>']
    for i, (loss, points) in enumerate(series.items()):
        coords = " ".join(
            f"{(s - x0) / (x1 - x0) * (width - 10) + 5:.1f},{height - 5 - (math.log10(v) - y0) / (y1 - y0) * (height - 10):.1f}"
            for s, v in points
        )
        svg.append(f'<polyline fill="none" stroke="{colours[loss]}" stroke-width="1.5" points="{coords}"/>')
        svg.append(f'<text x="{5 + 120 * i}" y="{height + 15}" font-size="11" fill="{colours[loss]}">{loss}</text>')
    svg.append(f'<text x="{width - 5}" y="12" font-size="10" text-anchor="end">log10 {y0:.1f}..{y1:.1f}, steps {x0}..{x1}</text></svg>')
    return "".join(svg)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ cursor: pointer; background: #eee; position: sticky; top: 0; }}
th.sorted-asc::after {{ content: " \\25B2"; }} th.sorted-desc::after {{ content: " \\25BC"; }}
tr:not(.completed) {{ background: #fdd; }}
.run {{ display: flex; gap: 1em; align-items: flex-start; }}
.run img {{ width: 256px; image-rendering: pixelated; }}
#grid {{ max-width: 100%; }}
</style></head>
<body>
<h1>{title}</h1>
<img id="grid" alt="grid of outputs" src="{grid}">
<h2>Runs</h2>
<p>Click a column to sort by it (again to reverse); <code>#sort=column</code> in the address sorts on opening.</p>
<table id="runs"><thead><tr>{header}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Measures</h2>
<pre>{definitions}</pre>
<h2>Each run</h2>
{details}
<p id="image-check"></p>
<script>
function cellValue(row, col) {{
  const text = row.children[col].textContent;
  const number = parseFloat(text);
  return text !== "" && !isNaN(number) && isFinite(text) ? number : text;
}}
function sortBy(col, descending) {{
  const table = document.getElementById("runs");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {{
    const x = cellValue(a, col), y = cellValue(b, col);
    if (x === y) return 0;
    if (x === "") return 1;
    if (y === "") return -1;
    const order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  }});
  rows.forEach(row => body.appendChild(row));
  table.querySelectorAll("th").forEach(th => th.className = "");
  table.querySelectorAll("th")[col].className = descending ? "sorted-desc" : "sorted-asc";
}}
document.querySelectorAll("#runs th").forEach(th => th.addEventListener("click", () => {{
  sortBy(Number(th.dataset.col), th.className === "sorted-asc");
}}));
const wanted = decodeURIComponent(location.hash.replace(/^#sort=/, ""));
document.querySelectorAll("#runs th").forEach(th => {{ if (th.textContent === wanted) sortBy(Number(th.dataset.col), false); }});
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  const broken = images.filter(img => !img.complete || img.naturalWidth === 0).length;
  document.getElementById("image-check").textContent = broken
    ? broken + " of " + images.length + " images failed to load"
    : "all " + images.length + " images shown";
}});
</script>
</body></html>
"""
