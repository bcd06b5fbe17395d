"""The report's page: one self-contained HTML file (images inlined) with the grid, the sortable table and each run."""

from __future__ import annotations

import base64
import csv
import html
import math
from pathlib import Path
from string import Template

from styleexp import measures
from styleexp.report.load import Run
from styleexp.report.tables import LOSSES

TEMPLATE = Template((Path(__file__).with_name("page.html")).read_text())


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
    return TEMPLATE.substitute(
        title=html.escape(f"styleexp report: {sweep_dir.name}"),
        grid=_data_uri(grid_png),
        header=header,
        body="\n".join(body),
        details="\n".join(details),
        definitions=html.escape(measures.__doc__.split("\n\n", 1)[1].replace("``", "")),
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _loss_curves(metrics_csv: Path) -> str:
    """An inline SVG of the logged losses against the step, on a log scale."""
    if not metrics_csv.is_file():
        return "<p>no metrics.csv</p>"
    with open(metrics_csv) as f:
        records = list(csv.DictReader(f))
    width, height, colours = 360, 160, dict(zip(LOSSES, ["#222", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]))
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
        svg.append(f'<text x="{5 + 90 * i}" y="{height + 15}" font-size="11" fill="{colours[loss]}">{loss}</text>')
    svg.append(f'<text x="{width - 5}" y="12" font-size="10" text-anchor="end">log10 {y0:.1f}..{y1:.1f}, steps {x0}..{x1}</text></svg>')
    return "".join(svg)


