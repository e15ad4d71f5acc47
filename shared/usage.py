"""GPU time, accounted: per user and lane, per day and in total (shown in
/info and to admins), each user's recent GPU time (the relax lane's order),
and the recent duration of jobs per model and size (the waiting line's ETA).
A part of the store; written once per job, when it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from shared import keys
from shared.connection import redis_errors
from shared.job import JobRecord
from shared.scheduler import relax_usage_entry, user_of

DURATION_WEIGHT = 0.3  # of the newest job in the moving average of durations
USAGE_TTL_S = 400 * 24 * 3600  # a user's totals outlive a year of silence


def day_of(when: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(when))


@dataclass(frozen=True)
class Usage:
    today_s: float
    total_s: float
    by_lane_today: dict[str, float]
    by_lane_total: dict[str, float]


@redis_errors
class UsageBook:
    def __init__(self, conn: redis.Redis) -> None:
        self._redis = conn

    def record(self, job: JobRecord) -> None:
        """Account a job that ran (it has started_at and finished_at)."""
        if job.started_at is None or job.finished_at is None:
            return
        seconds = max(0.0, job.finished_at - job.started_at)
        user = user_of(job)
        day = day_of(job.finished_at)
        book = keys.usage(user)
        previous = self._redis.hget(keys.RELAX_USAGE, user)
        with self._redis.pipeline() as pipe:
            for field in ("total", f"lane:{job.lane}", f"day:{day}", f"day:{day}:{job.lane}"):
                pipe.hincrbyfloat(book, field, seconds)
            pipe.expire(book, USAGE_TTL_S)
            pipe.hset(keys.RELAX_USAGE, user, relax_usage_entry(previous, seconds, job.finished_at))
            if job.width and job.height and job.state == "done":
                pipe.eval(
                    "local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))"
                    " local new = tonumber(ARGV[2])"
                    " if old then new = old + tonumber(ARGV[3]) * (new - old) end"
                    " redis.call('HSET', KEYS[1], ARGV[1], new)",
                    1,
                    keys.DURATIONS,
                    f"{job.model}:{job.width}x{job.height}",
                    seconds,
                    DURATION_WEIGHT,
                )
            pipe.execute()

    def of(self, user_id: int | None, now: float | None = None) -> Usage:
        day = day_of(time.time() if now is None else now)
        raw = {k.decode(): float(v) for k, v in self._redis.hgetall(keys.usage(str(user_id or 0))).items()}
        by_lane_today = {k.split(":")[2]: v for k, v in raw.items() if k.startswith(f"day:{day}:")}
        by_lane_total = {k.split(":")[1]: v for k, v in raw.items() if k.startswith("lane:")}
        return Usage(raw.get(f"day:{day}", 0.0), raw.get("total", 0.0), by_lane_today, by_lane_total)

    def typical_duration(self, model: str, width: int | None, height: int | None) -> float | None:
        """The moving average of recent jobs' run time for this model and size (None: none yet)."""
        raw = self._redis.hget(keys.DURATIONS, f"{model}:{width}x{height}")
        if raw is None:  # any size of the model, before none at all
            values = [
                float(v) for k, v in self._redis.hgetall(keys.DURATIONS).items() if k.decode().startswith(f"{model}:")
            ]
            return sum(values) / len(values) if values else None
        return float(raw)


def eta_s(position: int, duration_s: float | None, workers: int) -> float | None:
    """Seconds until a job at `position` starts, if every worker of its model takes
    a job of `duration_s` at a time: the waves of jobs ahead of it."""
    if duration_s is None or workers <= 0:
        return None
    # The first `workers` waiting jobs start as the running ones end (half way, on average).
    return ((position - 1) // workers) * duration_s + duration_s / 2
