"""How fair the queue is, and what its pick costs. Not a test: run it by hand
and paste the tables into RESULTS.md.

    python benchmarks/fairness.py

Each scenario runs twice on a private redis-server: once with Daydream's pick
(the very Lua script the workers run, `Dispatch.take`) and once first in,
first out (the order of submission, RQ's own). Time is simulated: every job
takes `--job-s` seconds on one of `--workers` workers, submissions come at
their scheduled times, and at each moment the free workers pick — so the
order is exactly what the discipline chooses, and the run takes seconds.
The scheduler's cost per dequeue is measured in real time.
"""

from __future__ import annotations

import argparse
import heapq
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daydream.redis_server import RedisServer  # noqa: E402
from shared.job import JobRecord, JobState  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store import JobStore  # noqa: E402
from tests.support.jobs import announce_worker, make_job  # noqa: E402


@dataclass(frozen=True)
class Arrival:
    at: float
    user: int
    lane: str = "fast"


@dataclass
class Outcome:
    user: int
    lane: str
    submitted: float
    started: float
    finished: float


def simulate(store: JobStore, arrivals: list[Arrival], workers: int, job_s: float, fair: bool) -> list[Outcome]:
    """Run `arrivals` through `workers` simulated workers; what each job did, in virtual seconds."""
    store.redis.flushall()
    announce_worker(store)
    pending = sorted(arrivals, key=lambda a: a.at)
    fifo: list[tuple[float, int, JobRecord]] = []  # (submitted, seq, job) for the FIFO baseline
    meta: dict[str, Arrival] = {}
    free = [f"w{n}" for n in range(workers)]
    running: list[tuple[float, int, str, str]] = []  # (ends at, seq, worker, job id)
    out: list[Outcome] = []
    now, seq, i = 0.0, 0, 0
    started_at: dict[str, float] = {}
    while i < len(pending) or running or fifo or store.dispatch.depth():
        # Jobs arrive up to now.
        while i < len(pending) and pending[i].at <= now:
            a = pending[i]
            job = make_job(user=a.user, lane=a.lane, prompt=f"user {a.user}")
            store.submit(job, check=False)
            meta[job.id] = a
            heapq.heappush(fifo, (a.at, seq, job))
            seq += 1
            i += 1
        # Free workers pick.
        while free:
            worker = free.pop()
            job_id = None
            if fair:
                picked = store.dispatch.take(worker, ["embedded"])
                job_id = picked[1].rsplit("-", 1)[0] if picked else None
            elif fifo:
                _, _, job = heapq.heappop(fifo)
                job_id = job.id
                store.dispatch.withdraw(job)
            if job_id is None:
                free.append(worker)
                break
            job = store.get(job_id)
            store.mark_running(job.id, worker, attempt=job.attempts)
            started_at[job_id] = now
            heapq.heappush(running, (now + job_s, seq, worker, job_id))
            seq += 1
        # The next event: an arrival or a job ending.
        next_arrival = pending[i].at if i < len(pending) else float("inf")
        next_end = running[0][0] if running else float("inf")
        now = min(next_arrival, next_end)
        while running and running[0][0] <= now:
            ends, _, worker, job_id = heapq.heappop(running)
            job = store.get(job_id)
            # The job's GPU time, as the usage book and the relax order will count it.
            store.update(job_id, started_at=time.time() - job_s)
            store.finish(job_id, JobState.DONE, attempt=job.attempts)
            a = meta[job_id]
            out.append(Outcome(a.user, a.lane, a.at, started_at[job_id], ends))
            free.append(worker)
        if now == float("inf"):
            break
    return out


def first_waits(outcomes: list[Outcome]) -> dict[int, float]:
    """Each user's wait for their first job to start."""
    firsts: dict[int, Outcome] = {}
    for o in sorted(outcomes, key=lambda o: o.submitted):
        firsts.setdefault(o.user, o)
    return {u: o.started - o.submitted for u, o in firsts.items()}


