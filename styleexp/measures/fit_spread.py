"""``python -m styleexp.measures.fit_spread``: fit the texture statistics' natural spread again and ship it.

Run after a change to the statistics or to ``probes.REFERENCE``; a test checks that the shipped file
is what this gives.
"""

from __future__ import annotations

import torch

from styleexp.measures import portilla_simoncelli, probes


def main() -> None:
    """Write ``portilla_simoncelli.SPREAD_FILE`` from the reference images."""
    spreads = portilla_simoncelli.reference_spread(portilla_simoncelli.reference_images())
    portilla_simoncelli.SPREAD_FILE.parent.mkdir(exist_ok=True)
    torch.save(spreads, portilla_simoncelli.SPREAD_FILE)
    print(f"wrote {portilla_simoncelli.SPREAD_FILE} from {', '.join(probes.REFERENCE)}, their halves and quarters")


if __name__ == "__main__":
    main()
