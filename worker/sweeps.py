"""Housekeeping every live worker runs on its heartbeat: re-queue jobs whose
worker died (long before RQ's 10-minute maintenance would notice), and end
jobs that waited past their queue TTL with a message to their user. One live
worker takes each job's recovery or expiry (a sweep claim), not all of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared import messages
from shared.job import JobRecord, JobState
from shared.store import MAX_ATTEMPTS, JobStore

logger = logging.getLogger(__name__)

TellFailure = Callable[[JobRecord, str], None]


def recover_orphans(store: JobStore, tell_failure: TellFailure | None = None) -> list[str]:
    """Jobs marked running whose worker's heartbeat has expired."""
    live = {w["name"] for w in store.dispatch.live_workers()}
    recovered = []
    for job_id in store.running_ids():
        job = store.find(job_id)
        if job is None:
            store.forget(job_id)
            continue
        if job.state != JobState.RUNNING or job.worker in live:
            continue
        if not store.claims.claim_sweep("recover", job_id, job.attempts):
            continue
        if job.attempts + 1 >= MAX_ATTEMPTS:
            text = messages.gave_up(job.attempts + 1)
            store.finish(job_id, JobState.FAILED, error=text)
            if tell_failure is not None:
                tell_failure(job, text)
        else:
            store.requeue(job, reason=f"worker {job.worker} stopped mid-job")
        recovered.append(job_id)
    return recovered


def expire_stale(store: JobStore, tell_failure: TellFailure | None = None) -> list[str]:
    """Jobs still waiting after the queue TTL: dropped, with a message."""
    cutoff = time.time() - store.settings.queued_job_ttl_s
    expired = []
    for job_id in store.queued_before(cutoff):
        job = store.find(job_id)
        if job is None or job.state != JobState.QUEUED:
            store.forget(job_id)
            continue
        if not store.claims.claim_sweep("expire", job_id):
            continue
        text = messages.waited_too_long(store.settings.queued_job_ttl_s // 60)
        ended = store.withdraw(job_id, JobState.EXPIRED, text)
        if ended is not None:
            if tell_failure is not None:
                tell_failure(ended, text)
            expired.append(job_id)
    return expired
