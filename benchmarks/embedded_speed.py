"""How long the embedded model takes for one 2×2 grid at the default size on
the CPU: warm-up runs, then the median and p90 of timed runs, with all cores.
Issue 3's target is ≤ 2 s on this machine's 2 cores. Not a test: run it by
hand on an otherwise idle machine and paste the table into RESULTS.md.

    python benchmarks/embedded_speed.py
    python benchmarks/embedded_speed.py --runs 10 --threads 2 --steps 20 --json speed.json
    python benchmarks/embedded_speed.py --side-by-side      # issue 21: today's grid, the new one, best of 8

`--side-by-side` times three configurations of the same weights in one run,
interleaved run by run so that whatever else the CPU is doing weighs on all
three alike: today's plain grid (float32, 20 steps, four samples), the new
plain grid (the engine's defaults now) and the new best-of-8 grid (eight
candidates in one batch, ranked by the scorer, four kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

logger = logging.getLogger(__name__)

PROMPT = "a red circle on a blue background"
SEEDS = [1, 2, 3, 4]  # one 2×2 grid
TARGET_S = 2.0
DEFAULT_RUNS = 10
DEFAULT_WARMUP = 2  # the first call pays for allocator growth and oneDNN kernel selection


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with 10 runs, p90 is the 9th fastest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure(args: argparse.Namespace) -> dict:
    import torch

    from worker.engines.base import Request
    from worker.engines.embedded import DEFAULT_STEPS, EmbeddedEngine

    torch.set_num_threads(args.threads)
    # Other processes on the CPU make the figures meaningless; say so in the table.
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    engine = EmbeddedEngine(args.model, device="cpu")
    load_s = time.perf_counter() - t0
    size = engine.spec.base_size
    req = Request.text(PROMPT, SEEDS, size, size, steps=args.steps)
    for _ in range(args.warmup):
        engine.generate(req)
    times = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        engine.generate(req)
        times.append(time.perf_counter() - t0)
        logger.info("run %d: %.3f s", i + 1, times[-1])
    return {
        "model": str(args.model),
        "steps": args.steps or DEFAULT_STEPS,
        "size": size,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_s": round(load_s, 3),
        "load_average_before": round(load_before, 2),
        "runs_s": [round(t, 4) for t in times],
        "median_s": statistics.median(times),
        "p90_s": percentile(times, 90),
        "min_s": min(times),
    }


# (label, bfloat16 autocast, steps (None: the engine's default), candidates)
TODAY = ("today: float32, 20 steps, 4 samples", False, 20, 4)


def side_by_side(args: argparse.Namespace) -> dict:
    from dataclasses import replace

    import torch

    from shared.params import Params
    from shared.settings import Settings
    from worker import best_of
    from worker.engines.base import Request
    from worker.engines.embedded import BF16, DEFAULT_STEPS, EmbeddedEngine

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    engine = EmbeddedEngine(args.model, device="cpu")
    size = engine.spec.base_size
    new = "bf16" if BF16 else "float32"
    configs = [
        TODAY,
        (f"new: {new}, {DEFAULT_STEPS} steps, 4 samples", BF16, DEFAULT_STEPS, 4),
        (f"new: {new}, {DEFAULT_STEPS} steps, best 4 of 8", BF16, DEFAULT_STEPS, 8),
    ]
    settings = Settings()

    def grid(bf16: bool, steps: int, candidates: int) -> None:
        engine.bf16 = bf16
        req = Request.text(PROMPT, SEEDS, size, size, steps=steps)
        if candidates == len(SEEDS):
            engine.generate(req)
        else:
            best_of.sample_grid(engine, req, replace(settings, best_of=candidates), Params(), [], None)

    engine.understand(PROMPT)  # the reading is cached per prompt: not what is timed
    for _ in range(args.warmup):
        for _label, *cfg in configs:
            grid(*cfg)
    times: dict[str, list[float]] = {c[0]: [] for c in configs}
    for i in range(args.runs):
        for label, *cfg in configs:
            t0 = time.perf_counter()
            grid(*cfg)
            times[label].append(time.perf_counter() - t0)
        logger.info("run %d: %s", i + 1, ", ".join(f"{v[-1]:.2f} s" for v in times.values()))
    return {
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "rows": {
            label: {"median_s": statistics.median(v), "p90_s": percentile(v, 90), "min_s": min(v), "runs_s": v}
            for label, v in times.items()
        },
    }


def side_by_side_markdown(result: dict) -> str:
    rows = result["rows"]
    today = rows[TODAY[0]]["median_s"]
    lines = [
        f"Embedded model, one 2×2 grid, CPU ({result['cpu']}, {result['threads']} of {result['cpu_count']} cores, "
        f"torch {result['torch']}), the three configurations interleaved run by run; 1-min load average "
        f"{result['load_average_before']:.2f} before, {result['load_average_after']:.2f} after.",
        "",
        "| grid | median | p90 | min | against today's median |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['median_s']:.2f} s | {r['p90_s']:.2f} s | {r['min_s']:.2f} s | {r['median_s'] / today:.2f}× |"
        )
    return "\n".join(lines)


def markdown(result: dict) -> str:
    ok = "PASS" if result["median_s"] <= TARGET_S else "MISS"
    size = result["size"]
    busy = " (the CPU was busy: figures are pessimistic)" if result["load_average_before"] > 0.5 else ""
    return "\n".join(
        [
            f"Embedded model, 2×2 grid of {size}×{size} tiles, {result['steps']} steps, CPU "
            f"({result['cpu']}, {result['threads']} of {result['cpu_count']} cores, torch {result['torch']}); "
            f"model load {result['load_s']:.2f} s; 1-min load average before the runs "
            f"{result['load_average_before']:.2f}{busy}.",
            "",
            "| runs | median | p90 | min | target | result |",
            "| ---: | ---: | ---: | ---: | ---: | :---: |",
            f"| {len(result['runs_s'])} | {result['median_s']:.2f} s | {result['p90_s']:.2f} s "
            f"| {result['min_s']:.2f} s | ≤ {TARGET_S:.0f} s (median) | {ok} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "worker" / "models" / "embedded")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the engine's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--side-by-side", action="store_true", help="today's grid, the new one and best of 8")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    result = side_by_side(args) if args.side_by_side else measure(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(side_by_side_markdown(result) if args.side_by_side else markdown(result))


if __name__ == "__main__":
    main()
