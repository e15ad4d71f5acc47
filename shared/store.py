"""Jobs in Redis: the records and their life (submit, run, finish, re-queue,
cancel), and waiting for one to end. The store owns every Redis protocol; its
parts are `images` (results and inputs), `claims` (the small protocols) and
`dispatch` (queues and workers, the only user of RQ).

Synchronous (redis-py and RQ are): the bot calls it through its async face
(bot/store.py), never on its event loop. Redis failures surface as
QueueUnavailable (shared/connection.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis

from shared import keys, messages
from shared.claims import Claims
from shared.connection import connect, redis_errors
from shared.dispatch import Dispatch
from shared.errors import JobNotFound, QueueFull, QueueUnavailable, Superseded
from shared.images import ImageStore
from shared.job import FINISHED, JobRecord, JobState
from shared.leases import Leases
from shared.models import ModelSpec, check_servable
from shared.moderation import Moderation
from shared.policy import QueuePolicy
from shared.redelivery import Redeliveries
from shared.scheduler import user_of
from shared.settings import RECORD_TTL_S, Settings
from shared.usage import UsageBook, eta_s

logger = logging.getLogger(__name__)

RECENT_KEEP = 200


@dataclass(frozen=True)
class WaitingStatus:
    position: int | None
    eta_s: float | None
    running: int | None  # the user's running jobs, when they are at their cap ("Job queued")
    paused: bool


MAX_ATTEMPTS = 3  # a job whose worker died is re-queued this many times at most
DONE_SIGNAL_TTL_S = 3600
CANCEL_FLAG_TTL_S = 24 * 3600

# Admit a job in one step: count the user's waiting jobs (dropping finished
# ones from their set), refuse at the limit, else store the record, add it to
# the user's set and the waiting set, and note the user's running cap for the
# pick. Counting and adding separately would let concurrent submits pass the
# limit together.
ADMIT = """
local limit = tonumber(ARGV[1])
if limit >= 0 then
  local waiting = 0
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local raw = redis.call('GET', ARGV[5] .. id)
    local live, queued = false, false
    if raw then
      local ok, rec = pcall(cjson.decode, raw)
      live = ok and type(rec) == 'table' and not FINISHED[rec['state']]
      queued = live and rec['state'] == 'queued'
    end
    if not live then redis.call('SREM', KEYS[1], id) end
    if queued then waiting = waiting + 1 end
  end
  if waiting >= limit then return waiting end
  redis.call('SADD', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[9], ARGV[8])
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('LPUSH', KEYS[4], ARGV[2])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[7]) - 1)
return -1
"""
ADMIT = "local FINISHED = {" + ", ".join(f"['{s}'] = true" for s in sorted(FINISHED)) + "}\n" + ADMIT


@redis_errors
class JobStore:
    def __init__(self, settings: Settings, conn: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = conn or connect(settings.redis_url)  # for the store's parts, and tests; nobody else
        self.leases = Leases(self.redis, settings.worker_heartbeat_s)
        self.policy = QueuePolicy(self.redis, settings)
        self.usage = UsageBook(self.redis)
        self.dispatch = Dispatch(self.redis, settings, self.leases)
        self.images = ImageStore(self.redis, settings)
        self.claims = Claims(self.redis, self.find)
        self.redeliveries = Redeliveries(self.redis)
        self.moderation = Moderation(self.redis, settings)  # filters, bans, image policy (shared/moderation.py)
        self._admit = self.redis.register_script(ADMIT)

    def ping(self) -> None:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise QueueUnavailable() from exc

    # -- records -------------------------------------------------------------
    def save(self, job: JobRecord) -> None:
        self.redis.set(keys.job(job.id), job.to_json(), ex=RECORD_TTL_S)

    def get(self, job_id: str) -> JobRecord:
        job = self.find(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def find(self, job_id: str) -> JobRecord | None:
        raw = self.redis.get(keys.job(job_id))
        return JobRecord.from_json(raw) if raw is not None else None

    def update(
        self,
        job_id: str,
        *,
        attempt: int | None = None,
        also: Callable[[redis.client.Pipeline, JobRecord], None] | None = None,
        **changes: Any,
    ) -> JobRecord:
        """Read-modify-write under WATCH, so concurrent writers don't clobber.
        With `attempt`, a worker's write: refused (Superseded) unless that attempt
        is still the job's current one. `also(pipe, job)` adds writes that must land
        in the same transaction (the images of a result, the end of a job)."""
        key = keys.job(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise JobNotFound(job_id)
                    job = JobRecord.from_json(raw)
                    if attempt is not None and job.attempts != attempt:
                        raise Superseded(job_id, attempt, job.attempts)
                    job = replace(job, **changes)
                    pipe.multi()
                    pipe.set(key, job.to_json(), ex=RECORD_TTL_S)
                    if also is not None:
                        also(pipe, job)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.publish(job_id, "update")
        return job

    def update_reply(self, job_id: str, *, attempt: int | None = None, **changes: Any) -> JobRecord:
        job = self.get(job_id)
        return self.update(job_id, attempt=attempt, reply=replace(job.reply, **changes))

    def publish(self, job_id: str, event: str) -> None:
        self.redis.publish(keys.events(job_id), event)

    def recent(self, count: int = 10) -> list[JobRecord]:
        ids = [raw.decode() for raw in self.redis.lrange(keys.RECENT, 0, count - 1)]
        raws = self.redis.mget([keys.job(i) for i in ids]) if ids else []
        return [JobRecord.from_json(raw) for raw in raws if raw is not None]

    # -- submitting ------------------------------------------------------------
    def check(self, job: JobRecord) -> ModelSpec | None:
        """What submit refuses before anything is stored: no live worker holds the
        job's model (NoWorkerAlive), or that model cannot serve it (Unsupported,
        PromptTooLong)."""
        try:
            spec = self.dispatch.require(job.model)
            counter = self.dispatch.token_counter(spec) if spec is not None else None
        except QueueUnavailable as exc:
            raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc
        if spec is not None:
            check_servable(job, spec, counter)
        return spec

    def submit(self, job: JobRecord, *, check: bool = True, role_ids: frozenset[int] = frozenset()) -> JobRecord:
        """Check, admit within the user's limits (QueueFull), store and enqueue.
        `role_ids`: the user's roles in the server, for limits set per role.
        (No ping first: the first Redis call fails as clearly, one round trip sooner.)"""
        if check:
            self.check(job)
        limits = self.policy.limits_for(job.user_id, role_ids)
        try:
            refused = self._admit(
                keys=[
                    keys.user_active(job.user_id) if job.user_id is not None else keys.user_active(0),
                    keys.job(job.id),
                    keys.QUEUED,
                    keys.RECENT,
                    keys.CAPS_RUNNING,
                ],
                args=[
                    limits.queued if job.user_id is not None else -1,
                    job.id,
                    job.to_json(),
                    job.created_at,
                    keys.job(""),
                    RECORD_TTL_S,
                    RECENT_KEEP,
                    limits.running,
                    user_of(job),
                ],
            )
        except redis.RedisError as exc:
            raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc
        if refused >= 0:
            raise QueueFull(int(refused), limits.queued, self.jobs_of(job.user_id))
        try:
            self.dispatch.enqueue(job)
        except redis.RedisError as exc:
            # Stored but not queued: end it, so it neither waits forever nor holds the user's slot.
            try:
                self.finish(job.id, JobState.FAILED, error=QueueUnavailable.NOT_QUEUED)
            except QueueUnavailable:
                logger.warning("job %s is stored but could not be queued or failed", job.id)
            raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc
        return job

    def position(self, job_id: str) -> int | None:
        job = self.find(job_id)
        return self.dispatch.position(job) if job is not None and job.state == JobState.QUEUED else None

    def jobs_of(self, user_id: int | None) -> list[JobRecord]:
        """A user's jobs that are waiting or running, oldest first."""
        if user_id is None:
            return []
        ids = [m.decode() for m in self.redis.smembers(keys.user_active(user_id))]
        raws = self.redis.mget([keys.job(i) for i in ids]) if ids else []
        jobs = [JobRecord.from_json(raw) for raw in raws if raw is not None]
        return sorted((j for j in jobs if not j.finished), key=lambda j: j.created_at)

    def waiting_status(self, job: JobRecord, *, enqueued: bool = True) -> WaitingStatus:
        """What the waiting line says: the place (where it would be, before it is
        enqueued), the ETA, whether the user's running cap holds it, a paused lane."""
        position = self.dispatch.position(job) if enqueued else self.dispatch.next_position(job)
        limits = self.policy.limits_for(job.user_id)
        running = int(self.redis.scard(keys.user_busy(user_of(job)))) if job.user_id else 0
        return WaitingStatus(
            position=position,
            eta_s=self.eta(job, position),
            running=running if running >= limits.running else None,
            paused=self.policy.is_paused(job.lane),
        )

    def eta(self, job: JobRecord, position: int | None) -> float | None:
        """Seconds until a waiting job starts, from recent durations of its model and size."""
        if position is None:
            return None
        spec = self.dispatch.spec(job.model)
        width, height = spec.image_size(job.params.aspect) if spec else (None, None)
        duration = self.usage.typical_duration(job.model, width, height)
        return eta_s(position, duration, len(self.dispatch.live_workers(job.model)))

    # -- a job's life ----------------------------------------------------------
    def mark_running(self, job_id: str, worker: str, *, attempt: int | None = None, **changes: Any) -> JobRecord:
        job = self.update(
            job_id,
            attempt=attempt,
            state=JobState.RUNNING,
            worker=worker,
            started_at=time.time(),
            error=None,
            **changes,
        )
        with self.redis.pipeline() as pipe:
            pipe.zrem(keys.QUEUED, job_id)
            pipe.sadd(keys.RUNNING, job_id)
            pipe.execute()
        return job

    def store_result(
        self, job_id: str, attempt: int, pngs: list[bytes], grid_png: bytes | None, **changes: Any
    ) -> JobRecord:
        """The images and the record's result fields in one transaction, fenced by `attempt`."""
        return self.update(
            job_id, attempt=attempt, also=lambda pipe, _job: self.images.write(pipe, job_id, pngs, grid_png), **changes
        )

    def finish(self, job_id: str, state: JobState, *, attempt: int | None = None, **changes: Any) -> JobRecord:
        """Record the end of a job (with its done signal and its place in the
        waiting, running and user sets, in one transaction: nobody sees a finished
        job still counted somewhere), drop its lease, and wake every waiter."""

        def ended(pipe: redis.client.Pipeline, job: JobRecord) -> None:
            pipe.zrem(keys.QUEUED, job_id)
            pipe.srem(keys.RUNNING, job_id)
            pipe.srem(keys.user_busy(user_of(job)), job_id)
            if job.user_id is not None:
                pipe.srem(keys.user_active(job.user_id), job_id)
            pipe.rpush(keys.done_signal(job_id), state.value)
            pipe.expire(keys.done_signal(job_id), DONE_SIGNAL_TTL_S)

        job = self.update(job_id, attempt=attempt, also=ended, state=state, finished_at=time.time(), **changes)
        self.leases.release(job_id)
        self.usage.record(job)
        self.publish(job_id, "done")
        return job

    def requeue(self, job: JobRecord, reason: str) -> JobRecord:
        """Put a job whose worker died (or lost its lease) back at the front of its
        queue, as a new attempt: the old attempt's writes are refused from now on."""
        job = self.update(job.id, state=JobState.QUEUED, worker=None, attempts=job.attempts + 1, progress=0.0)
        self.leases.release(job.id)
        with self.redis.pipeline() as pipe:
            pipe.srem(keys.RUNNING, job.id)
            pipe.srem(keys.user_busy(user_of(job)), job.id)
            pipe.zadd(keys.QUEUED, {job.id: time.time()})
            pipe.execute()
        logger.warning("re-queueing job %s (attempt %d): %s", job.id, job.attempts + 1, reason)
        self.dispatch.enqueue(job, at_front=True)
        return job

    def withdraw(self, job_id: str, state: JobState, error: str) -> JobRecord | None:
        """End a job that is still waiting (cancel, expiry, no worker): off its queue,
        finished with `state` and `error`, returned. None if it is no longer waiting."""
        job = self.get(job_id)
        if job.state != JobState.QUEUED:
            return None
        self.dispatch.withdraw(job)
        return self.finish(job_id, state, error=error)

    def cancel(self, job_id: str, canceller_id: int | None = None, reason: str | None = None) -> JobRecord | None:
        """Cancel a job. A waiting one is taken off the queue and finished here
        (returned); a running one stops at its worker's next sampling step, and
        the worker tells the user (None)."""
        # The flag first: a worker that picks the job up meanwhile sees it and stops.
        self.request_cancel(job_id)
        if reason is None:
            reason = messages.cancel_reason(canceller_id) if canceller_id else messages.CANCELLED_BEFORE_START
        return self.withdraw(job_id, JobState.CANCELLED, reason)

    def request_cancel(self, job_id: str) -> None:
        self.redis.set(keys.cancel(job_id), "1", ex=CANCEL_FLAG_TTL_S)
        self.publish(job_id, "cancel")

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(keys.cancel(job_id)))

    # -- what the sweeps read ----------------------------------------------------
    def running_ids(self) -> list[str]:
        return [m.decode() for m in self.redis.smembers(keys.RUNNING)]

    def queued_before(self, cutoff: float) -> list[str]:
        return [m.decode() for m in self.redis.zrangebyscore(keys.QUEUED, "-inf", cutoff)]

    def forget(self, job_id: str) -> None:
        """Drop a job id from the running and waiting sets (its record is gone or settled)."""
        with self.redis.pipeline() as pipe:
            pipe.srem(keys.RUNNING, job_id)
            pipe.zrem(keys.QUEUED, job_id)
            pipe.execute()

    # -- waiting -----------------------------------------------------------------
    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_update: Callable[[JobRecord], None] | None = None,
    ) -> JobRecord:
        """Block until the job finishes (or `timeout` seconds pass), calling
        `on_update` on every progress event. Event-driven (pub/sub), with a
        periodic re-read so a missed event cannot hang the waiter."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(keys.events(job_id))
        try:
            while True:
                job = self.get(job_id)
                if on_update:
                    on_update(job)
                if job.finished:
                    return job
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return job
                pubsub.get_message(timeout=min(1.0, remaining) if remaining is not None else 1.0)
        finally:
            pubsub.close()
