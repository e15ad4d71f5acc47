"""The numbers Daydream exports to Prometheus, all named `daydream_…`, and
the endpoint that serves them (`--metrics-port`, METRICS_PORT).

Each process exports what it did itself: the bot counts the jobs it queued
and its Discord requests; a worker the jobs it ran, their wait and run times,
its sampling pace, its images and its own Discord requests. Prometheus adds
`job`/`instance` labels per target and sums across them. Figures that live in
Redis (queue depth per model and lane, live workers) are read at scrape time
by a collector (`QueueCollector`, on the bot), from the same calls that
`daydream status` and `/admin queue` make, so every view shows one number.

prometheus-client is the library Prometheus's authors keep for Python: its
text format, histograms and HTTP endpoint in a few hundred lines, no
dependencies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Seconds: a turbo job waits a second, a busy relax lane an hour; a CPU job runs 1 s, a FLUX grid 2 min.
WAIT_BUCKETS_S = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
RUN_BUCKETS_S = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

JOBS = Counter(
    "daydream_jobs", "Job state changes this process made, by kind, state, model and lane",
    ["kind", "state", "model", "lane"],
)  # fmt: skip
JOB_WAIT = Histogram(
    "daydream_job_wait_seconds", "From submit to a worker starting the job", ["model", "lane"], buckets=WAIT_BUCKETS_S
)
JOB_RUN = Histogram(
    "daydream_job_run_seconds", "From a worker starting a job to its end", ["kind", "model", "lane"],
    buckets=RUN_BUCKETS_S,
)  # fmt: skip
SAMPLING_STEPS = Counter("daydream_sampling_steps", "Sampling steps run (a batch of four is one step)", ["model"])
IMAGES = Counter("daydream_images", "Images made", ["model"])
DISCORD_REQUESTS = Counter("daydream_discord_requests", "Requests to Discord's REST API, by answer", ["status"])
DISCORD_RETRIES = Counter(
    "daydream_discord_retries", "Requests to Discord sent again, by why (429, 5xx, connection)", ["reason"]
)
DISCORD_RATE_LIMITED = Counter(
    "daydream_discord_rate_limited", "429 answers from Discord, by scope (user, global, shared)", ["scope"]
)
DISCORD_INVALID = Counter(
    "daydream_discord_invalid_requests",
    "Answers Discord counts toward its IP ban (401, 403, 429 but shared ones): 10,000 in 10 minutes ban the host",
)

INVALID_STATUSES = frozenset({401, 403, 429})
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504, 524})


def discord_answer(status: int, scope: str | None = None, *, retried: bool) -> None:
    """Count one answer from Discord. `scope`: its X-RateLimit-Scope header;
    `retried`: whether the client sends the request again because of it."""
    DISCORD_REQUESTS.labels(str(status)).inc()
    if status == 429:
        DISCORD_RATE_LIMITED.labels(scope or "user").inc()
    if status in INVALID_STATUSES and not (status == 429 and scope == "shared"):
        DISCORD_INVALID.inc()
    if retried:
        DISCORD_RETRIES.labels("429" if status == 429 else "5xx").inc()


def discord_unreachable(*, retried: bool) -> None:
    """Count a request that got no answer (connection error, timeout)."""
    DISCORD_REQUESTS.labels("error").inc()
    if retried:
        DISCORD_RETRIES.labels("connection").inc()


# -- figures read at scrape time --------------------------------------------------


class FigureCollector(Collector):
    """Gauges computed when Prometheus scrapes: `figures()` yields
    (name, help, labels, value) and its errors are logged, never raised into
    the scrape (a Redis blip must not turn the endpoint into a 500)."""

    def __init__(self, figures: Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        try:
            rows = list(self._figures())
        except Exception as exc:  # a scrape during an outage shows no gauges, and says why in the log
            logger.warning("metrics: could not read the figures (%s)", exc)
            return
        for name, help_text, labels, value in rows:
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
            family.add_metric(list(labels.values()), value)
        yield from families.values()

    def describe(self) -> list[Any]:
        return []  # computed at scrape time: nothing to check at registration


class Endpoint:
    """The HTTP endpoint of one process, and the collectors it registered."""

    def __init__(self, port: int, addr: str = "0.0.0.0") -> None:
        self.port = port
        self.addr = addr
        self._collectors: list[Collector] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def add(self, collector: Collector) -> None:
        REGISTRY.register(collector)
        self._collectors.append(collector)

    def start(self) -> None:
        if self.port:
            self._server, self._thread = start_http_server(self.port, addr=self.addr)
            logger.info("metrics on http://%s:%d/metrics", self.addr, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for collector in self._collectors:
            REGISTRY.unregister(collector)
        self._collectors.clear()
