"""The bot under a burst: N `/imagine` interactions dispatched at once through
the Discord stand-in to the real `daydream bot` process. Not a test: run it by
hand and paste the table where it is wanted.

    python benchmarks/bot_burst.py [--count 500]

For every interaction it measures the acknowledgement latency as Discord would
see it (from the INTERACTION_CREATE dispatch to the bot's first callback,
recorded by the stand-in, which refuses answers later than 3 s), and for the
burst the bot process's CPU time (utime + stime of all its threads, from
/proc/<pid>/stat) per interaction, from the dispatch of the first one until
every one is handled (acknowledged, waiting line shown, job queued).

No worker runs: a fake live-worker heartbeat (`JobStore.heartbeat`) makes the
bot accept and queue the jobs, and the queue is emptied at the end. Each
interaction comes from a different member (`Standin.add_member`), so the
per-user limit (MAX_QUEUED_PER_USER, default 5) stays at its default and
refuses nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daydream.redis_server import RedisServer  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.store import JobStore  # noqa: E402
from tests.e2e.processes import BotProcess, daydream_env  # noqa: E402
from tests.e2e.standin import Interaction, Standin  # noqa: E402
from tests.support.jobs import announce_worker, empty_queue  # noqa: E402

PROMPT = "a red circle on a blue background --steps 2"
ACK_DEADLINE_S = 3.0
FAKE_WORKER = "bot-burst-fake-worker"
FAKE_WORKER_HEARTBEAT_S = 3600  # its heartbeat key lives 3 × this: the whole run
SETTLE_TIMEOUT_S = 600.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        data = stat.read()
    fields = data[data.rindex(")") + 2 :].split()  # after "pid (comm)": field 3 is fields[0]
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15, in clock ticks
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def handled(standin: Standin, it: Interaction) -> bool:
    """The bot is done with `it`: refused by Discord, or answered and then either showing
    the waiting line (queued) or followed up (an error)."""
    if not it.callbacks:
        return False
    if not it.acknowledged or it.followup_ids:
        return True
    original = standin.message(it.original_message_id) if it.original_message_id else None
    return original is not None and (original.edits >= 1 or original.deleted)


def shows_waiting_line(standin: Standin, it: Interaction) -> bool:
    original = standin.message(it.original_message_id) if it.original_message_id else None
    return original is not None and not original.deleted and "Waiting to start" in original.content


async def burst(count: int) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="daydream-bot-burst-"))
    with RedisServer(appendonly=False) as redis_server:
        async with Standin() as standin:
            store = JobStore(Settings(redis_url=redis_server.url, worker_heartbeat_s=FAKE_WORKER_HEARTBEAT_S))
            # A heartbeat with the embedded model's spec, and no worker behind it: jobs stay queued.
            announce_worker(store, FAKE_WORKER, device="none", fake=True)
            bot = BotProcess(daydream_env(standin.env(), redis_server.url), log_dir)
            await bot.start(standin)
            try:
                members = [standin.add_member(f"member{n}") for n in range(count)]
                load = os.getloadavg()
                cpu_before, started = cpu_seconds(bot.pid), time.monotonic()
                interactions = await asyncio.gather(
                    *(standin.slash_command("imagine", {"prompt": PROMPT}, user=m) for m in members)
                )
                pending = {it.id: it for it in interactions}

                def all_answered() -> bool:
                    # Re-checked on every request the stand-in records: only the ones still pending.
                    for done in [key for key, it in pending.items() if handled(standin, it)]:
                        del pending[done]
                    return not pending

                await bot.until(standin.wait_for(all_answered, SETTLE_TIMEOUT_S), "every interaction to be answered")
                # The bot queues a job right after showing its waiting line: wait for the last one.
                shown = sum(1 for it in interactions if shows_waiting_line(standin, it))
                await bot.wait_for_lines("queued imagine job", shown, SETTLE_TIMEOUT_S)
                wall_s, cpu_s = time.monotonic() - started, cpu_seconds(bot.pid) - cpu_before
                queued = store.dispatch.depth()
            finally:
                await bot.stop(timeout=10)
                empty_queue(store)
                store.dispatch.worker_gone(FAKE_WORKER)
                store.redis.close()

    latencies = sorted(it.ack_latency_s for it in interactions if it.ack_latency_s is not None)
    in_time = sum(1 for it in interactions if it.acknowledged and (it.ack_latency_s or 0) < ACK_DEADLINE_S)
    never = count - len(latencies)
    ms = [1000 * percentile(latencies, p) for p in (50, 90, 99, 100)] if latencies else [float("nan")] * 4
    machine = f"{os.cpu_count()} cores ({cpu_model()}), load avg {load[0]:.1f} at start"

    print(f"\n`/imagine` burst against the real bot process (bot log: {log_dir / 'bot.log'})\n")
    print(
        "| interactions | acknowledged within 3 s | ack p50 | ack p90 | ack p99 | ack max "
        "| bot CPU per interaction | machine |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {count} | {in_time} ({100 * in_time / count:.1f} %) | {ms[0]:.0f} ms | {ms[1]:.0f} ms | "
        f"{ms[2]:.0f} ms | {ms[3]:.0f} ms | {1000 * cpu_s / count:.2f} ms | {machine} |"
    )
    print(
        f"\nAll {count} handled in {wall_s:.1f} s (bot CPU {cpu_s:.2f} s in all); {queued} jobs queued; "
        f"{never} never answered. Python {platform.python_version()}."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="interactions in the burst (default 500)")
    args = parser.parse_args(argv)
    asyncio.run(burst(args.count))


if __name__ == "__main__":
    main()
