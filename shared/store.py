"""Jobs in Redis: records, the enqueue call, stored images, progress events,
worker liveness. Synchronous (redis-py and RQ are): the bot calls it through
`asyncio.to_thread`, never on its event loop."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from shared import keys
from shared.errors import JobNotFound, QueueFull, QueueUnavailable
from shared.job import JobRecord, JobState
from shared.settings import RECORD_TTL_S, Settings

logger = logging.getLogger(__name__)

RECENT_KEEP = 200
MAX_ATTEMPTS = 3  # a job whose worker died is re-queued this many times at most


def events_channel(job_id: str) -> str:
    return f"{keys.PREFIX}:events:{job_id}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30, health_check_interval=30)


class JobStore:
    def __init__(self, settings: Settings, conn: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = conn or connect(settings.redis_url)
        self.queue = Queue(settings.queue_name, connection=self.redis, serializer=JSONSerializer)

    # -- connection ----------------------------------------------------
    def ping(self) -> None:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise QueueUnavailable(
                "Daydream's queue (Redis) cannot be reached right now, so your job was not queued. "
                "Try again in a minute; if it persists, tell a server admin."
            ) from exc

    # -- records -------------------------------------------------------
    def save(self, record: JobRecord) -> None:
        self.redis.set(keys.job(record.id), record.to_json(), ex=RECORD_TTL_S)

    def get(self, job_id: str) -> JobRecord:
        raw = self.redis.get(keys.job(job_id))
        if raw is None:
            raise JobNotFound(f"No job `{job_id}` is known (it never existed or has expired).")
        return JobRecord.from_json(raw)

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        """Read-modify-write under WATCH, so concurrent writers don't clobber."""
        key = keys.job(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise JobNotFound(f"No job `{job_id}` is known (it never existed or has expired).")
                    record = replace(JobRecord.from_json(raw), **changes)
                    pipe.multi()
                    pipe.set(key, record.to_json(), ex=RECORD_TTL_S)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.publish(job_id, "update")
        return record

    def update_reply(self, job_id: str, **changes: Any) -> JobRecord:
        record = self.get(job_id)
        return self.update(job_id, reply=replace(record.reply, **changes))

    def publish(self, job_id: str, event: str) -> None:
        self.redis.publish(events_channel(job_id), event)

    # -- the enqueue call ----------------------------------------------
    def active_jobs_of(self, user_id: int) -> int:
        key = f"{keys.PREFIX}:user:{user_id}:active"
        active = [m.decode() for m in self.redis.smembers(key)]
        count = 0
        for job_id in active:
            raw = self.redis.get(keys.job(job_id))
            if raw is None or JobRecord.from_json(raw).state.finished:
                self.redis.srem(key, job_id)
            else:
                count += 1
        return count

    def submit(self, record: JobRecord) -> JobRecord:
        """Store the record and put it on the queue. Raises QueueFull when the
        user already has the maximum number of jobs waiting or running."""
        self.ping()
        try:
            if record.user_id is not None:
                active = self.active_jobs_of(record.user_id)
                if active >= self.settings.max_queued_per_user:
                    raise QueueFull(
                        f"You already have {active} jobs waiting or running (the limit is "
                        f"{self.settings.max_queued_per_user}). Wait for one to finish, then try again."
                    )
            self.save(record)
            self._enqueue(record, at_front=False)
            if record.user_id is not None:
                self.redis.sadd(f"{keys.PREFIX}:user:{record.user_id}:active", record.id)
            self.redis.zadd(keys.QUEUED, {record.id: record.created_at})
            self.redis.lpush(keys.RECENT, record.id)
            self.redis.ltrim(keys.RECENT, 0, RECENT_KEEP - 1)
        except redis.RedisError as exc:
            raise QueueUnavailable("Daydream's queue (Redis) failed while queueing your job. Try again.") from exc
        return record

    def _enqueue(self, record: JobRecord, at_front: bool) -> None:
        self.queue.enqueue_call(
            keys.JOB_FUNC,
            args=[record.id, record.attempts],
            job_id=f"{record.id}-{record.attempts}",
            timeout=self.settings.job_timeout_s,
            ttl=self.settings.queued_job_ttl_s,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            at_front=at_front,
            description=f"{record.kind} {record.prompt[:60]}",
        )

    def requeue(self, record: JobRecord, reason: str) -> JobRecord:
        """Put a job whose worker died back at the front of the queue."""
        record = self.update(record.id, state=JobState.QUEUED, worker=None, attempts=record.attempts + 1, progress=0.0)
        self.redis.srem(keys.RUNNING, record.id)
        self.redis.zadd(keys.QUEUED, {record.id: time.time()})
        logger.warning("re-queueing job %s (attempt %d): %s", record.id, record.attempts + 1, reason)
        self._enqueue(record, at_front=True)
        return record

    def mark_running(self, job_id: str, worker: str, **changes: Any) -> JobRecord:
        self.redis.zrem(keys.QUEUED, job_id)
        self.redis.sadd(keys.RUNNING, job_id)
        return self.update(job_id, state=JobState.RUNNING, worker=worker, started_at=time.time(), error=None, **changes)

    def finish(self, job_id: str, state: JobState, **changes: Any) -> JobRecord:
        """Record the end of a job and wake every waiter."""
        record = self.update(job_id, state=state, finished_at=time.time(), **changes)
        with self.redis.pipeline() as pipe:
            pipe.zrem(keys.QUEUED, job_id)
            pipe.srem(keys.RUNNING, job_id)
            if record.user_id is not None:
                pipe.srem(f"{keys.PREFIX}:user:{record.user_id}:active", job_id)
            pipe.rpush(keys.done_signal(job_id), state.value)
            pipe.expire(keys.done_signal(job_id), 3600)
            pipe.execute()
        self.publish(job_id, "done")
        return record

    def withdraw(self, job_id: str) -> None:
        """Take a waiting job off the RQ queue (cancel, expiry)."""
        for rq_id in self.queue.get_job_ids():
            if rq_id.split("-")[0] == job_id:
                self.queue.remove(rq_id)

    def running_ids(self) -> list[str]:
        return [m.decode() for m in self.redis.smembers(keys.RUNNING)]

    def queued_before(self, cutoff: float) -> list[str]:
        return [m.decode() for m in self.redis.zrangebyscore(keys.QUEUED, "-inf", cutoff)]

    # -- queue position ------------------------------------------------
    def position(self, job_id: str) -> int | None:
        """1-based place in the queue, or None when the job is not waiting."""
        ids = self.queue.get_job_ids()
        for n, rq_id in enumerate(ids, start=1):
            if rq_id.split("-")[0] == job_id:
                return n
        return None

    def queue_depth(self) -> int:
        return self.queue.count

    # -- images --------------------------------------------------------
    def put_images(self, job_id: str, images: list[bytes], grid: bytes | None) -> None:
        ttl = self.settings.result_ttl_s
        with self.redis.pipeline() as pipe:
            for i, data in enumerate(images, start=1):
                pipe.set(keys.image(job_id, i), data, ex=ttl)
            if grid is not None:
                pipe.set(keys.grid(job_id), grid, ex=ttl)
            pipe.execute()

    def get_image(self, job_id: str, index: int) -> bytes | None:
        return self.redis.get(keys.image(job_id, index))

    def get_grid(self, job_id: str) -> bytes | None:
        return self.redis.get(keys.grid(job_id))

    # -- cancellation --------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        self.redis.set(keys.cancel(job_id), "1", ex=24 * 3600)
        self.publish(job_id, "cancel")

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(keys.cancel(job_id)))

    # -- workers -------------------------------------------------------
    def heartbeat(self, name: str, info: dict[str, Any]) -> None:
        ttl = max(3 * self.settings.worker_heartbeat_s, 3)
        with self.redis.pipeline() as pipe:
            pipe.sadd(keys.WORKERS, name)
            pipe.set(keys.worker_heartbeat(name), json.dumps(info), ex=ttl)
            pipe.execute()

    def worker_gone(self, name: str) -> None:
        self.redis.delete(keys.worker_heartbeat(name))
        self.redis.srem(keys.WORKERS, name)

    def live_workers(self) -> list[dict[str, Any]]:
        out = []
        for raw_name in sorted(self.redis.smembers(keys.WORKERS)):
            name = raw_name.decode()
            raw = self.redis.get(keys.worker_heartbeat(name))
            if raw is None:
                continue  # heartbeat expired: dead or stopped
            out.append(json.loads(raw))
        return out

    def recent(self, count: int = 10) -> list[JobRecord]:
        out = []
        for raw_id in self.redis.lrange(keys.RECENT, 0, count - 1):
            raw = self.redis.get(keys.job(raw_id.decode()))
            if raw is not None:
                out.append(JobRecord.from_json(raw))
        return out

    # -- waiting -------------------------------------------------------
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
        pubsub.subscribe(events_channel(job_id))
        try:
            while True:
                record = self.get(job_id)
                if on_update:
                    on_update(record)
                if record.state.finished:
                    return record
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return record
                pubsub.get_message(timeout=min(1.0, remaining) if remaining is not None else 1.0)
        finally:
            pubsub.close()
