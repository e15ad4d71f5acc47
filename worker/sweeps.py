"""Housekeeping every live worker runs on its heartbeat: re-queue jobs whose
worker died (long before RQ's 10-minute maintenance would notice), and end
jobs that waited past their queue TTL with a message to their user."""

from __future__ import annotations

import logging
import time

from shared import keys
from shared.job import JobState
from shared.store import MAX_ATTEMPTS, JobStore

logger = logging.getLogger(__name__)


def recover_orphans(store: JobStore, tell_failure: object | None = None) -> list[str]:
    """Jobs marked running whose worker's heartbeat has expired."""
    live = {w["name"] for w in store.live_workers()}
    recovered = []
    for job_id in store.running_ids():
        try:
            record = store.get(job_id)
        except Exception:
            store.redis.srem(keys.RUNNING, job_id)
            continue
        if record.state != JobState.RUNNING or record.worker in live:
            continue
        # One live worker claims each recovery, not all of them.
        if not store.redis.set(f"{keys.PREFIX}:recover:{job_id}:{record.attempts}", "1", nx=True, ex=3600):
            continue
        if record.attempts + 1 >= MAX_ATTEMPTS:
            text = f"The worker running this job stopped {record.attempts + 1} times; giving up. Try again later."
            store.finish(job_id, JobState.FAILED, error=text)
            if callable(tell_failure):
                tell_failure(record, text)
        else:
            store.requeue(record, reason=f"worker {record.worker} stopped mid-job")
        recovered.append(job_id)
    return recovered


def expire_stale(store: JobStore, tell_failure: object | None = None) -> list[str]:
    """Jobs still waiting after the queue TTL: dropped, with a message."""
    cutoff = time.time() - store.settings.queued_job_ttl_s
    expired = []
    for job_id in store.queued_before(cutoff):
        try:
            record = store.get(job_id)
        except Exception:
            store.redis.zrem(keys.QUEUED, job_id)
            continue
        if record.state != JobState.QUEUED:
            store.redis.zrem(keys.QUEUED, job_id)
            continue
        if not store.redis.set(f"{keys.PREFIX}:expire:{job_id}", "1", nx=True, ex=3600):
            continue
        minutes = store.settings.queued_job_ttl_s // 60
        text = f"This job waited more than {minutes} minutes without a free worker and was dropped. Try again later."
        store.withdraw(job_id)
        store.finish(job_id, JobState.EXPIRED, error=text)
        if callable(tell_failure):
            tell_failure(record, text)
        expired.append(job_id)
    return expired
