"""The fleet's numbers: a real worker process's Prometheus endpoint after a
real Discord job (real redis-server, the embedded model's engine path, a
Discord that answers 429 and 502 first), the queue figures the bot exports
against `daydream status`, and the structured log line of each state change.
The bot's endpoint through the Discord stand-in is in tests/e2e/test_metrics.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import queue_figures
from daydream.redis_server import free_port
from shared import messages, reports
from shared.job import JobKind, JobRecord, JobState, ReplyTarget, new_job_id
from shared.metrics import FigureCollector
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import Canned, FakeDiscord
from tests.support.jobs import announce_worker, make_job
from tests.support.workers import ROOT, start_worker, stop_worker, wait_until, worker_env

APP_ID = 4444
TOKEN = "interaction-token-that-must-never-be-logged"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an endpoint: (name, sorted labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return samples(text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


def discord_job(store: JobStore, prompt: str = "a red circle on a blue background") -> JobRecord:
    job = JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt=prompt,
        params=Params(steps=3),
        seeds=[1, 2, 3, 4],
        user_id=42,
        model="embedded",
        reply=ReplyTarget(
            application_id=APP_ID,
            interaction_token=TOKEN,
            token_expires_at=time.time() + 15 * 60,
            guild_id=7,
            channel_id=3333,
        ),
    )
    return store.submit(job)


@pytest.mark.slow
def test_a_workers_endpoint_counts_its_job_its_pace_and_its_discord_requests(redis_url, discord: FakeDiscord) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    port = free_port()
    edit = ("PATCH", f"/webhooks/{APP_ID}/{TOKEN}/messages/@original")
    # The first progress edit goes through (one only: PROGRESS_INTERVAL_S); the result's edit
    # meets a rate limit, then a bad gateway, then goes through.
    discord.fail(*edit, Canned(200, {}))
    discord.fail(*edit, Canned(429, {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}))
    discord.fail(*edit, Canned(502, {"message": "Bad Gateway"}))
    proc = start_worker(
        redis_url,
        "metrics-worker",
        "--metrics-port",
        str(port),
        DISCORD_API_BASE=discord.base,
        PROGRESS_INTERVAL_S="60",
    )
    try:
        before = scrape(port)
        assert value(before, "daydream_jobs_total") == 0
        job = discord_job(store)
        done = store.wait(job.id, timeout=120)
        assert done.state == JobState.DONE, done.error
        assert done.undelivered is None
        # The worker refreshes its heartbeat right after the job, with the job counted.
        info = wait_until(
            lambda: next((w for w in store.dispatch.live_workers() if w.get("outcomes")), None),
            30,
            "the heartbeat after the job",
            proc,
        )
        assert info["outcomes"] == {"done": 1}
        after = scrape(port)
    finally:
        stop_worker(proc)

    who = {"model": "embedded", "lane": "fast"}
    # Jobs: this worker started it and finished it (the submit was this test's process).
    assert value(after, "daydream_jobs_total", kind="imagine", state="running", **who) == 1
    assert value(after, "daydream_jobs_total", kind="imagine", state="done", **who) == 1
    assert value(after, "daydream_jobs_total", state="queued") == 0
    assert value(after, "daydream_job_wait_seconds_count", **who) == 1
    assert value(after, "daydream_job_run_seconds_count", kind="imagine", **who) == 1
    assert value(after, "daydream_job_run_seconds_sum", **who) == pytest.approx(
        done.finished_at - done.started_at, abs=0.01
    )
    # Pace: 3 sampling steps of one batch, four images; the gauges are the heartbeat's figures.
    assert value(after, "daydream_sampling_steps_total", model="embedded") == 3
    assert value(after, "daydream_images_total", model="embedded") == 4
    steps_per_s = value(after, "daydream_sampling_steps_per_second", worker="metrics-worker")
    assert steps_per_s > 0 and steps_per_s == pytest.approx(info["steps_per_s"])
    report = reports.workers_report_of([info])[0]
    assert report.steps_per_s == pytest.approx(steps_per_s)
    assert report.outcomes == {"done": 1} and report.capacity == 1 and report.version
    ipm = value(after, "daydream_worker_images_per_minute", worker="metrics-worker")
    assert ipm > 0 and ipm == pytest.approx(report.images_per_minute, rel=0.1)
    assert value(after, "daydream_gpu_memory_bytes") == 0  # a CPU worker has none to report
    # Discord: a progress edit, then the result's three tries; the 429 and the 502 were each retried.
    edits = [r for r in discord.requests if (r.method, r.path) == edit]
    assert len(edits) == 4
    assert value(after, "daydream_discord_requests_total", status="429") == 1
    assert value(after, "daydream_discord_requests_total", status="502") == 1
    assert value(after, "daydream_discord_requests_total", status="200") == 2
    assert value(after, "daydream_discord_retries_total", reason="429") == 1
    assert value(after, "daydream_discord_retries_total", reason="5xx") == 1
    assert value(after, "daydream_discord_rate_limited_total", scope="user") == 1
    assert value(after, "daydream_discord_invalid_requests_total") == 1


def test_the_queue_figures_are_the_numbers_daydream_status_shows(redis_url) -> None:
    settings = Settings(redis_url=redis_url)
    store = JobStore(settings)
    announce_worker(store, "w1")
    for user in (1, 2, 2):
        store.submit(make_job(user=user))
    store.submit(make_job(user=3, lane="relax"))
    registry = CollectorRegistry()
    registry.register(FigureCollector(lambda: queue_figures(store)))
    found = samples(generate_latest(registry).decode())

    status = subprocess.run(
        [sys.executable, "-m", "daydream", "status", "--json"],
        cwd=ROOT, env=worker_env(redis_url), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    queues = json.loads(status.stdout)["queues"]
    for lane, waiting in (("fast", 3), ("relax", 1), ("turbo", 0)):
        assert value(found, "daydream_queue_depth", model="embedded", lane=lane) == waiting
        assert queues[store.dispatch.queue_name("embedded", lane)] == waiting
    assert value(found, "daydream_workers_live", model="embedded") == 1
    assert value(found, "daydream_jobs_running") == 0


def test_a_scrape_while_redis_is_away_answers_without_the_queue() -> None:
    store = JobStore(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    registry = CollectorRegistry()
    registry.register(FigureCollector(lambda: queue_figures(store)))
    assert "daydream_queue_depth" not in generate_latest(registry).decode()


def test_each_state_change_logs_one_line_with_its_timings_and_never_the_token(redis_url, caplog) -> None:
    store = JobStore(Settings(redis_url=redis_url))
    announce_worker(store, "w1")
    caplog.set_level(logging.INFO, logger="shared.joblog")
    job = discord_job(store)
    store.mark_running(job.id, "w1", attempt=0)
    store.requeue(store.get(job.id), reason="its worker died")
    store.mark_running(job.id, "w2", attempt=1)
    store.finish(job.id, JobState.DONE, attempt=1)

    lines = [json.loads(r.getMessage().removeprefix("job ")) for r in caplog.records if r.name == "shared.joblog"]
    assert [(line["state"], line["attempt"]) for line in lines] == [
        ("queued", 0), ("running", 0), ("queued", 1), ("running", 1), ("done", 1),
    ]  # fmt: skip
    for line in lines:
        assert line["job"] == job.id and line["user"] == 42 and line["model"] == "embedded" and line["lane"] == "fast"
        assert line["guild"] == 7 and line["channel"] == 3333 and line["kind"] == "imagine"
    assert lines[2]["reason"] == "its worker died"
    assert lines[3]["worker"] == "w2" and lines[3]["wait_s"] >= 0
    assert lines[4]["run_s"] >= 0 and "wait_s" in lines[4]
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_admin_workers_says_the_figures_the_endpoint_exports() -> None:
    beat = {
        "name": "gpu-host.0", "host": "gpu-host", "device": "cuda:0", "models": ["flux-schnell"], "jobs_done": 13,
        "images_per_minute": 7.5, "steps_per_s": 4.125, "gpu_memory_bytes": {"allocated": 10_565_000_000,
        "reserved": 12_000_000_000}, "outcomes": {"done": 12, "failed": 1}, "version": "0.2.0", "capacity": 1,
        "started_at": 0.0, "heartbeat_at": 100.0,
    }  # fmt: skip
    [report] = reports.workers_report_of([beat], now=101.0)
    text = messages.workers_report([report])
    assert "7.5 images/min" in text and "4.1 steps/s" in text and "GPU memory 9.84 GiB" in text
    assert "12 done, 1 failed" in text and "version 0.2.0" in text
    from worker.metrics import figures

    exported = {(name, tuple(labels.values())): value for name, _help, labels, value in figures(beat)}
    assert exported[("daydream_sampling_steps_per_second", ("gpu-host.0", "flux-schnell"))] == report.steps_per_s
    assert exported[("daydream_worker_images_per_minute", ("gpu-host.0", "flux-schnell"))] == 7.5
    assert exported[("daydream_gpu_memory_bytes", ("cuda:0", "allocated"))] == report.gpu_memory_bytes
