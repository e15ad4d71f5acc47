"""The fair queue: which waiting job a free worker takes next, in one atomic step.

RQ's queue per (model, lane) stays the list of waiting jobs (depth, KEDA,
rq-dashboard). Beside it each (model, lane) has two tiers — `i`, interactive
follow-ups (U, V of an existing result), served before `n`, new grids — and
in each tier one FIFO list per user and a sorted set of the users waiting:

* fast and turbo: round-robin across users. Serving a user moves them to the
  back (score = the tier's clock + 1); a user who arrives gets the score
  `clock - 0.5`, ahead of everyone already served at this clock, so one user's
  forty jobs cost another's first job at most one more of theirs per worker.
* relax: runs only when no faster lane has a job a worker may start; within
  it the user with the least GPU time recently (exponentially decayed,
  `RELAX_HALF_LIFE_S`) goes first — Midjourney's rule.

The pick skips paused lanes and users already at their running cap, takes
the job and, in the same step, a lease on it for the worker (shared/leases.py).
Jobs of the version before this one sit only in RQ's lists: they are taken
from there once the fair lists of their (model, lane) are empty."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import redis

from shared import keys
from shared.job import LANES, JobKind, JobRecord

TIERS = ("i", "n")  # interactive follow-ups before new grids, within a lane
INTERACTIVE_KINDS = frozenset({JobKind.UPSCALE, JobKind.VARIATION})
CLI_USER = "0"  # the user of jobs submitted from the command line without --user
RELAX_HALF_LIFE_S = 6 * 3600.0  # recent GPU time halves every six hours in the relax order

PICK = """
local worker, now_ms, ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lease_prefix, held, busy_prefix, caps, paused_key = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local default_cap, half_life, relax_usage = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local n = tonumber(ARGV[12])
local paused = {}
for _, lane in ipairs(redis.call('SMEMBERS', paused_key)) do paused[lane] = true end

local function may_start(user)
  if user == '0' then return true end
  local cap = tonumber(redis.call('HGET', caps, user) or default_cap)
  return redis.call('SCARD', busy_prefix .. user) < cap
end

local function decayed(user)
  local raw = redis.call('HGET', relax_usage, user)
  if not raw then return 0 end
  local value, stamp = string.match(raw, '^([^:]+):([^:]+)$')
  return tonumber(value) * math.exp(-math.log(2) * (now_ms / 1000 - tonumber(stamp)) / half_life)
end

local function take(rq_key, rq_id, user, lane)
  local job, attempt = string.match(rq_id, '^(.+)-(%d+)$')
  if job then
    redis.call('HSET', lease_prefix .. job, 'worker', worker, 'attempt', attempt, 'rq_id', rq_id, 'queue', rq_key)
    redis.call('ZADD', KEYS[1], now_ms + ttl_ms, job)
    redis.call('SADD', held, job)
    if user ~= '0' then redis.call('SADD', busy_prefix .. user, job) end
  end
  return {rq_key, rq_id, user, lane}
end

local i = 13
for _ = 1, n do
  local lane, rq_key = ARGV[i], ARGV[i + 1]
  local bases = {ARGV[i + 2], ARGV[i + 3]}
  i = i + 4
  if not paused[lane] and not paused['*'] then
    local indexed = false
    for _, base in ipairs(bases) do
      local users = redis.call('ZRANGE', base .. ':users', 0, -1)
      if #users > 0 then indexed = true end
      if lane == 'relax' and #users > 1 then
        local usage = {}
        for _, u in ipairs(users) do usage[u] = decayed(u) end
        table.sort(users, function(a, b) return usage[a] < usage[b] end)
      end
      for _, user in ipairs(users) do
        if may_start(user) then
          local list = base .. ':u:' .. user
          while true do
            local rq_id = redis.call('LPOP', list)
            if not rq_id then break end
            if redis.call('LLEN', list) == 0 then
              redis.call('ZREM', base .. ':users', user)
            elseif lane ~= 'relax' then
              redis.call('ZADD', base .. ':users', redis.call('INCR', base .. ':clock'), user)
            end
            if redis.call('LREM', rq_key, 1, rq_id) > 0 then
              return take(rq_key, rq_id, user, lane)
            end
          end
          redis.call('ZREM', base .. ':users', user)
        end
      end
    end
    if not indexed then
      local rq_id = redis.call('LPOP', rq_key)  -- queued by a version without the fair lists
      if rq_id then return take(rq_key, rq_id, '0', lane) end
    end
  end