def completions(outcomes: list[Outcome]) -> dict[int, float]:
    """Each user's time from their first submission to their last job's end."""
    by_user: dict[int, list[Outcome]] = {}
    for o in outcomes:
        by_user.setdefault(o.user, []).append(o)
    return {u: max(o.finished for o in os) - min(o.submitted for o in os) for u, os in by_user.items()}


def table(title: str, fair: list[Outcome], fifo: list[Outcome], label: Callable[[int], str]) -> None:
    print(f"\n### {title}\n")
    print("| user | jobs | first job waits (fair) | (FIFO) | all done after (fair) | (FIFO) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    wf, wq, cf, cq = first_waits(fair), first_waits(fifo), completions(fair), completions(fifo)
    counts = {u: sum(1 for o in fair if o.user == u) for u in wf}
    for u in sorted(wf):
        print(f"| {label(u)} | {counts[u]} | {wf[u]:.1f} s | {wq[u]:.1f} s | {cf[u]:.1f} s | {cq[u]:.1f} s |")
    print(
        f"| **max / mean** | | **{max(wf.values()):.1f} / {statistics.mean(wf.values()):.1f} s** "
        f"| {max(wq.values()):.1f} / {statistics.mean(wq.values()):.1f} s | | |"
    )


def pick_cost(store: JobStore, users: int, jobs: int, runs: int) -> tuple[float, float]:
    """Median µs of one fair pick and of one plain LPOP, `jobs` waiting from `users` users."""
    store.redis.flushall()
    announce_worker(store)
    for n in range(jobs):
        store.submit(make_job(user=1 + n % users), check=False)
    fair = []
    for _ in range(min(runs, jobs)):
        t0 = time.perf_counter()
        store.dispatch.take("bench", ["embedded"])
        fair.append((time.perf_counter() - t0) * 1e6)
    store.redis.delete("bench-list")
    store.redis.rpush("bench-list", *range(runs))
    plain = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.redis.lpop("bench-list")
        plain.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(fair), statistics.median(plain)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--job-s", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = random.Random(args.seed)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"simulated: {args.workers} workers, {args.job_s:.1f} s per job; Daydream's pick vs FIFO")
    with RedisServer(appendonly=False) as server:
        store = JobStore(Settings(redis_url=server.url, max_queued_per_user=1000, max_running_per_user=1000))
        # A holds 20 waiting jobs; B submits one right after.
        ab = [Arrival(0.0, 1)] * 20 + [Arrival(0.1, 2)]
        table(
            "A/B: user A queues 20, user B one just after",
            simulate(store, ab, args.workers, args.job_s, True),
            simulate(store, ab, args.workers, args.job_s, False),
            lambda u: "A" if u == 1 else "B",
        )
        # Ten users, each a burst of 1-10 jobs at a random moment in the first minute.
        mix = [Arrival(t, u) for u in range(1, 11) for t in [rng.uniform(0, 60)] for _ in range(rng.randint(1, 10))]
        table(
            "ten users, each a burst of 1-10 jobs at a random time in the first minute",
            simulate(store, mix, args.workers, args.job_s, True),
            simulate(store, mix, args.workers, args.job_s, False),
            lambda u: f"user {u}",
        )
        # Relax vs fast: a heavy user's relax backlog, then fast jobs from others.
        rf = [Arrival(0.0, 1, "relax")] * 10 + [Arrival(1.0 + k, 10 + k) for k in range(5)]
        fair, fifo = (
            simulate(store, rf, args.workers, args.job_s, True),
            simulate(store, rf, args.workers, args.job_s, False),
        )
        table("relax vs fast: user 1 queues 10 relaxed jobs, then five users one fast job each", fair, fifo,
              lambda u: "user 1 (relax)" if u == 1 else f"user {u} (fast)")  # fmt: skip
        for jobs in (100, 1000):
            f_us, p_us = pick_cost(store, users=max(1, jobs // 20), jobs=jobs, runs=200)
            print(
                f"\npick cost, {jobs} jobs waiting from {max(1, jobs // 20)} users: fair {f_us:.0f} µs, LPOP {p_us:.0f} µs"
            )


if __name__ == "__main__":
    main()
