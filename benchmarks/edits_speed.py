"""What masked denoising costs on the embedded model: each edit (Vary (Region), Zoom
Out 2x, Pan ➡, Make Square) of a 128×128 upscale against plain text-to-image at the
same output size, four images a call, the median of timed runs after a warm-up;
and how well each keeps what it keeps (mean |Δ| 0–255 against the source there).
Not a test: run it by hand on an otherwise idle machine, paste the table into RESULTS.md.

    python benchmarks/edits_speed.py [--runs 5] [--threads 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a red star on a blue background"
SEEDS = [1, 2, 3, 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    import torch

    from shared.canvas import pan_canvas, region_canvas, square_canvas, zoom_canvas
    from worker.engines.base import Request
    from worker.engines.embedded import EmbeddedEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = EmbeddedEngine()
    [grid_image] = engine.generate(Request.text(PROMPT, [5], 64, 64, steps=args.steps))
    source = grid_image.resize((128, 128))
    wide = pan_canvas(source, "right", 16).image
    cases = {
        "Vary (Region), 4 of 16 cells": region_canvas(source, (1, 2, 5, 6)),
        "Zoom Out 2x": zoom_canvas(source, 2.0, 16),
        "Pan right": pan_canvas(source, "right", 16),
        "Make Square (of 192×128)": square_canvas(wide, 16),
    }

    def timed(req: Request) -> tuple[float, list]:
        engine.generate(req)  # warm-up at this size
        times, out = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = engine.generate(req)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"{args.steps} steps, 4 images a call, median of {args.runs} runs\n")
    print("| edit | output | text to image (s) | edit (s) | ratio | kept part mean abs diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, canvas in cases.items():
        w, h = canvas.image.size
        plain, _ = timed(Request.text(PROMPT, SEEDS, w, h, steps=args.steps))
        masked_req = Request.text(PROMPT, SEEDS, w, h, steps=args.steps, init_images=(canvas.image,), mask=canvas.mask)
        edit, images = timed(masked_req)
        keep = np.asarray(canvas.mask) == 0
        src = np.asarray(canvas.image, dtype=np.float32)
        kept = max(float(np.abs(np.asarray(im, dtype=np.float32) - src)[keep].mean()) for im in images)
        print(f"| {name} | {w}×{h} | {plain:.2f} | {edit:.2f} | {edit / plain:.2f} | {kept:.2f} |")


if __name__ == "__main__":
    main()
