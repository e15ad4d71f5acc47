"""The synchronous Redis side of submitting a job from Discord.

Everything here blocks (redis-py, RQ), so the bot only calls it through
`asyncio.to_thread`: a slow Redis must never stall the gateway heartbeat."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from shared.errors import NoWorkerAlive, QueueUnavailable
from shared.job import JobRecord
from shared.store import JobStore

NO_WORKER = (
    "No image worker is running right now, so your request was not queued. "
    "Ask a server admin to start one with `daydream worker`."
)


@contextmanager
def queue_errors() -> Iterator[None]:
    """Turn a Redis failure half way through into the user-facing QueueUnavailable."""
    try:
        yield
    except redis.RedisError as exc:
        raise QueueUnavailable(
            "Daydream's queue (Redis) failed while handling your request, so nothing was queued. "
            "Try again in a minute; if it persists, tell a server admin."
        ) from exc


def check_ready(store: JobStore) -> int:
    """Raise unless a job submitted now would run; return its place in the queue."""
    store.ping()
    return check_workers(store)


def check_workers(store: JobStore) -> int:
    """Raise NoWorkerAlive when nobody would run the job; else its place in the queue.

    The place is read *before* enqueueing (depth + 1, as the job joins at the
    back): the waiting line must be on screen before a worker can start the
    job, or our edit could land after the worker's result and hide it."""
    with queue_errors():
        if not store.live_workers():
            raise NoWorkerAlive(NO_WORKER)
        return store.queue_depth() + 1


def submit(store: JobStore, record: JobRecord) -> None:
    """Store and enqueue; QueueFull when the user is at their limit."""
    with queue_errors():
        store.submit(record)