end
for j = i, #ARGV do  -- the single queue of the version before dispatch by model
  local rq_id = redis.call('LPOP', ARGV[j])
  if rq_id then return take(ARGV[j], rq_id, '0', 'fast') end
end
return false
"""


# A user who starts waiting goes ahead of everyone already served at this turn
# (clock - 0.5), and behind earlier newcomers (a tiny step per arrival, so
# they keep their order of arrival instead of the order of their ids).
NEWCOMER = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local clock = tonumber(redis.call('GET', KEYS[2]) or '0')
local arrival = redis.call('INCR', KEYS[3]) % 1000000
redis.call('ZADD', KEYS[1], clock - 0.5 + arrival * 1e-7, ARGV[1])
return 1
"""


def newcomer_score(clock: float, arrivals: int) -> float:
    """The score NEWCOMER would give the next user to arrive (for positions before enqueueing)."""
    return clock - 0.5 + ((arrivals + 1) % 1000000) * 1e-7


def user_of(job: JobRecord) -> str:
    return str(job.user_id) if job.user_id else CLI_USER


def tier_of(job: JobRecord) -> str:
    return "i" if job.kind in INTERACTIVE_KINDS else "n"


@dataclass(frozen=True)
class Picked:
    queue: str  # the RQ queue's name
    rq_id: str
    user: str
    lane: str


