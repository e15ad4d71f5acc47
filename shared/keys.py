"""The Redis key layout, in one place. Everything Daydream stores is under
`daydream:` so an admin can see (and flush) it at a glance."""

from __future__ import annotations

PREFIX = "daydream"
JOB_FUNC = "worker.jobs.run_job"  # enqueued by dotted name: the bot never imports torch


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def image(job_id: str, index: int) -> str:
    return f"{PREFIX}:image:{job_id}:{index}"


def grid(job_id: str) -> str:
    return f"{PREFIX}:grid:{job_id}"


def done_signal(job_id: str) -> str:
    """A list the worker pushes to when the job ends; waiters BLPOP it."""
    return f"{PREFIX}:done:{job_id}"


def cancel(job_id: str) -> str:
    return f"{PREFIX}:cancel:{job_id}"


def delivery_lock(job_id: str) -> str:
    return f"{PREFIX}:delivery:{job_id}"


def child(parent_id: str, action: str, index: int) -> str:
    """The job that a button click on a parent made (so a second click reuses it)."""
    return f"{PREFIX}:child:{parent_id}:{action}:{index}"


def worker_heartbeat(name: str) -> str:
    return f"{PREFIX}:worker:{name}"


WORKERS = f"{PREFIX}:workers"  # set of worker names; each has a heartbeat key with a TTL
RECENT = f"{PREFIX}:recent"  # list of recent job ids, newest first
QUEUED = f"{PREFIX}:queued"  # sorted set: waiting job ids by enqueue time (the expiry sweep reads it)
RUNNING = f"{PREFIX}:running"  # set: job ids a worker has started (the recovery sweep reads it)
