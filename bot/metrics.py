"""The bot's Prometheus endpoint: its Discord requests, counted from
aiohttp's request trace on discord.py's own session (discord.py has no hook
of its own), and the queue as Redis holds it (`queue_figures`, read at scrape
time from the calls `daydream status` and `/admin queue` make).

discord.py sends a request again after a 429 that came through Discord's
proxy (a `Via` header; one without is a Cloudflare ban, raised at once) and
after a 5xx (up to five tries in all): those answers count as retries."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import aiohttp

from shared import metrics
from shared.job import LANES
from shared.store import JobStore


async def _on_request_end(
    _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    status, headers = params.response.status, params.response.headers
    retried = status >= 500 or (status == 429 and bool(headers.get("Via")))
    metrics.discord_answer(status, headers.get("X-RateLimit-Scope"), retried=retried)


async def _on_request_exception(
    _session: aiohttp.ClientSession, _ctx: SimpleNamespace, _params: aiohttp.TraceRequestExceptionParams
) -> None:
    metrics.discord_unreachable(retried=True)  # discord.py retries an OSError too


def discord_trace() -> aiohttp.TraceConfig:
    """For `discord.Client(http_trace=…)`: counts every request and its answer."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_request_end)
    trace.on_request_exception.append(_on_request_exception)
    return trace


def queue_figures(store: JobStore) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """Jobs waiting per model and lane, jobs running, and live workers per model."""
    workers = store.dispatch.live_workers()
    models = sorted({m for w in workers for m in w.get("models", [])})
    for model in models:
        for lane, depth in zip(LANES, (store.dispatch.depth(model, lane) for lane in LANES), strict=True):
            yield "daydream_queue_depth", "Jobs waiting, per model and lane", {"model": model, "lane": lane}, depth
        held = sum(1 for w in workers if model in w.get("models", []))
        yield "daydream_workers_live", "Live workers holding the model", {"model": model}, held
    yield "daydream_jobs_running", "Jobs running on any worker", {}, len(store.running_ids())
