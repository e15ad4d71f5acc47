"""The small Redis protocols around jobs, each a key or two with a rule:

* child claims: U<i> of a grid is upscaled once; a second click reuses it;
* the message map: which job a Discord message shows (a waiting line has no
  buttons to read it from), for ❌ and ✉️;
* the delivered marker: a job's result is posted once, whoever retries it;
* sweep claims: one live worker takes each recovery or expiry of a job;
* Discord's limits across workers: a route Discord asked to hold (a 429) is
  held by every worker, and refused requests are counted in Discord's own
  10-minute window, so N workers behave as one bot.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from shared import keys
from shared.connection import redis_errors
from shared.job import JobRecord, JobState
from shared.messages import message_link
from shared.settings import RECORD_TTL_S

logger = logging.getLogger(__name__)

# A claim on "U<i> of this job" is short-lived until its job is queued, so a
# click whose bot died half way does not block that button for long.
CLAIM_TTL_S = 60
SWEEP_CLAIM_TTL_S = 3600
INVALID_WINDOW_S = 600  # Discord counts invalid requests per 10 minutes


@dataclass
class Earlier:
    """The upscale an earlier click made of the same image."""

    record: JobRecord | None  # None while that click is still queueing it


def _reusable(earlier: JobRecord) -> bool:
    """An earlier upscale is worth pointing to while it is on its way or once it was posted;
    one that failed, was cancelled or left nothing to link to is made again."""
    if not earlier.finished:
        return True
    return earlier.state == JobState.DONE and message_link(earlier.reply) is not None


@redis_errors
class Claims:
    def __init__(self, conn: redis.Redis, load: Callable[[str], JobRecord | None]) -> None:
        self._redis = conn
        self._load = load  # a job record by id, or None when unknown

    # -- child claims ---------------------------------------------------------
    def reserve_child(self, parent_id: str, action: str, index: int, job_id: str) -> Earlier | None:
        """Claim "<action> <index> of this parent" for `job_id` (None), or return the
        earlier job to reuse. SET NX makes two fast clicks produce one job, not two."""
        key = keys.child(parent_id, action, index)
        while True:
            if self._redis.set(key, job_id, nx=True, ex=CLAIM_TTL_S):
                return None
            earlier_id = self._redis.get(key)
            if earlier_id is None:
                continue  # expired between the two calls: claim again
            earlier = self._load(earlier_id.decode())
            if earlier is None:
                # No record yet: another click is between claiming and queueing
                # (its claim is still short-lived), or the record expired long ago.
                ttl = self._redis.ttl(key)
                if ttl == -2:
                    continue  # gone meanwhile: claim again
                if ttl <= CLAIM_TTL_S:
                    return Earlier(record=None)
            elif _reusable(earlier):
                return Earlier(record=earlier)
            # Take the key over from the failed or expired job, unless another click just did.
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    if pipe.get(key) != earlier_id:
                        continue
                    pipe.multi()
                    pipe.set(key, job_id, ex=CLAIM_TTL_S)
                    pipe.execute()
                    return None
                except redis.WatchError:
                    continue

    def keep_child(self, parent_id: str, action: str, index: int, job_id: str) -> None:
        """The claimed job is queued: its claim now lives as long as job records do."""
        self._settle(keys.child(parent_id, action, index), job_id, keep=True)

    def release_child(self, parent_id: str, action: str, index: int, job_id: str) -> None:
        """Give the claim back when its job could not be queued, so the next click may try."""
        self._settle(keys.child(parent_id, action, index), job_id, keep=False)

    def _settle(self, key: str, job_id: str, *, keep: bool) -> None:
        """Extend (keep) or delete the claim, only if it is still `job_id`'s."""
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) != job_id.encode():
                    return  # another click's claim now: theirs to keep
                pipe.multi()
                if keep:
                    pipe.expire(key, RECORD_TTL_S)
                else:
                    pipe.delete(key)
                pipe.execute()
            except redis.WatchError:
                return  # changed under us: another click's claim now

    # -- the message map --------------------------------------------------------
    def remember_message(self, message_id: int, job_id: str) -> None:
        self._redis.set(keys.message(message_id), job_id, ex=RECORD_TTL_S)

    def job_for_message(self, message_id: int) -> str | None:
        raw = self._redis.get(keys.message(message_id))
        return raw.decode() if raw is not None else None

    # -- the delivered marker ---------------------------------------------------
    def delivered(self, job_id: str) -> tuple[int, str] | None:
        """(message id, jump url) once the job's result was posted."""
        raw = self._redis.get(keys.delivered(job_id))
        if raw is None:
            return None
        marker = json.loads(raw)
        return int(marker["message_id"]), str(marker["message_url"])

    def mark_delivered(self, job_id: str, message_id: int, url: str) -> bool:
        """Record the post; False when another worker's marker was first (it stays the answer)."""
        marker = json.dumps({"message_id": message_id, "message_url": url})
        return bool(self._redis.set(keys.delivered(job_id), marker, nx=True, ex=RECORD_TTL_S))

    # -- sweep claims -------------------------------------------------------------
    def claim_sweep(self, kind: str, job_id: str, attempt: int | None = None, ttl_s: float = SWEEP_CLAIM_TTL_S) -> bool:
        """True for the one worker that takes this recovery ("recover"), expiry ("expire")
        or round of waiting-line updates ("positions")."""
        return bool(self._redis.set(keys.sweep(kind, job_id, attempt), "1", nx=True, px=max(1, int(ttl_s * 1000))))

    # -- what a waiting line shows ------------------------------------------------------
    def shown(self, job_id: str) -> str | None:
        raw = self._redis.get(keys.shown(job_id))
        return raw.decode() if raw is not None else None

    def note_shown(self, job_id: str, text: str) -> None:
        self._redis.set(keys.shown(job_id), text, ex=SWEEP_CLAIM_TTL_S * 24)

    # -- Discord's limits across workers ------------------------------------------
    def hold_route(self, route: str, seconds: float) -> None:
        """Every worker holds `route` for `seconds` (Discord's retry_after)."""
        if seconds > 0:
            self._redis.set(keys.rate_limit(route), "1", px=max(1, int(seconds * 1000)))

    def route_held_for(self, route: str) -> float:
        """Seconds left on a hold of `route` by any worker (0 when none)."""
        ms = self._redis.pttl(keys.rate_limit(route))
        return ms / 1000 if ms and ms > 0 else 0.0

    def count_invalid(self) -> int:
        """One more 401/403/429 answer in this window; the window's count so far."""
        key = keys.invalid_requests(int(time.time() // INVALID_WINDOW_S))
        with self._redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, INVALID_WINDOW_S * 2)
            count, _ = pipe.execute()
        return int(count)

    def invalid_so_far(self) -> int:
        raw = self._redis.get(keys.invalid_requests(int(time.time() // INVALID_WINDOW_S)))
        return int(raw) if raw else 0
