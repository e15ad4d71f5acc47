"""Where does the embedded model leave a blob of coloured noise? For a few
prompts, canvas sizes and seeds it samples tiles and finds the spot with the
most high-frequency energy (pixel minus its 3×3 mean, summed over a 7×7
window), and prints where it is (in pixels from the top left and as a
fraction of the side) and how strong against the tile's median.

What it showed on the GroupNorm weights (up to step 30,006): the blob sat
~19 px from the top-left corner whatever the canvas size (64, 128 px) or the
prompt, 7-16× the median. Its cause was the norm, not the border: one cell
of the 8×8 grid carried a spike that set GroupNorm's statistics for all the
others (worker/embedded/denoiser.py, PixelNorm). With PixelNorm the hot
spot of a 64 px tile is the object's edge. Not a test: run it by hand to
check a change to the network or its training.

    python benchmarks/embedded_artifact.py
    python benchmarks/embedded_artifact.py --model /tmp/run-out --no-clip-x0
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

logger = logging.getLogger(__name__)

PROMPTS = [
    "a small red square on the right on a blue background",
    "a small green circle in the bottom right corner on a yellow background",
    "a white triangle at the bottom on a black background",
]
SIZES = [(64, 64), (128, 64), (128, 128)]
SEEDS = [1, 2]


def box_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k×k window (edges padded by reflection), per channel."""
    p = k // 2
    padded = np.pad(a, [(p, p), (p, p)] + [(0, 0)] * (a.ndim - 2), mode="reflect")
    c = padded.cumsum(0).cumsum(1)
    c = np.pad(c, [(1, 0), (1, 0)] + [(0, 0)] * (a.ndim - 2))
    h, w = a.shape[:2]
    return (c[k : k + h, k : k + w] - c[:h, k : k + w] - c[k : k + h, :w] + c[:h, :w]) / (k * k)


def hot_spot(pixels: np.ndarray) -> tuple[int, int, float]:
    """(x, y, strength): the centre of the noisiest 7×7 window and its
    high-frequency energy over the tile's median."""
    a = pixels.astype(np.float64)
    energy = box_mean(np.abs(a - box_mean(a, 3)).sum(axis=-1), 7)
    y, x = np.unravel_index(int(energy.argmax()), energy.shape)
    return int(x), int(y), float(energy.max() / max(float(np.median(energy)), 1.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "worker" / "models" / "embedded")
    parser.add_argument("--clip-x0", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch

    from worker.engines.base import Request
    from worker.engines.embedded import EmbeddedEngine

    torch.set_num_threads(args.threads)
    engine = EmbeddedEngine(args.model)
    if args.clip_x0 is not None:
        engine.clip_x0 = args.clip_x0
    print(f"model {args.model}, x0 clipped: {'yes' if engine.clip_x0 else 'no'}")
    print()
    print("| canvas | prompt | seed | hot spot (px) | as fraction | strength (× median) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    offsets = []
    for w, h in SIZES:
        for prompt in PROMPTS:
            req = Request.text(prompt, SEEDS, w, h)
            for seed, image in zip(SEEDS, engine.generate(req), strict=True):
                x, y, strength = hot_spot(np.asarray(image.convert("RGB")))
                offsets.append((x, y))
                print(f"| {w}×{h} | {prompt} | {seed} | ({x}, {y}) | ({x / w:.2f}, {y / h:.2f}) | {strength:.1f} |")
    print()
    print(
        f"median hot spot: ({statistics.median(o[0] for o in offsets)}, "
        f"{statistics.median(o[1] for o in offsets)}) px from the top left"
    )


if __name__ == "__main__":
    main()
