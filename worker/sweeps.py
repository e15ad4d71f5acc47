"""Housekeeping every live worker runs on its heartbeat: re-queue jobs whose
lease lapsed (their worker died, froze or lost Redis, whether or not it had
marked them running; long before RQ's 10-minute maintenance would notice), and
end jobs that waited past their queue TTL with a message to their user. One
live worker takes each job's recovery or expiry (a sweep claim), not all of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared import messages
from shared.errors import DeliveryFailed
from shared.job import JobRecord, JobState
from shared.store import MAX_ATTEMPTS, JobStore

POSITIONS_EVERY_S = 3.0  # one round of waiting-line edits per this many seconds, by one worker
MAX_LINE_EDITS = 10  # per round: a long queue is brought up to date over a few rounds

logger = logging.getLogger(__name__)

TellFailure = Callable[[JobRecord, str], None]
Post = Callable[[JobRecord, bytes, str, str, list], object]  # Delivery.result without an attempt


def recover_lapsed(store: JobStore, tell_failure: TellFailure | None = None) -> list[str]:
    """Jobs whose lease lapsed: back on their queue as a new attempt, or failed
    clearly after MAX_ATTEMPTS holders stopped on them."""
    recovered = []
    for lease in store.leases.lapsed():
        job = store.find(lease.job_id)
        if job is None or job.finished or job.attempts != lease.attempt:
            store.leases.release(lease.job_id)  # settled, or already handed on: a stale lease
            continue
        if _recover(store, job, f"worker {lease.worker} stopped renewing its lease", tell_failure):
            recovered.append(job.id)
    return recovered


def recover_orphans(store: JobStore, tell_failure: TellFailure | None = None) -> list[str]:
    """Jobs marked running, without a lease, whose worker's heartbeat has expired:
    started by a worker of the version before leases."""
    live = {w["name"] for w in store.dispatch.live_workers()}
    recovered = []
    for job_id in store.running_ids():
        job = store.find(job_id)
        if job is None:
            store.forget(job_id)
            continue
        if job.state != JobState.RUNNING or job.worker in live or store.leases.get(job_id) is not None:
            continue
        if _recover(store, job, f"worker {job.worker} stopped mid-job", tell_failure):
            recovered.append(job_id)
    return recovered


def _recover(store: JobStore, job: JobRecord, reason: str, tell_failure: TellFailure | None) -> bool:
    if not store.claims.claim_sweep("recover", job.id, job.attempts):
        return False  # another live worker took this one
    if job.attempts + 1 >= MAX_ATTEMPTS:
        text = messages.gave_up(job.attempts + 1)
        store.finish(job.id, JobState.FAILED, error=text)
        if tell_failure is not None:
            tell_failure(job, text)
    else:
        store.requeue(job, reason=reason)
    return True


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


def update_waiting_lines(store: JobStore, edit: Callable[[JobRecord, str], bool]) -> int:
    """Bring the waiting lines whose place or ETA moved up to date: one live worker
    per round (a sweep claim), oldest jobs first, at most MAX_LINE_EDITS edits."""
    if not store.claims.claim_sweep("positions", "all", ttl_s=POSITIONS_EVERY_S):
        return 0
    edits = 0
    for job_id in store.queued_before(time.time()):
        if edits >= MAX_LINE_EDITS:
            break
        job = store.find(job_id)
        if job is None or job.state != JobState.QUEUED or not job.reply.interaction_token:
            continue
        status = store.waiting_status(job)
        if status.position is None:
            continue
        line = messages.waiting(job, status.position, status.eta_s, running=status.running, paused=status.paused)
        if line == store.claims.shown(job.id):
            continue
        if edit(job, line):
            store.claims.note_shown(job.id, line)
            edits += 1
    return edits


def redeliver_due(store: JobStore, post: Post, now: float | None = None) -> list[str]:
    """Results Discord failed to take earlier (shared/redelivery.py), tried again
    when due, by one live worker each. The delivered marker keeps a post that
    went through meanwhile from being made twice."""
    delivered = []
    for job_id in store.redeliveries.due(now):
        pending = store.redeliveries.get(job_id)
        job = store.find(job_id)
        if pending is None or job is None:
            store.redeliveries.drop(job_id)
            continue
        if not store.claims.claim_sweep("redeliver", job_id, pending.tries):
            continue
        try:
            post(job, pending.data, pending.filename, pending.content, pending.components)
        except DeliveryFailed as exc:
            wait = None if exc.permanent else store.redeliveries.failed_again(pending)
            if wait is None:
                store.redeliveries.drop(job_id)
                store.update(job_id, undelivered=str(exc))
                logger.warning("job %s: gave up posting its result after %d tries: %s", job_id, pending.tries + 1, exc)
            else:
                logger.info("job %s: its result still could not be posted (%s); next try in %.0f s", job_id, exc, wait)
            continue
        store.redeliveries.drop(job_id)
        store.update(job_id, undelivered=None)
        logger.info("job %s: its result was posted on try %d", job_id, pending.tries + 1)
        delivered.append(job_id)
    return delivered
