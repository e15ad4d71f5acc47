"""What the queue costs: the same job (fixed prompt, seeds, steps) timed
in-process and through Redis + a worker process, plus enqueue → worker-start
latency. Not a test: run it by hand and paste the table into RESULTS.md.

    python benchmarks/queue_overhead.py --runs 10 --latency-runs 50
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daydream.redis_server import RedisServer  # noqa: E402
from shared.job import JobKind, JobRecord, new_job_id  # noqa: E402
from shared.params import Params  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store import JobStore  # noqa: E402

PROMPT = "a red circle on a blue background"
SEEDS = [1, 2, 3, 4]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def load_engine_in_process():
    import torch

    from worker.engines.registry import load_engine, warm_up

    torch.set_num_threads(os.cpu_count() or 1)
    engine = load_engine("embedded", "cpu")
    warm_up(engine)  # as the worker does before taking jobs
    return engine


def record(steps: int) -> JobRecord:
    return JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt=PROMPT,
        params=Params(steps=steps),
        seeds=list(SEEDS),
        model="embedded",
    )


def measure(url: str, runs: int, steps: int, latency_runs: int) -> dict[str, list[float]]:
    """In-process and through-the-queue runs alternate, so a noisy neighbour
    on the machine hurts both the same way."""
    from worker.engines.base import Request

    engine = load_engine_in_process()
    size = engine.spec.base_size
    req = Request.text(PROMPT, SEEDS, size, size, steps=steps)
    env = {**os.environ, "REDIS_URL": url, "HF_HUB_OFFLINE": "1", "WORKER_HEARTBEAT_S": "5"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "daydream", "worker", "--name", "bench", "--device", "cpu"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    store = JobStore(Settings(redis_url=url))
    out: dict[str, list[float]] = {"inproc": [], "queued": [], "latency": [], "cli": []}
    try:
        while not store.dispatch.live_workers():
            if worker.poll() is not None:
                raise SystemExit("worker exited")
            time.sleep(0.1)  # waiting for another process to announce itself
        for i in range(runs + 1):
            t0 = time.perf_counter()
            engine.generate(req)
            t_in = time.perf_counter() - t0
            rec = record(steps)
            t0 = time.perf_counter()
            store.submit(rec)
            done = store.wait(rec.id, timeout=600)
            t_q = time.perf_counter() - t0
            assert done.state == "done", done.error
            if i:  # the first round warms up the queue path
                out["inproc"].append(t_in)
                out["queued"].append(t_q)
        for _ in range(latency_runs):
            rec = record(1)
            t_submit = time.time()
            store.submit(rec)
            done = store.wait(rec.id, timeout=600)
            out["latency"].append((done.started_at or 0) - t_submit)
        for _ in range(min(runs, 5)):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "daydream", "imagine", f"{PROMPT} --seed 1 --steps {steps}", "-q"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            out["cli"].append(time.perf_counter() - t0)
        return out
    finally:
        worker.terminate()
        worker.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--latency-runs", type=int, default=50)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    with RedisServer(appendonly=False) as server:
        m = measure(server.url, args.runs, args.steps, args.latency_runs)
    inproc, queued, latency, cli = m["inproc"], m["queued"], m["latency"], m["cli"]
    m_in, m_q = statistics.median(inproc), statistics.median(queued)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"job: embedded model, 2×2 grid, {args.steps} steps, prompt {PROMPT!r}\n")
    print("| path | runs | median s | p90 s |")
    print("| --- | --- | --- | --- |")
    print(f"| in-process sampling call | {len(inproc)} | {m_in:.3f} | {pct(inproc, 90):.3f} |")
    print(f"| submit → done through Redis + worker | {len(queued)} | {m_q:.3f} | {pct(queued, 90):.3f} |")
    print(
        f"| `daydream imagine` CLI, process start to exit | {len(cli)} | {statistics.median(cli):.3f} | {pct(cli, 90):.3f} |"
    )
    print(f"\nthrough-the-queue / in-process: {m_q / m_in:.3f} (target ≤ 1.05)")
    ms = [x * 1000 for x in latency]
    print(
        f"enqueue → worker start over {len(ms)} jobs: p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms (targets < 5 / < 20 ms)"
    )


if __name__ == "__main__":
    main()
