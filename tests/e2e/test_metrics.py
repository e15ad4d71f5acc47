"""The bot's and the worker's Prometheus endpoints after a real /imagine
through the Discord stand-in: the real `daydream bot --metrics-port` and
`daydream worker --metrics-port` processes, a real redis-server. The bot's
first answer meets a 429 (discord.py waits it out and sends it again): its
endpoint counts the request, the 429 and the retry."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families

from daydream.redis_server import RedisServer, free_port
from shared import keys
from shared.job import JobState
from shared.settings import Settings
from shared.store import JobStore

from .processes import ROOT, BotProcess, WorkerProcess, daydream_env
from .scenario_helpers import Deployment, command_result, finished, imagine, job_of, redis_until
from .standin import Standin

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.timeout(240)]

BOT_PORT, WORKER_PORT = free_port(), free_port()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daydream(e2e_standin: Standin, e2e_redis: RedisServer, e2e_logs: Path) -> AsyncIterator[Deployment]:
    """The module's deployment, each process with its metrics endpoint."""
    env = daydream_env(e2e_standin.env(), e2e_redis.url)
    store = JobStore(Settings(redis_url=e2e_redis.url))
    deployment = Deployment(
        standin=e2e_standin,
        redis_server=e2e_redis,
        store=store,
        bot=BotProcess({**env, "METRICS_PORT": str(BOT_PORT)}, e2e_logs),
        worker=WorkerProcess({**env, "METRICS_PORT": str(WORKER_PORT)}, e2e_logs),
    )
    try:
        yield deployment
    finally:
        await asyncio.gather(deployment.bot.stop(timeout=10), deployment.worker.stop())
        store.redis.close()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


async def test_imagine_moves_the_bots_and_the_workers_counters(deployment: Deployment) -> None:
    standin = deployment.standin
    bot_before, worker_before = await asyncio.to_thread(scrape, BOT_PORT), await asyncio.to_thread(scrape, WORKER_PORT)
    limited = standin.fail("POST /interactions/*", status=429, retry_after=0.2)
    beats = await asyncio.to_thread(deployment.store.dispatch.live_workers)
    done_before = sum(b.get("outcomes", {}).get("done", 0) for b in beats)

    it = await imagine(deployment, "a red circle on a blue background --steps 2")
    message = await command_result(deployment, it)
    record = await finished(deployment, job_of(message))
    assert record.state == JobState.DONE
    assert limited.hits == 1 and it.acknowledged  # the deferral was sent again and went through
    # The worker counts the job as it finishes and then refreshes its heartbeat: wait for that beat.
    beat_key = keys.worker_heartbeat(deployment.worker.name)

    async def counted(client: redis.asyncio.Redis) -> bool | None:
        raw = await client.get(beat_key)
        return True if raw and json.loads(raw).get("outcomes", {}).get("done", 0) >= done_before + 1 else None

    await redis_until(deployment, beat_key, counted, "the heartbeat after the job", deployment.worker)

    bot, worker = await asyncio.to_thread(scrape, BOT_PORT), await asyncio.to_thread(scrape, WORKER_PORT)

    def moved(found: dict, before: dict, name: str, **labels: str) -> float:
        return value(found, name, **labels) - value(before, name, **labels)

    job = {"kind": "imagine", "model": "embedded", "lane": "fast"}
    # The bot queued it; the worker ran it and finished it.
    assert moved(bot, bot_before, "daydream_jobs_total", state="queued", **job) == 1
    assert moved(bot, bot_before, "daydream_jobs_total", state="done") == 0
    assert moved(worker, worker_before, "daydream_jobs_total", state="running", **job) == 1
    assert moved(worker, worker_before, "daydream_jobs_total", state="done", **job) == 1
    assert moved(worker, worker_before, "daydream_images_total", model="embedded") == 4
    assert moved(worker, worker_before, "daydream_job_run_seconds_count", **job) == 1
    # The bot's Discord requests: the 429 on its deferral, retried; every other answer a success.
    assert moved(bot, bot_before, "daydream_discord_requests_total", status="429") == 1
    assert moved(bot, bot_before, "daydream_discord_retries_total", reason="429") == 1
    assert moved(bot, bot_before, "daydream_discord_rate_limited_total") == 1
    assert moved(bot, bot_before, "daydream_discord_invalid_requests_total") == 1
    succeeded = {
        k: v
        for k, v in bot.items()
        if k[0] == "daydream_discord_requests_total" and dict(k[1])["status"].startswith("2")
    }
    assert sum(succeeded.values()) > sum(v for k, v in bot_before.items() if k in succeeded)  # the deferral, at least
    # The worker's requests: its edits of the answer, all accepted.
    assert moved(worker, worker_before, "daydream_discord_requests_total", status="200") >= 1
    assert moved(worker, worker_before, "daydream_discord_requests_total", status="429") == 0

    # The queue as the bot exports it, and as `daydream status` says it: the same numbers.
    status = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "daydream", "status", "--json"],
        cwd=ROOT, env=deployment.worker.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    shown = json.loads(status.stdout)
    for lane in ("turbo", "fast", "relax"):
        depth = shown["queues"][deployment.store.dispatch.queue_name("embedded", lane)]
        assert value(bot, "daydream_queue_depth", model="embedded", lane=lane) == depth
    assert value(bot, "daydream_workers_live", model="embedded") == len(shown["workers"]) == 1
    [beat] = shown["workers"]
    assert value(worker, "daydream_sampling_steps_per_second") == pytest.approx(beat["steps_per_s"])
