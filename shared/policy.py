"""The queue's policy, as the admins set it: limits per user (running and
waiting, with overrides per user and per role), which lanes a user may use
(turbo is granted; relax can be imposed), each user's own default lane, and
paused lanes. A part of the store; every rule in one place, read at submit
(the bot and the CLI) and at the pick (shared/scheduler.py reads the running
cap the store writes here and the paused lanes)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from shared import keys, messages
from shared.connection import redis_errors
from shared.errors import InvalidRequest, NotAllowed
from shared.job import LANES
from shared.settings import Settings

ALL_LANES = "*"
GRANTS = ("turbo", "fast", "relax")  # what /admin lane sets: turbo allowed, fast (the default), relax imposed


@dataclass(frozen=True)
class Limits:
    running: int  # jobs a user may have running at once; more wait ("Job queued")
    queued: int  # jobs a user may have waiting; more are refused ("Queue full")


@redis_errors
class QueuePolicy:
    def __init__(self, conn: redis.Redis, settings: Settings) -> None:
        self._redis = conn
        self.defaults = Limits(settings.max_running_per_user, settings.max_queued_per_user)

    # -- limits -----------------------------------------------------------------
    def limits_for(self, user_id: int | None, role_ids: frozenset[int] = frozenset()) -> Limits:
        """The user's own override, else the most generous of their roles', else the defaults."""
        if user_id is None:
            return self.defaults
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.LIMITS_BY_USER, str(user_id))
            for role in sorted(role_ids):
                pipe.hget(keys.LIMITS_BY_ROLE, str(role))
            own, *by_role = pipe.execute()
        if own is not None:
            return self._limits(own)
        roles = [self._limits(raw) for raw in by_role if raw is not None]
        if not roles:
            return self.defaults
        return Limits(max(r.running for r in roles), max(r.queued for r in roles))

    def set_limits(self, *, user_id: int | None = None, role_id: int | None = None, limits: Limits | None) -> None:
        """An override for a user or a role (None: back to the defaults)."""
        key, field = (keys.LIMITS_BY_USER, user_id) if user_id is not None else (keys.LIMITS_BY_ROLE, role_id)
        if field is None:
            raise ValueError("set_limits needs a user or a role")
        if limits is None:
            self._redis.hdel(key, str(field))
            return
        if limits.running < 1 or limits.queued < 0:
            raise InvalidRequest("Limits must be at least 1 running and 0 waiting.")
        self._redis.hset(key, str(field), json.dumps({"running": limits.running, "queued": limits.queued}))

    def overrides(self) -> dict[str, dict[str, Limits]]:
        """Every override, for /admin limits: {"users": {id: …}, "roles": {id: …}}."""
        return {
            "users": {k.decode(): self._limits(v) for k, v in self._redis.hgetall(keys.LIMITS_BY_USER).items()},
            "roles": {k.decode(): self._limits(v) for k, v in self._redis.hgetall(keys.LIMITS_BY_ROLE).items()},
        }

    def _limits(self, raw: bytes) -> Limits:
        data = json.loads(raw)
        return Limits(int(data.get("running", self.defaults.running)), int(data.get("queued", self.defaults.queued)))

    # -- lanes ------------------------------------------------------------------
    def set_grant(self, lane: str, *, user_id: int | None = None, role_id: int | None = None) -> None:
        """`turbo`: may use turbo; `relax`: only relax; `fast`: neither (the default)."""
        if lane not in GRANTS:
            raise InvalidRequest(f"Lane `{lane}` is not one of {', '.join(GRANTS)}.")
        key, field = (keys.LANE_GRANTS_BY_USER, user_id) if user_id is not None else (keys.LANE_GRANTS_BY_ROLE, role_id)
        if lane == "fast":
            self._redis.hdel(key, str(field))
        else:
            self._redis.hset(key, str(field), lane)

    def grants(self, user_id: int | None, role_ids: frozenset[int] = frozenset()) -> set[str]:
        if user_id is None:
            return {"turbo"}  # the host, from the command line
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.LANE_GRANTS_BY_USER, str(user_id))
            for role in sorted(role_ids):
                pipe.hget(keys.LANE_GRANTS_BY_ROLE, str(role))
            found = {raw.decode() for raw in pipe.execute() if raw is not None}
        return found

    def set_default_lane(self, user_id: int, lane: str, role_ids: frozenset[int] = frozenset()) -> None:
        """/fast, /relax, /turbo: the lane the user's jobs take unless a prompt says otherwise.
        Turbo only for those granted it (the bot and `daydream fast|relax|turbo` both ask here)."""
        if lane not in LANES:
            raise InvalidRequest(f"Lane `{lane}` is not one of {', '.join(LANES)}.")
        if lane == "turbo" and "turbo" not in self.grants(user_id, role_ids):
            raise NotAllowed(messages.turbo_not_granted())
        self._redis.hset(keys.LANE_PREFERENCES, str(user_id), lane)

    def default_lane(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        raw = self._redis.hget(keys.LANE_PREFERENCES, str(user_id))
        return raw.decode() if raw else None

    def resolve_lane(self, user_id: int | None, role_ids: frozenset[int], requested: str | None) -> str:
        """The lane a new job takes: the prompt's, else the user's default, else fast;
        turbo only if granted, and relax only when an admin imposed it."""
        grants = self.grants(user_id, role_ids)
        lane = requested or self.default_lane(user_id) or "fast"
        if "relax" in grants and "turbo" not in grants:
            return "relax"
        if lane == "turbo" and "turbo" not in grants:
            raise NotAllowed(
                "The turbo lane is for members an admin granted it to. Use --fast or --relax, or ask an admin."
            )
        return lane

    # -- pausing ----------------------------------------------------------------
    def pause(self, lane: str = ALL_LANES) -> None:
        self._check_lane(lane)
        self._redis.sadd(keys.PAUSED, lane)

    def resume(self, lane: str = ALL_LANES) -> None:
        self._check_lane(lane)
        if lane == ALL_LANES:
            self._redis.delete(keys.PAUSED)
        else:
            self._redis.srem(keys.PAUSED, lane)

    def paused(self) -> set[str]:
        return {raw.decode() for raw in self._redis.smembers(keys.PAUSED)}

    def is_paused(self, lane: str) -> bool:
        paused = self.paused()
        return ALL_LANES in paused or lane in paused

    def _check_lane(self, lane: str) -> None:
        if lane != ALL_LANES and lane not in LANES:
            raise InvalidRequest(f"Lane `{lane}` is not one of {', '.join(LANES)} (or all of them).")
