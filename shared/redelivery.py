"""Results Discord kept failing to take (5xx, timeouts, a storm of 429s), kept
for another try later: the job is done and its user waits for the post, so a
passing outage at Discord must not be the end of it. A refusal for good (the
channel is gone, the bot may not post there) is not kept: it would fail again.

One hash per waiting post (what to post, and how many tries so far) and one
sorted set of when each is next due; any live worker's heartbeat takes the due
ones (one worker each, by a sweep claim), and the delivered marker makes a
post that did go through earlier a no-op."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from shared import keys
from shared.connection import redis_errors

# Seconds to the next try after each failed one: about 45 minutes in all.
BACKOFF_S = (30, 60, 120, 300, 600, 1200)
KEEP_S = 2 * 3600  # a waiting post's data outlives its last try


@dataclass(frozen=True)
class PendingPost:
    job_id: str
    data: bytes
    filename: str
    content: str
    components: list[dict[str, Any]]
    tries: int  # failed tries so far, the first (in the job) included


@redis_errors
class Redeliveries:
    def __init__(self, conn: redis.Redis) -> None:
        self._redis = conn

    def defer(self, job_id: str, data: bytes, filename: str, content: str, components: list[dict[str, Any]]) -> float:
        """Keep a post for a later try; returns the seconds until it."""
        return self._schedule(
            job_id,
            tries=1,
            fields={"data": data, "filename": filename, "content": content, "components": json.dumps(components)},
        )

    def due(self, now: float | None = None) -> list[str]:
        raw = self._redis.zrangebyscore(keys.REDELIVER, "-inf", now if now is not None else time.time())
        return [r.decode() for r in raw]

    def get(self, job_id: str) -> PendingPost | None:
        raw = self._redis.hgetall(keys.redeliver(job_id))
        if not raw or b"data" not in raw:
            return None
        return PendingPost(
            job_id=job_id,
            data=raw[b"data"],
            filename=raw.get(b"filename", b"result.png").decode(),
            content=raw.get(b"content", b"").decode(),
            components=json.loads(raw.get(b"components", b"[]")),
            tries=int(raw.get(b"tries", b"1")),
        )

    def failed_again(self, post: PendingPost) -> float | None:
        """One more failed try: seconds to the next one, or None when the tries are spent (dropped)."""
        if post.tries >= len(BACKOFF_S):
            self.drop(post.job_id)
            return None
        return self._schedule(post.job_id, tries=post.tries + 1)

    def drop(self, job_id: str) -> None:
        with self._redis.pipeline() as pipe:
            pipe.zrem(keys.REDELIVER, job_id)
            pipe.delete(keys.redeliver(job_id))
            pipe.execute()

    def _schedule(self, job_id: str, *, tries: int, fields: dict[str, Any] | None = None) -> float:
        wait = float(BACKOFF_S[tries - 1])
        with self._redis.pipeline() as pipe:
            pipe.hset(keys.redeliver(job_id), mapping={**(fields or {}), "tries": tries})
            pipe.expire(keys.redeliver(job_id), int(sum(BACKOFF_S) + KEEP_S))
            pipe.zadd(keys.REDELIVER, {job_id: time.time() + wait})
            pipe.execute()
        return wait
