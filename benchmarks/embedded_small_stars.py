"""How should a small star be worded to the embedded model, and how many
candidates does it need? Measured on hold-out data: small-star scenes that
are not among the quality benchmark's (benchmarks/embedded_quality.py), with
seeds it never uses, so that choosing a wording here does not tune the
benchmark's own figure. Every wording is sent to the model as written (the
engine's own rewording is bypassed); each scene's candidates are scored by
the benchmark's scorer and re-ranked by the engine's ranker. Not a test.

    python benchmarks/embedded_small_stars.py --scenes 10 --threads 1
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.embedded_quality import benchmark_scenes  # noqa: E402
from worker.embedded import scenes, scoring  # noqa: E402

logger = logging.getLogger(__name__)

HOLDOUT_SET_SEED = 31_337  # picks the hold-out scenes
HOLDOUT_SEED_BASE = 500_000  # sampling seeds: the quality benchmark's stay below 200,000
BENCHMARK_SCENES = 48  # the quality benchmark's full set, none of which is used here
# (size word, shape words) for a small star; the first is what a plain caption says.
WORDINGS = {
    "small … star (typed)": ("small", "star"),
    "tiny … five-pointed star": ("tiny", "five-pointed star"),
    "tiny … star": ("tiny", "star"),
    "small … five-pointed star": ("small", "five-pointed star"),
}


def holdout_scenes(count: int) -> list[scenes.Scene]:
    """`count` single small stars, every (background, colour, place) unlike any
    of the quality benchmark's scenes."""
    used = {(s.background, s.objects[0].colour, s.objects[0].position) for s in benchmark_scenes(BENCHMARK_SCENES)}
    combos = [
        (bg, fg, pos)
        for bg in scenes.COLOURS
        for fg in scenes.COLOURS
        for pos in scenes.POSITIONS
        if fg != bg and (bg, fg, pos) not in used
    ]
    random.Random(HOLDOUT_SET_SEED).shuffle(combos)
    return [scenes.Scene(bg, (scenes.SceneObject(fg, "star", pos, "small"),)) for bg, fg, pos in combos[:count]]


def worded(scene: scenes.Scene, size: str, shape: str) -> str:
    plain = scenes.plain_caption(scene)
    return plain.replace("a small ", f"a {size} ", 1).replace(" star", f" {shape}", 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=16, help="sampled per scene and wording")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from worker import best_of
    from worker.engines.base import Request
    from worker.engines.embedded import EmbeddedEngine

    torch.set_num_threads(args.threads)
    engine = EmbeddedEngine()
    engine.conditioning_text = lambda prompt: prompt  # every wording as written
    started = time.perf_counter()
    totals = {w: {"points": 0, "first4": 0, "best4of8": 0, "best4of16": 0, "tiles": 0} for w in WORDINGS}
    for i, scene in enumerate(holdout_scenes(args.scenes)):
        grid = [HOLDOUT_SEED_BASE + 4 * i + k for k in range(4)]
        seeds = list(best_of.candidate_seeds(tuple(grid), args.candidates))
        for name, (size, shape) in WORDINGS.items():
            prompt = worded(scene, size, shape)
            tiles = engine.generate(Request.text(prompt, seeds, 64, 64))
            # Ranked against the scene's plain reading: the ranker sees what was asked, not the wording.
            ranks = engine.rank(scenes.plain_caption(scene), tiles)
            star = [scoring.compare(scoring.score_tile(t), scene)["shape"] for t in tiles]
            t = totals[name]
            t["points"] += sum(star[:8])
            t["first4"] += sum(star[:4])
            for n, key in ((8, "best4of8"), (16, "best4of16")):
                order = sorted(range(min(n, len(tiles))), key=lambda k: (-ranks[k], k))[:4]
                t[key] += sum(star[k] for k in order)
            t["tiles"] += 4
            logger.info("%-40s %-70s stars %d/%d", name, prompt, sum(star), len(star))
    print(f"\n{args.scenes} hold-out small-star scenes, {time.perf_counter() - started:.0f} s\n")
    print("| wording | candidates with points (of 8) | first 4 | best 4 of 8 | best 4 of 16 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t in totals.items():
        n = t["tiles"]
        print(
            f"| {name} | {t['points']}/{2 * n} | {t['first4']}/{n} | {t['best4of8']}/{n} | "
            f"{t['best4of16'] if args.candidates >= 16 else '–'}/{n} |"
        )


if __name__ == "__main__":
    main()
