"""Nothing lost, measured: jobs through real processes while faults are
injected, with the default settings (heartbeats every 5 s). Not a test: run
it by hand and paste the table into RESULTS.md.

    python benchmarks/faults.py [--jobs 24]

Part 1, the queue: two real `daydream worker`s (embedded model, one CPU
thread each) and a real redis-server with the append-only file; jobs from
the command line's path (`JobStore.submit`); workers SIGKILLed and frozen
mid-job, a job taken off the queue by a process that dies at once, Redis
SIGKILLed and restarted.

Part 2, Discord: the stand-in, the real bot and a worker; `/imagine` jobs while
the stand-in answers 429s (route, global, shared) and 5xx storms and some
interaction tokens die; each result must be posted exactly once and the
invalid requests (what Discord counts toward its IP ban) stay few.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daydream.redis_server import RedisServer  # noqa: E402
from shared.job import JobState  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store import JobStore  # noqa: E402
from tests.e2e.processes import BotProcess, WorkerProcess, daydream_env  # noqa: E402
from tests.e2e.scenario_helpers import is_result  # noqa: E402
from tests.e2e.standin import Standin  # noqa: E402
from tests.faults.fleet import Fleet, take_and_die  # noqa: E402
from tests.support.workers import wait_until  # noqa: E402

STEPS = 20
FAULTS_DISCORD = ["503 ×6 on posts", "429 ×4 on edits", "shared 429 ×4", "502 ×4 on edits", "global 429 ×2"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def queue_faults(jobs: int, log_dir: Path, rng: random.Random) -> dict:
    """Part 1: kills, freezes, a dequeue-window death and a Redis restart over `jobs` jobs."""
    with RedisServer(appendonly=True) as server:
        fleet = Fleet(server, log_dir, heartbeat_s=5)
        try:
            fleet.start("a")
            fleet.start("b")
            submitted = fleet.submit(jobs, steps=STEPS)
            faults: list[str] = []
            requeue_s: list[float] = []

            def requeued(victim_id: str, attempts: int) -> bool:
                job = fleet.store.get(victim_id)
                return job.attempts > attempts or job.finished

            # The dequeue window: a process takes a job, lease and all, and dies.
            # Done first, while both workers are busy and jobs wait, so the taker gets
            # one (the fair pick hands it whichever job is next).
            fleet.wait_running(at_least=0.05, of=submitted, timeout=300)
            took = take_and_die(server.url)
            taken = next((j for j in submitted if j.id in took.stdout), None)
            if taken is not None:
                t0, before = time.monotonic(), fleet.store.get(taken.id).attempts
                wait_until(lambda: requeued(taken.id, before), 120, "the orphan's re-queue")
                requeue_s.append(time.monotonic() - t0)
                faults.append("dequeue-window death")
            else:
                print("the taker got no job:", took.stdout, took.stderr[-500:], flush=True)
            # Kills and freezes while jobs run.
            for kind in ("kill", "kill", "freeze", "kill", "kill"):
                victim = fleet.wait_running(at_least=0.1, of=submitted, timeout=300)
                if victim is None:
                    break
                t0 = time.monotonic()
                if kind == "kill":
                    fleet.kill(victim.worker)
                else:
                    fleet.signal(victim.worker, signal.SIGSTOP)
                wait_until(lambda v=victim: requeued(v.id, v.attempts), 120, "the re-queue")
                requeue_s.append(time.monotonic() - t0)
                faults.append(kind)
                if kind == "kill":
                    fleet.start()
                else:
                    fleet.signal(victim.worker, signal.SIGCONT)
            # Redis SIGKILLed mid-run, back after 3 s.
            if fleet.wait_running(at_least=0.05, of=submitted, timeout=120) is not None:
                server.kill()
                time.sleep(3)  # the outage itself
                server.start()
                faults.append("redis killed 3 s")
            done = fleet.wait_all(submitted, timeout=900)
            finishes = {j.id: fleet.finishes(j.id) for j in submitted}
            return {
                "jobs": len(submitted),
                "faults": faults,
                "done": sum(1 for j in done if j.state == JobState.DONE),
                "failed": sum(1 for j in done if j.state == JobState.FAILED),
                "lost": sum(1 for f in finishes.values() if not f),
                "duplicates": sum(max(0, len(f) - 1) for f in finishes.values()),
                "requeue_s": requeue_s,
            }
        finally:
            fleet.stop_all()


async def discord_faults(jobs: int, log_dir: Path, rng: random.Random) -> dict:
    """Part 2: /imagine through the stand-in while it answers with 429s, 5xx and dead tokens."""
    with RedisServer(appendonly=True) as server:
        async with Standin() as standin:
            env = daydream_env(standin.env(), server.url, WORKER_HEARTBEAT_S="5")
            bot, worker = BotProcess(env, log_dir), WorkerProcess(env, log_dir)
            await asyncio.gather(bot.start(standin), worker.start())
            try:
                # One entry per storm below, in words for the table (FAULTS_DISCORD).
                [
                    standin.fail("POST /channels/*/messages", 503, times=6),
                    standin.fail("PATCH /webhooks/*", 429, retry_after=0.5, times=4),
                    standin.fail("PATCH /webhooks/*", 429, retry_after=0.5, shared=True, times=4),
                    standin.fail("PATCH /webhooks/*", 502, times=4),
                    standin.fail("PATCH /webhooks/*", 429, retry_after=0.3, is_global=True, times=2),
                ]
                # Paused while the bot queues them, so the tokens chosen to die do so
                # while their jobs wait (as after 15 minutes in line), not before the
                # bot has answered (then the bot rightly withdraws the job).
                store = JobStore(Settings(redis_url=server.url))
                store.policy.pause()
                interactions = []
                for n in range(jobs):
                    member = standin.add_member(f"member{n}")
                    it = await standin.slash_command(
                        "imagine", {"prompt": f"a red circle on a blue background --steps 4 --seed {n}"}, user=member
                    )
                    interactions.append(it)
                await standin.wait_for(lambda: len(store.recent(jobs)) == jobs, 120)
                expired = 0
                for it in interactions:
                    if rng.random() < 0.25:
                        standin.expire_token(it.id)  # its 15 minutes are up: the channel post it is
                        expired += 1
                store.policy.resume()

                def results_of(it) -> list:  # it: a stand-in Interaction
                    mine = [m for m in standin.messages() if m.interaction_id == it.id or it.user.id in m.mentions]
                    return [m for m in mine if is_result(m)]

                def all_posted() -> bool:
                    return all(results_of(it) for it in interactions)

                await worker.until(standin.wait_for(all_posted, 900), "every result")
                counts = [len(results_of(it)) for it in interactions]
                return {
                    "jobs": jobs,
                    "faults": [*FAULTS_DISCORD, f"{expired} tokens expired"],
                    "delivered": sum(1 for c in counts if c >= 1),
                    "duplicates": sum(max(0, c - 1) for c in counts),
                    "lost": sum(1 for c in counts if c == 0),
                    "invalid": standin.invalid_request_count,
                }
            finally:
                await asyncio.gather(bot.stop(timeout=10), worker.stop())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=24)
    p.add_argument("--discord-jobs", type=int, default=20)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    rng = random.Random(args.seed)
    log_dir = Path(tempfile.mkdtemp(prefix="daydream-faults-"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}; logs {log_dir}")
    q = queue_faults(args.jobs, log_dir, rng)
    print(f"queue part: {q}", flush=True)  # shown before part 2, in case that one hangs
    d = asyncio.run(discord_faults(args.discord_jobs, log_dir, rng))
    print(
        "\n| part | jobs | faults injected | delivered | failed | duplicates | lost | re-queue p50 / p95 | invalid Discord requests per 100 jobs |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rq = q["requeue_s"]
    print(
        f"| queue (2 workers, Redis AOF) | {q['jobs']} | {', '.join(q['faults'])} | {q['done']} | {q['failed']} "
        f"| {q['duplicates']} | {q['lost']} | {statistics.median(rq):.1f} / {pct(rq, 95):.1f} s | – |"
    )
    print(
        f"| Discord (stand-in, bot, worker) | {d['jobs']} | {', '.join(d['faults'])} | {d['delivered']} | – "
        f"| {d['duplicates']} | {d['lost']} | – | {100 * d['invalid'] / max(1, d['jobs']):.0f} |"
    )


if __name__ == "__main__":
    main()
