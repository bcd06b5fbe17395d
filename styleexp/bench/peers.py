"""styleexp beside neural-style-pt, like with like: the ratio of styleexp's end-to-end seconds per step to the peer's.

Both are whole processes timed over the same 30 steps after 10 of warm-up, logging included
(``cases.end_to_end`` by its own clock, ``cases.peer`` by its progress lines), both VGG-19 with the Caffe
weights, Adam, fp32, relu4_2 and relu1_1..relu5_1, the same images at the same size. A ratio below 1:
styleexp's step is the faster.
"""

from __future__ import annotations

# The styleexp case the peer's Adam step is compared with; ``steps`` is not used by end-to-end (40 steps).
LIKE = {"network": "vgg19", "optimizer": "adam", "precision": "fp32"}
LIKE_STEPS = 40


def like_case(results: list[dict], size: int) -> dict | None:
    """The styleexp end-to-end result of ``results`` at ``size`` that is like the peer's (``LIKE``, no other switch)."""
    for result in results:
        same = all(result.get(key) == value for key, value in LIKE.items())
        if same and result["mode"] == "end-to-end" and result["size"] == size and "error" not in result:
            if not result.get("channels_last") and not result.get("compile"):
                return result
    return None


def ratios(results: list[dict]) -> list[dict]:
    """Per size the peer was timed at: styleexp end to end and neural-style-pt, seconds per step, and their ratio
    (styleexp / neural-style-pt; None where either is missing)."""
    rows = []
    for result in results:
        if result["mode"] != "neural-style-pt":
            continue
        ours = like_case(results, result["size"])
        theirs = result.get("seconds_per_step")
        mine = ours.get("seconds_per_step") if ours else None
        rows.append(
            {
                "size": result["size"],
                "styleexp_seconds_per_step": mine,
                "peer_seconds_per_step": theirs,
                "ratio": mine / theirs if mine and theirs else None,
            }
        )
    return rows


def ratio_table(rows: list[dict]) -> str:
    """A Markdown table of ``ratios``: milliseconds per step of each, and styleexp / neural-style-pt."""
    lines = [
        "| size | styleexp end-to-end ms/step | neural-style-pt ms/step | styleexp / neural-style-pt |",
        "|---|---|---|---|",
    ]
    for r in rows:
        mine, theirs, ratio = r["styleexp_seconds_per_step"], r["peer_seconds_per_step"], r["ratio"]
        lines.append(
            f"| {r['size']} | {'-' if mine is None else f'{mine * 1e3:.1f}'} | "
            f"{'-' if theirs is None else f'{theirs * 1e3:.1f}'} | {'-' if ratio is None else f'{ratio:.2f}'} |"
        )
    return "\n".join(lines) + "\n\nVGG-19 Caffe, Adam, fp32, whole processes timed alike; below 1: styleexp is faster."
