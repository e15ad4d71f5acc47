"""A server's moderation policy, as its admins set it: word filters (on top of
the host's default list), bans, cooldowns for repeated blocks, the mod log
channel, the NSFW score threshold, and each channel's image policy
(allowed / blur / refuse) and spoiler mode. A part of the store (JobStore.moderation).

`screen(job)` is the one decision at submit, for the bot and `daydream imagine`
alike: banned → Banned; cooling down → CoolingDown; a rule matches the prompt →
the job is held as a case (for an appeal), the strike counted, PromptBlocked.

In a channel Discord marks NSFW (age-restricted) the default list does not
apply, a server's own rules still do, and the image check is skipped."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import redis

from shared import keys, mod_messages
from shared.connection import redis_errors
from shared.errors import Banned, ConfigError, CoolingDown, InvalidRequest, PromptBlocked
from shared.job import JobRecord, Venue
from shared.settings import RECORD_TTL_S, Settings
from shared.wordfilter import DEFAULT_RULES, WordFilter, check_rule, read_rules_file

IMAGE_POLICIES = ("allowed", "blur", "refuse")
DM_SCOPE = "dm"
CASE_TTL_S = 30 * 24 * 3600  # an appeal can come a month later; a case is small
CASE_STATES = ("blocked", "appealed", "allowed", "upheld")


def scope_of(guild_id: int | None) -> str:
    return str(guild_id) if guild_id else DM_SCOPE


def parse_cooldowns(raw: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(p) for p in raw.replace(" ", "").split(",") if p)
    except ValueError:
        steps = ()
    if not steps or min(steps) < 0:
        raise ConfigError("COOLDOWN_MINUTES", f"COOLDOWN_MINUTES must be minutes separated by commas, got {raw!r}.")
    return steps


@dataclass(frozen=True)
class ChannelPolicy:
    images: str = "blur"  # what happens to a flagged image here
    spoiler: bool = False  # results posted as spoilers
    nsfw: bool = False  # Discord marks the channel NSFW: no image check


@dataclass(frozen=True)
class Ban:
    user_id: int
    reason: str
    by: str
    at: float


@dataclass
class Case:
    """A blocked job, held so an appeal can let it run."""

    job: JobRecord
    rule: str
    word: str
    state: str = "blocked"
    modlog_message_id: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"job": json.loads(self.job.to_json()), "rule": self.rule, "word": self.word, "state": self.state,
             "modlog_message_id": self.modlog_message_id}
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: bytes | str) -> Case:
        data = json.loads(raw)
        return cls(
            job=JobRecord.from_json(json.dumps(data["job"])),
            rule=str(data.get("rule", "")),
            word=str(data.get("word", "")),
            state=str(data.get("state", "blocked")),
            modlog_message_id=data.get("modlog_message_id"),
        )


@redis_errors
class Moderation:
    def __init__(self, conn: redis.Redis, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._redis = conn
        self.settings = settings
        self.clock = clock  # tests pass a fake one for the escalation window
        self.cooldowns = parse_cooldowns(settings.cooldown_minutes)

    # -- word filters -------------------------------------------------------------
    @cached_property
    def default_rules(self) -> tuple[str, ...]:
        path = self.settings.wordfilter_file
        if not path:
            return DEFAULT_RULES
        try:
            return read_rules_file(path)
        except (OSError, ValueError) as exc:
            raise ConfigError("WORDFILTER_FILE", f"WORDFILTER_FILE {path!r} cannot be used: {exc}") from None

    def rules(self, guild_id: int | None) -> dict[str, list[str]]:
        """{"server": the server's own, "default": the host's in force here, "dropped": defaults removed}."""
        scope = scope_of(guild_id)
        own = sorted(m.decode() for m in self._redis.smembers(keys.mod_rules(scope)))
        dropped = {m.decode() for m in self._redis.smembers(keys.mod_rules_dropped(scope))}
        default = [r for r in self.default_rules if r not in dropped]
        return {"server": own, "default": default, "dropped": sorted(dropped)}

    def add_rule(self, guild_id: int | None, rule: str) -> str:
        try:
            rule = check_rule(rule)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        scope = scope_of(guild_id)
        self._redis.srem(keys.mod_rules_dropped(scope), rule)
        if rule not in self.default_rules:
            self._redis.sadd(keys.mod_rules(scope), rule)
        return rule

    def remove_rule(self, guild_id: int | None, rule: str) -> str:
        rule = " ".join(rule.split())
        scope = scope_of(guild_id)
        removed = self._redis.srem(keys.mod_rules(scope), rule)
        if rule in self.default_rules:
            self._redis.sadd(keys.mod_rules_dropped(scope), rule)
        elif not removed:
            raise InvalidRequest(f"`{rule}` is not one of this server's filter rules; `/admin filter list` shows them.")
        return rule

    def word_filter(self, venue: Venue) -> WordFilter:
        found = self.rules(venue.guild_id)
        return WordFilter(found["server"] if venue.nsfw else found["server"] + found["default"])

    # -- the decision at submit -------------------------------------------------------
    def screen(self, job: JobRecord) -> None:
        """Refuse a job from a banned or cooling-down user, or with a blocked prompt
        (then held as a case for an appeal). Jobs from the command line without
        --user are the host's own: only the word filter applies."""
        venue = job.venue
        if job.user_id is not None:
            self.check_user(venue.guild_id, job.user_id)
        match = self.word_filter(venue).find(job.prompt)
        if match is None:
            return
        cooldown = self.strike(venue.guild_id, job.user_id) if job.user_id is not None else 0.0
        self.hold(Case(job, match.rule, match.word))
        raise PromptBlocked(mod_messages.blocked(match.rule, match.word, cooldown), match.rule, match.word,
                            job.id, cooldown)  # fmt: skip

    def check_user(self, guild_id: int | None, user_id: int) -> None:
        """Banned or cooling down: refused (a button click, too, checks this)."""
        ban = self.ban_of(guild_id, user_id)
        if ban is not None:
            first = bool(self._redis.sadd(keys.mod_told(scope_of(guild_id)), str(user_id)))
            raise Banned(mod_messages.banned(ban.reason, first), ban.reason, first)
        left = self.cooldown_left(guild_id, user_id)
        if left > 0:
            raise CoolingDown(mod_messages.cooling_down(left), left)

    # -- escalation -------------------------------------------------------------------
    def strike(self, guild_id: int | None, user_id: int) -> float:
        """Count a blocked prompt; return the cooldown (s) it starts: none for the first in
        the window, then COOLDOWN_MINUTES in turn (the last one repeats)."""
        scope, now = scope_of(guild_id), self.clock()
        window = self.settings.strike_window_s
        key = keys.mod_strikes(scope, user_id)
        with self._redis.pipeline() as pipe:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zadd(key, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})  # two at one instant are two
            pipe.zcard(key)
            pipe.expire(key, window)
            count = pipe.execute()[2]
        if count < 2:
            return 0.0
        minutes = self.cooldowns[min(count - 2, len(self.cooldowns) - 1)]
        seconds = minutes * 60.0
        if seconds > 0:
            self._redis.set(keys.mod_cooldown(scope, user_id), f"{now + seconds:.3f}", ex=int(seconds) + 60)
        return seconds

    def cooldown_left(self, guild_id: int | None, user_id: int) -> float:
        raw = self._redis.get(keys.mod_cooldown(scope_of(guild_id), user_id))
        return max(0.0, float(raw) - self.clock()) if raw else 0.0

    def clear_strikes(self, guild_id: int | None, user_id: int) -> None:
        scope = scope_of(guild_id)
        self._redis.delete(keys.mod_strikes(scope, user_id), keys.mod_cooldown(scope, user_id))

    # -- bans ---------------------------------------------------------------------------
    def ban(self, guild_id: int | None, user_id: int, reason: str = "", by: str = "") -> Ban:
        scope = scope_of(guild_id)
        ban = Ban(user_id, reason.strip()[:300], by, self.clock())
        data = {"reason": ban.reason, "by": ban.by, "at": ban.at}
        with self._redis.pipeline() as pipe:
            pipe.hset(keys.mod_bans(scope), str(user_id), json.dumps(data))
            pipe.srem(keys.mod_told(scope), str(user_id))  # a new ban is explained again
            pipe.execute()
        return ban

    def unban(self, guild_id: int | None, user_id: int) -> bool:
        scope = scope_of(guild_id)
        removed = self._redis.hdel(keys.mod_bans(scope), str(user_id))
        self._redis.srem(keys.mod_told(scope), str(user_id))
        self.clear_strikes(guild_id, user_id)
        return bool(removed)

    def ban_of(self, guild_id: int | None, user_id: int) -> Ban | None:
        raw = self._redis.hget(keys.mod_bans(scope_of(guild_id)), str(user_id))
        return self._ban(user_id, raw) if raw else None

    def bans(self, guild_id: int | None) -> list[Ban]:
        found = self._redis.hgetall(keys.mod_bans(scope_of(guild_id)))
        return sorted((self._ban(int(k), v) for k, v in found.items()), key=lambda b: b.at)

    @staticmethod
    def _ban(user_id: int, raw: bytes) -> Ban:
        data = json.loads(raw)
        return Ban(user_id, str(data.get("reason", "")), str(data.get("by", "")), float(data.get("at", 0)))

    # -- the server's settings ---------------------------------------------------------------
    def set_modlog(self, guild_id: int | None, channel_id: int | None) -> None:
        key = keys.mod_settings(scope_of(guild_id))
        if channel_id is None:
            self._redis.hdel(key, "modlog")
        else:
            self._redis.hset(key, "modlog", str(channel_id))

    def modlog(self, guild_id: int | None) -> int | None:
        raw = self._redis.hget(keys.mod_settings(scope_of(guild_id)), "modlog")
        return int(raw) if raw else None

    def set_threshold(self, guild_id: int | None, threshold: float | None) -> None:
        key = keys.mod_settings(scope_of(guild_id))
        if threshold is None:
            self._redis.hdel(key, "threshold")
            return
        if not 0.0 < threshold <= 1.0:
            raise InvalidRequest(f"The threshold is a score between 0 and 1 (e.g. 0.6), not {threshold}.")
        self._redis.hset(key, "threshold", str(threshold))

    def threshold(self, guild_id: int | None) -> float:
        raw = self._redis.hget(keys.mod_settings(scope_of(guild_id)), "threshold")
        return float(raw) if raw else self.settings.nsfw_threshold

    def set_channel(
        self, guild_id: int | None, channel_id: int, *, images: str | None = None, spoiler: bool | None = None
    ) -> ChannelPolicy:
        if images is not None and images not in IMAGE_POLICIES:
            raise InvalidRequest(f"The image policy is one of {', '.join(IMAGE_POLICIES)}, not `{images}`.")
        key = keys.mod_channels(scope_of(guild_id))
        current = self.channel_policy(Venue(guild_id=guild_id, channel_id=channel_id))
        data = {
            "images": images or current.images,
            "spoiler": current.spoiler if spoiler is None else spoiler,
        }
        self._redis.hset(key, str(channel_id), json.dumps(data))
        return ChannelPolicy(data["images"], data["spoiler"])

    def channel_policy(self, venue: Venue) -> ChannelPolicy:
        """What applies to a job's results: its channel's settings; in a DM, DM_IMAGE_POLICY."""
        default = self.settings.dm_image_policy if venue.dm or not venue.guild_id else "blur"
        if default not in IMAGE_POLICIES:
            raise ConfigError("DM_IMAGE_POLICY", f"DM_IMAGE_POLICY must be one of {', '.join(IMAGE_POLICIES)}.")
        raw = None
        if venue.channel_id is not None:
            raw = self._redis.hget(keys.mod_channels(scope_of(venue.guild_id)), str(venue.channel_id))
        data = json.loads(raw) if raw else {}
        images = data.get("images") if data.get("images") in IMAGE_POLICIES else default
        return ChannelPolicy(images, bool(data.get("spoiler", False)), venue.nsfw)

    # -- cases (blocked jobs and their appeals) -------------------------------------------------
    def hold(self, case: Case) -> None:
        self._redis.set(keys.mod_case(case.job.id), case.to_json(), ex=CASE_TTL_S)

    def case(self, job_id: str) -> Case | None:
        raw = self._redis.get(keys.mod_case(job_id))
        return Case.from_json(raw) if raw else None

    def move_case(self, job_id: str, frm: tuple[str, ...], to: str, **changes: object) -> Case | None:
        """Move a case from one of `frm` to `to`, atomically: two moderators clicking
        Allow at once let the job run once. None if it is not in one of `frm`."""
        key = keys.mod_case(job_id)
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        return None
                    case = Case.from_json(raw)
                    if case.state not in frm:
                        pipe.unwatch()
                        return None
                    case.state = to
                    for name, value in changes.items():
                        setattr(case, name, value)
                    pipe.multi()
                    pipe.set(key, case.to_json(), ex=RECORD_TTL_S if to == "allowed" else CASE_TTL_S)
                    pipe.execute()
                    return case
                except redis.WatchError:
                    continue
