"""What --chaos, --weird, --stop, weighted parts and --tile do on the diffusers engine,
measured on the tiny random SD pipeline (tests/support/tiny_sd.py; no download): the
mean pairwise distance between the four tiles against --chaos (with the four seeds'
own noise, and with one noise for all four so that only the conditioning tells them
apart), the distance to the plain run against --weird and weighted parts, the distance
to the full run against --stop, and the wrap test of --tile.
Distances are mean |Δ| in 0–255 pixel values. Not a test: run it by hand, paste the
table into RESULTS.md.

    python benchmarks/diffusers_flags.py [--steps 20] [--size 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_name  # noqa: E402

PROMPT = "a red circle on a blue background"
OTHER = "a green star on a yellow background"
SEEDS = (1, 2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    import torch

    from tests.support.tiny_sd import build_tiny_sd
    from worker.engines.base import Request, WeightedPrompt
    from worker.engines.diffusers_engine import DiffusersEngine

    torch.set_num_threads(args.threads)
    engine = DiffusersEngine(str(build_tiny_sd(Path(tempfile.mkdtemp()))))
    base = Request.text(PROMPT, SEEDS, args.size, args.size, steps=args.steps)

    def run(**change) -> list[np.ndarray]:
        return [np.asarray(im, dtype=np.float32) for im in engine.generate(replace(base, **change))]

    def spread(tiles: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(tiles, 2)]))

    def distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b, strict=True)]))

    rows: list[tuple[str, str, float]] = []
    plain = run()
    for chaos in (0, 50, 100):
        tiles = run(chaos=chaos)
        rows.append((f"--chaos {chaos}", "pairwise, four seeds", spread(tiles)))
    make = type(engine)._generators
    engine._generators = lambda seeds: make(engine, [0] * len(seeds))  # one noise for the four
    for chaos in (0, 50, 100):
        tiles = run(chaos=chaos)
        rows.append((f"--chaos {chaos}", "pairwise, one noise", spread(tiles)))
    del engine._generators
    for weird in (0, 1000, 3000):
        rows.append((f"--weird {weird}", "to plain", distance(run(weird=weird), plain)))
    again = run(weird=3000)
    rows.append(("--weird 3000, again", "to the first", distance(again, run(weird=3000))))
    for stop in (30, 70):
        rows.append((f"--stop {stop}", "to full", distance(run(stop=stop / 100), plain)))
    both = (WeightedPrompt(PROMPT), WeightedPrompt(OTHER))
    rows.append(("`a::1 b::1`", "to a alone", distance(run(prompts=both), plain)))
    other = run(prompts=(WeightedPrompt(OTHER),))
    rows.append(("`a::1 b::1`", "to b alone", distance(run(prompts=both), other)))

    # --tile: the same noise shifted around the edges gives the same image shifted (a torus).
    shift, prepare = 2, engine.pipe.prepare_latents
    for tile in (False, True):
        still = run(tile=tile)
        engine.pipe.prepare_latents = lambda *a, **k: torch.roll(prepare(*a, **k), shift, dims=-1)
        moved = run(tile=tile)
        del engine.pipe.prepare_latents
        rolled = [np.roll(p, shift * engine.pipe.vae_scale_factor, axis=1) for p in still]
        rows.append(
            (
                "--tile" if tile else "no --tile",
                "shifted noise to shifted image",
                distance(moved, rolled),
            )
        )

    print(f"tiny SD (DDIM), {args.size}×{args.size}, {args.steps} steps, seeds {SEEDS}, prompt {PROMPT!r}")
    print(f"machine: {cpu_name()}, {args.threads} torch threads, torch {torch.__version__}")
    print()
    print("| flags | distance | mean \\|Δ\\| (0–255) |")
    print("| --- | --- | --- |")
    for label, what, value in rows:
        print(f"| {label} | {what} | {value:.2f} |")


if __name__ == "__main__":
    main()
