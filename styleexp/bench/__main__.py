"""``python -m styleexp.bench``: the benchmark, or (``--case``) one bare case in this process."""

from styleexp.bench import main

main()
