"""Leases: who holds a job, from the moment it leaves its queue.

A worker takes a job off its queue and, in the same atomic step, a lease on it
(shared/dispatch.py's pick): the holder, the attempt, and an expiry a few
heartbeats away, which the worker's heartbeat renews while it lives. A job
whose lease lapsed — its worker died, froze, or lost its network, whether or
not it had marked the job running — is put back on its queue by the sweeps of
the live workers (worker/sweeps.py). Every write a worker makes carries its
attempt (the store fences it), so a holder that lost its lease writes nothing.

Keys: `lease:<job>` (a hash: worker, attempt, rq_id, queue), `leases` (job →
expiry in ms, to find the lapsed ones), `held:<worker>` (what it renews)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

import redis

from shared import keys
from shared.connection import redis_errors

# Renew the leases this worker holds; return the jobs it no longer holds. With
# ARGV[5] = '1', only those named after it: a lease the worker does not know it
# holds (a pick whose answer was lost when Redis went down, a job RQ could not
# fetch) is left to lapse, so the sweeps hand its job on instead of the
# heartbeat keeping it held, and waiting, for ever.
RENEW = """
local only = nil
if ARGV[5] == '1' then
  only = {}
  for i = 6, #ARGV do only[ARGV[i]] = true end
end
local lost = {}
for _, job in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HGET', ARGV[4] .. job, 'worker') == ARGV[1] then
    if only == nil or only[job] then
      redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), job)
    end
  else
    redis.call('SREM', KEYS[1], job)
    table.insert(lost, job)
  end
end
return lost
"""

# Drop a job's lease, whoever holds it.
RELEASE = """
local holder = redis.call('HGET', KEYS[1], 'worker')
if holder then redis.call('SREM', ARGV[2] .. holder, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return holder
"""


@dataclass(frozen=True)
class Lease:
    job_id: str
    worker: str
    attempt: int
    expires_at: float  # Unix seconds


def lease_ttl_s(heartbeat_s: float) -> float:
    """Two heartbeats and a margin: a worker that misses two renewals in a row is
    presumed dead, and its job is back on the queue within one more sweep."""
    return 2 * heartbeat_s + 2


@redis_errors
class Leases:
    def __init__(self, conn: redis.Redis, heartbeat_s: float) -> None:
        self._redis = conn
        self.ttl_s = lease_ttl_s(heartbeat_s)
        self._renew = conn.register_script(RENEW)
        self._release = conn.register_script(RELEASE)

    def renew(self, worker: str, only: Collection[str] | None = None) -> list[str]:
        """Extend the leases `worker` holds (with `only`, just those of these jobs:
        what the worker process knows it holds); the job ids it no longer holds."""
        selection = ["0"] if only is None else ["1", *sorted(only)]
        lost = self._renew(
            keys=[keys.held(worker), keys.LEASES],
            args=[worker, _now_ms(), int(self.ttl_s * 1000), keys.lease(""), *selection],
        )
        return [j.decode() for j in lost]

    def release(self, job_id: str) -> None:
        self._release(keys=[keys.lease(job_id), keys.LEASES], args=[job_id, keys.held("")])

    def get(self, job_id: str) -> Lease | None:
        raw = self._redis.hgetall(keys.lease(job_id))
        if not raw:
            return None
        score = self._redis.zscore(keys.LEASES, job_id)
        return Lease(
            job_id=job_id,
            worker=raw[b"worker"].decode(),
            attempt=int(raw[b"attempt"]),
            expires_at=(score or 0) / 1000,
        )

    def lapsed(self, now: float | None = None) -> list[Lease]:
        """Leases whose holder stopped renewing them."""
        cutoff = int((time.time() if now is None else now) * 1000)
        out = []
        for job_id in (j.decode() for j in self._redis.zrangebyscore(keys.LEASES, "-inf", cutoff)):
            lease = self.get(job_id)
            if lease is None:
                self._redis.zrem(keys.LEASES, job_id)  # its hash went with a release half done
                continue
            out.append(lease)
        return out

    def held_by(self, worker: str) -> list[str]:
        return sorted(j.decode() for j in self._redis.smembers(keys.held(worker)))


def _now_ms() -> int:
    return int(time.time() * 1000)
