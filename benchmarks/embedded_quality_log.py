"""Tabulates the per-grid lines that benchmarks/embedded_quality.py logs as it
goes, so that a run stopped before its end (a shared VM, a deadline) still
gives honest figures over the grids it finished. Size is not in those lines,
and the out-of-world check runs only at the end. Not a test.

    python benchmarks/embedded_quality_log.py quality.log
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

# "<wording>[ best] <prompt> fg colour=4/4 bg colour=4/4 …"; a two-object line starts its hits at "bg colour".
HITS = re.compile(r" ((?:fg|bg) colour=\d+/\d+.*)$")
HIT = re.compile(r"([a-z][a-z ]*?)=(\d+)/(\d+)")


def tabulate(lines: list[str]) -> dict[str, dict[str, list[int]]]:
    """label ("plain", "plain best", "placed best", …) → attribute → [hits, tiles]."""
    rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for line in lines:
        m = HITS.search(line.rstrip("\n"))
        words = line.split()
        if not m or len(words) < 2:
            continue
        label = words[0] + (" best" if words[1] == "best" else "")
        for name, hits, tiles in HIT.findall(m.group(1)):
            cell = rows[label][name.strip()]
            cell[0] += int(hits)
            cell[1] += int(tiles)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    args = parser.parse_args(argv)
    rows = tabulate(args.log.read_text().splitlines())
    for label, cells in rows.items():
        tiles = max(t for _, t in cells.values())
        text = " | ".join(f"{name} {h / t:.1%} ({h}/{t})" for name, (h, t) in cells.items())
        print(f"| {label} | {tiles} tiles | {text} |")


if __name__ == "__main__":
    main()
