"""The report's page: one self-contained HTML file (images inlined, opens from disk) from the report's parts."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from string import Template

from styleexp.measures import validation
from styleexp.report import compare
from styleexp.report.load import Run
from styleexp.report.tables import text
from styleexp.rundir import FINAL, image_file

TEMPLATE = Template(Path(__file__).with_name("page.html").read_text())


def page(
    title: str,
    overview: str,
    runs: Sequence[Run],
    rows: list[dict[str, object]],
    variant_rows: list[dict[str, object]],
    method: str,
    sentences: Sequence[str],
    grid_png: Path,
    measure_charts: Sequence[Path],
    loss_charts: Sequence[Path],
    evaluators: Sequence[str],
    rankings: dict[str, list[str]],
    checks: Sequence[validation.Result],
    ranked: Sequence[Run] = (),
    rank_by: str | None = None,
) -> str:
    """The page: how the verdicts were reached (``method``) and the conclusions, the grid, the charts, the variants
    over replicates, the evaluators compared, the measures' validation, the sortable run table, each run."""
    by_name = {run.folder.name: run for run in runs}
    header = "".join(f'<th data-col="{i}">{html.escape(str(key))}</th>' for i, key in enumerate(rows[0]))
    body = [
        f'<tr class="{html.escape(by_name[row["run"]].status)}">'
        + "".join(f"<td>{html.escape(text(value))}</td>" for value in row.values())
        + "</tr>"
        for row in rows
    ]
    details = []
    for row in rows:
        run = by_name[row["run"]]
        final = run.folder / FINAL
        image = (
            f'<img alt="{html.escape(run.name)}" src="{_data_uri(final)}">' if final.is_file() else "<p>no image</p>"
        )
        details.append(
            f"<section><h3>{html.escape(run.folder.name)} <small>{html.escape(run.status)}</small></h3>"
            f"<p>{html.escape(run.summary.get('message', 'no summary.json: the run never finished'))}</p>"
            f"<div class=run>{image}</div></section>"
        )
    conclusions = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in sentences)
    return TEMPLATE.substitute(
        title=html.escape(title),
        overview=html.escape(overview),
        method=f"<p>{html.escape(method)}</p>" if method else "",
        conclusions=f'<ul class="conclusions">{conclusions}</ul>'
        if sentences
        else "<p>No paired comparison: the sweep varies no key with a partner to compare.</p>",
        grid=_data_uri(grid_png),
        measure_charts="".join(_chart(path) for path in measure_charts),
        variants=_variants(variant_rows),
        header=header,
        body="\n".join(body),
        evaluators=html.escape(", ".join(evaluators) or "none"),
        loss_charts="".join(_chart(path) for path in loss_charts),
        details="\n".join(details),
        evaluators_compared=_rankings(rankings),
        ranking=_ranking(ranked, rank_by),
        validation=_validation(checks),
        threshold=f"{validation.THRESHOLD:.2f}",
    )


def _ranking(ranked: Sequence[Run], name: str | None) -> str:
    """The runs ordered by ``name``, best first: each style image beside its synthesis, the value and the layout
    leakage."""
    if not ranked:
        return ""
    cells = []
    for place, run in enumerate(ranked, 1):
        images = "".join(
            f'<img alt="{what} of {html.escape(run.name)}" src="{_data_uri(image_file(run.folder, what))}">'
            for what in ("style", "final")
            if image_file(run.folder, what).is_file()
        )
        leakage = run.scores.get("layout_leakage")
        cells.append(
            f"<figure><div>{images}</div><figcaption>{place}. {html.escape(run.name)}: {html.escape(name)} "
            f"{run.scores[name]:.3g}"
            + ("" if leakage is None else f", layout leakage {leakage:.2f}")
            + "</figcaption></figure>"
        )
    return (
        f"<h2>Ranked by {html.escape(name)}</h2><p>Each original (left) beside its synthesis (right), best first. "
        "A low distance means the synthesis could stand in for the original: what the image shows is mostly style. "
        "A layout leakage well below 1 means the synthesis got there by copying where things are, which is not "
        "style.</p>"
        f'<div class="ranking">{"".join(cells)}</div>'
    )


def _rankings(rankings: dict[str, list[str]]) -> str:
    """Each evaluator's ranking of the question's values, and Kendall's tau between every two evaluators."""
    if not rankings:
        return "<p>No ranking: the sweep varies no key whose values can be ranked.</p>"
    names = list(rankings)
    lines = [
        f"<tr class=completed><td>{html.escape(name)}</td><td>{html.escape(' > '.join(order))}</td>"
        + "".join(f"<td>{_tau(compare.kendall_tau(order, rankings[other]))}</td>" for other in names)
        + "</tr>"
        for name, order in rankings.items()
    ]
    header = "<th>evaluator</th><th>ranking, best first</th>" + "".join(
        f"<th>tau with {html.escape(n)}</th>" for n in names
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _tau(tau: float | None) -> str:
    return "" if tau is None else f"{tau:+.2f}"


def _validation(checks: Sequence[validation.Result]) -> str:
    """The validation table: measure x test -> accuracy (trials), the weak ones marked."""
    if not checks:
        return "<p>The measures were not validated for this report.</p>"
    tests, rows = validation.table(list(checks))
    weak = validation.reasons(list(checks))
    lines = []
    for measure, by_test in rows.items():
        cells = "".join(
            f"<td>{by_test[t].accuracy:.2f} ({by_test[t].trials})</td>"
            if t in by_test and by_test[t].trials
            else "<td>-</td>"
            for t in tests
        )
        row_class = "weak" if measure in weak else "completed"
        lines.append(f'<tr class="{row_class}"><td>{html.escape(validation.label(measure))}</td>{cells}</tr>')
    header = "<th>measure</th>" + "".join(f"<th>{html.escape(t)}</th>" for t in tests)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _variants(rows: list[dict[str, object]]) -> str:
    """Mean [95 % bootstrap interval over its replicates] of each measure per variant, shown where some variant has
    replicates."""
    if not rows or max(row["runs"] for row in rows) < 2:
        return ""
    names = [key for key in rows[0] if f"{key} low" in rows[0]]
    plain = [key for key in rows[0] if key not in names and not key.endswith((" low", " high"))]
    header = "".join(f"<th>{html.escape(key)}</th>" for key in plain + names)
    lines = []
    for row in rows:
        cells = [html.escape(text(row[key])) for key in plain]
        for name in names:
            mean, low, high = row[name], row[f"{name} low"], row[f"{name} high"]
            cells.append("" if mean is None else f"{mean:.4g}" + ("" if low is None else f" [{low:.4g}, {high:.4g}]"))
        lines.append("<tr class=completed>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (
        "<h2>Variants over replicates</h2><p>Mean [95 % percentile bootstrap interval] over the replicates (seeds) "
        "of each variant, never pooled over another swept key; the interval lies within the replicates' range, so "
        "within the measure's bounds (also in variants.csv).</p>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def _chart(path: Path) -> str:
    return f'<img alt="{html.escape(path.stem)}" src="{_data_uri(path)}">'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