class Scheduler:
    """The fair index beside RQ's lists, and the pick over it. Used by dispatch only."""

    def __init__(self, conn: redis.Redis, queue_key: Any, rq_prefix: str) -> None:
        self._redis = conn
        self._queue_key = queue_key  # (model, lane) -> RQ's list key
        self._rq_prefix = rq_prefix
        self._pick = conn.register_script(PICK)

    # -- the index ------------------------------------------------------------
    def index(self, pipe: redis.client.Pipeline, job: JobRecord, rq_id: str, *, at_front: bool = False) -> None:
        """Add a job to its user's list (on `pipe`, with RQ's own enqueue). A job put
        back after its worker died goes first in its user's list and its user first."""
        base = keys.fair(job.model, job.lane, tier_of(job))
        user = user_of(job)
        if at_front:
            pipe.lpush(keys.fair_user_list(base, user), rq_id)
            pipe.zadd(keys.fair_users(base), {user: -math.inf})
        else:
            pipe.rpush(keys.fair_user_list(base, user), rq_id)
            pipe.eval(NEWCOMER, 3, keys.fair_users(base), keys.fair_clock(base), keys.fair_arrivals(base), user)

    def unindex(self, pipe: redis.client.Pipeline, job: JobRecord, rq_id: str) -> None:
        base = keys.fair(job.model, job.lane, tier_of(job))
        pipe.lrem(keys.fair_user_list(base, user_of(job)), 0, rq_id)

    # -- the pick -------------------------------------------------------------
    def pick(
        self,
        worker: str,
        models: list[str],
        legacy: list[str],
        *,
        lease_ttl_s: float,
        default_running_cap: int,
        lanes: tuple[str, ...] = (),
    ) -> Picked | None:
        """The next job for `worker` from `models`' queues (in `lanes`; empty: every
        lane), leased to it; None when no job a worker may start is waiting."""
        served = [lane for lane in LANES if not lanes or lane in lanes]
        args: list[Any] = [
            worker,
            int(time.time() * 1000),
            int(lease_ttl_s * 1000),
            keys.lease(""),
            keys.held(worker),
            keys.user_busy(""),
            keys.CAPS_RUNNING,
            keys.PAUSED,
            default_running_cap,
            RELAX_HALF_LIFE_S,
            keys.RELAX_USAGE,
            len(served) * len(models),
        ]
        for lane in served:
            for model in models:
                args += [lane, self._queue_key(model, lane), *(keys.fair(model, lane, t) for t in TIERS)]
        args += legacy
        picked = self._pick(keys=[keys.LEASES], args=args)
        if not picked:
            return None
        rq_key, rq_id, user, lane = (p.decode() for p in picked)
        return Picked(rq_key.removeprefix(self._rq_prefix), rq_id, user, lane)

    # -- positions --------------------------------------------------------------
    def position(self, job: JobRecord, rq_id: str) -> int | None:
        """1-based place in line under the fair discipline, if no new job arrived
        and every waiting user may start: the jobs of faster lanes and tiers, then
        the round-robin turns before this one in its own tier."""
        own = keys.fair(job.model, job.lane, tier_of(job))
        user = user_of(job)
        mine = [r.decode() for r in self._redis.lrange(keys.fair_user_list(own, user), 0, -1)]
        if rq_id not in mine:
            return None
        return self._ahead_of(job.model, own) + self._turns_before(own, user, mine.index(rq_id)) + 1

    def next_position(self, job: JobRecord) -> int:
        """Where `job` would wait if it were enqueued now (shown before it is)."""
        own = keys.fair(job.model, job.lane, tier_of(job))
        user = user_of(job)
        k = int(self._redis.llen(keys.fair_user_list(own, user)))
        return self._ahead_of(job.model, own) + self._turns_before(own, user, k, newcomer=True) + 1

    def _ahead_of(self, model: str, own: str) -> int:
        """Jobs waiting in the lanes and tiers served before the one at `own`."""
        ahead = 0
        for lane in LANES:
            for tier in TIERS:
                base = keys.fair(model, lane, tier)
                if base == own:
                    return ahead
                ahead += self._waiting_in(base)
        return ahead

    def _waiting_in(self, base: str) -> int:
        users = [u.decode() for u in self._redis.zrange(keys.fair_users(base), 0, -1)]
        if not users:
            return 0
        with self._redis.pipeline(transaction=False) as pipe:
            for u in users:
                pipe.llen(keys.fair_user_list(base, u))
            return sum(pipe.execute())

    def _turns_before(self, base: str, user: str, k: int, *, newcomer: bool = False) -> int:
        """Jobs of other users served before the k-th (0-based) job of `user`."""
        ranked = self._redis.zrange(keys.fair_users(base), 0, -1, withscores=True)
        score = {u.decode(): s for u, s in ranked}
        if user not in score and newcomer:
            clock, arrivals = self._redis.mget(keys.fair_clock(base), keys.fair_arrivals(base))
            score[user] = newcomer_score(float(clock or 0), int(arrivals or 0))
        mine = score.get(user, math.inf)
        others = [u for u in score if u != user]
        if not others:
            return k
        with self._redis.pipeline(transaction=False) as pipe:
            for u in others:
                pipe.llen(keys.fair_user_list(base, u))
            lengths = pipe.execute()
        return k + sum(min(n, k + (1 if score[u] < mine else 0)) for u, n in zip(others, lengths, strict=True))

    def waiting_by_user(self, model: str, lane: str) -> dict[str, int]:
        """Per user, the jobs waiting in one (model, lane), both tiers (admins' view)."""
        out: dict[str, int] = {}
        for tier in TIERS:
            base = keys.fair(model, lane, tier)
            users = [u.decode() for u in self._redis.zrange(keys.fair_users(base), 0, -1)]
            with self._redis.pipeline(transaction=False) as pipe:
                for u in users:
                    pipe.llen(keys.fair_user_list(base, u))
                for u, n in zip(users, pipe.execute(), strict=True):
                    out[u] = out.get(u, 0) + n
        return out


def relax_usage_entry(previous: bytes | None, seconds: float, now: float) -> str:
    """The decayed GPU time of a user after `seconds` more of it (`value:stamp`)."""
    value = 0.0
    if previous:
        old, stamp = previous.decode().split(":")
        value = float(old) * math.exp(-math.log(2) * (now - float(stamp)) / RELAX_HALF_LIFE_S)
    return f"{value + seconds:.3f}:{now:.3f}"
