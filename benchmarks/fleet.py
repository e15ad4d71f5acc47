"""What observing and supervising the fleet costs. Not a test: run it by hand
and paste the tables into RESULTS.md.

    python benchmarks/fleet.py [--rounds 3]

1. The structured log line and the job metrics of one state change
   (`shared.joblog.changed`, four per job), in microseconds.
2. A Prometheus scrape of the bot's endpoint (the queue read from Redis at
   scrape time) with 1 and 10 models served, in milliseconds.
3. `daydream worker --devices cpu` (the embedded model): the first worker
   serving, and a SIGKILLed worker serving again under its supervisor, in
   seconds (the model loads again: that is most of it).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.metrics import queue_figures  # noqa: E402
from daydream.redis_server import RedisServer, free_port  # noqa: E402
from shared import joblog  # noqa: E402
from shared.job import JobState  # noqa: E402
from shared.metrics import Endpoint, FigureCollector  # noqa: E402
from shared.models import ModelSpec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store import JobStore  # noqa: E402
from tests.support.jobs import EMBEDDED_SPEC, announce_worker, make_job  # noqa: E402


def state_change_us(n: int = 20000) -> float:
    logger = logging.getLogger("shared.joblog")
    logger.handlers[:] = [logging.StreamHandler(io.StringIO())]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    job = make_job()
    job.started_at, job.finished_at, job.state, job.worker = (
        job.created_at + 0.5,
        job.created_at + 2,
        JobState.DONE,
        "w",
    )
    start = time.perf_counter()
    for _ in range(n):
        joblog.changed(job)
    return (time.perf_counter() - start) / n * 1e6


def scrape_ms(redis_url: str, models: int, runs: int = 200) -> tuple[float, float]:
    store = JobStore(Settings(redis_url=redis_url))
    store.redis.flushall()
    for i in range(models):
        spec = ModelSpec(**{**EMBEDDED_SPEC.__dict__, "name": f"model-{i}"})
        announce_worker(store, f"w{i}", spec)
        for user in range(3):
            store.submit(make_job(user=user, model=spec.name))
    port = free_port()
    endpoint = Endpoint(port, addr="127.0.0.1")
    endpoint.add(FigureCollector(lambda: queue_figures(store)))
    endpoint.start()
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                resp.read()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        endpoint.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def supervised_restart(redis_url: str, rounds: int) -> tuple[float, list[float]]:
    store = JobStore(Settings(redis_url=redis_url))
    store.redis.flushall()
    env = {**os.environ, "REDIS_URL": redis_url, "HF_HUB_OFFLINE": "1", "WORKER_HEARTBEAT_S": "1"}
    cmd = [sys.executable, "-m", "daydream", "worker", "--devices", "cpu", "--name", "bench"]
    start = time.monotonic()
    sup = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def serving(name: str) -> dict | None:
        return next((w for w in store.dispatch.live_workers() if w["name"] == name), None)

    def wait_for(name: str) -> dict:
        while (info := serving(name)) is None:
            if sup.poll() is not None:
                raise SystemExit(f"the supervisor exited with {sup.returncode}")
            time.sleep(0.05)
        return info

    try:
        info = wait_for("bench.0")
        first = time.monotonic() - start
        restarts = []
        for r in range(1, rounds + 1):
            killed = time.monotonic()
            os.kill(info["pid"], signal.SIGKILL)
            info = wait_for(f"bench.0.{r}")
            restarts.append(time.monotonic() - killed)
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=120)
    return first, restarts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"\none state change (log line + counters + histogram): {state_change_us():.1f} µs")
    with RedisServer(appendonly=False) as server:
        print("\n| models served | scrape p50 ms | p99 ms |\n| ---: | ---: | ---: |")
        for models in (1, 10):
            p50, p99 = scrape_ms(server.url, models)
            print(f"| {models} | {p50:.2f} | {p99:.2f} |")
        first, restarts = supervised_restart(server.url, args.rounds)
        print("\n| supervised worker (embedded, CPU) | seconds |\n| --- | ---: |")
        print(f"| first worker serving | {first:.1f} |")
        for i, s in enumerate(restarts, 1):
            print(f"| SIGKILL → serving again, round {i} | {s:.1f} |")


if __name__ == "__main__":
    main()
