"""Personal settings (/settings, /prefer) and channel defaults (/admin defaults), in Redis.

A user's settings are flags they would otherwise type (model, stylize,
quality, raw), Remix mode, a suffix added to every prompt and option macros
(`--poster` → `--ar 2:3 --s 250`). A channel has default flags and the prompt
limits (shared/flags.py `PromptLimits`). Each value is checked by the prompt
parser itself when it is set, so a setting can never make a later prompt
invalid, and its mistakes are worded like a prompt's. Read once per submit
(shared/resolution.py); durable with Redis's append-only file."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction

import redis

from shared import keys
from shared.connection import redis_errors
from shared.errors import InvalidPrompt, InvalidRequest
from shared.flags import BY_NAME, DEFAULT_LIMITS, PromptLimits
from shared.prompt_text import parse_one

# /settings NAME → the flag whose value it holds (remix is not a flag).
SETTINGS = ("model", "stylize", "quality", "raw", "remix")
SWITCHES = ("raw", "remix")
ON, OFF = ("on", "true", "yes", "1"), ("off", "false", "no", "0")
OPTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_OPTIONS = 25  # Discord shows at most 25 choices in a list
MAX_SUFFIX_CHARS = 200
SAMPLE = "x "  # a prompt text a setting's flags are checked behind


@dataclass(frozen=True)
class UserPrefs:
    model: str | None = None
    stylize: int | None = None
    quality: float | None = None
    raw: bool = False
    remix: bool = False
    suffix: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def flags(self) -> list[str]:
        """The settings as the flags they stand for (lowest priority after the prompt's and the suffix's)."""
        out = []
        if self.model:
            out.append(f"--model {self.model}")
        if self.stylize is not None:
            out.append(f"--stylize {self.stylize}")
        if self.quality is not None:
            out.append(f"--quality {self.quality:g}")
        if self.raw:
            out.append("--raw")
        return out


@dataclass(frozen=True)
class ChannelDefaults:
    defaults: str = ""  # flags, e.g. "--ar 3:2 --s 50"
    limits: PromptLimits = DEFAULT_LIMITS


def _switch(name: str, value: str) -> bool:
    if value.lower() in ON:
        return True
    if value.lower() in OFF:
        return False
    raise InvalidPrompt(
        f"`{name}` is on or off, not `{value}`: use `on` or `off`.", text=value, accepted="on | off", example="on"
    )


def check_flags(value: str, what: str, limits: PromptLimits = DEFAULT_LIMITS) -> str:
    """`value` must be flags only (`--ar 2:3 --s 250`): checked by the parser."""
    value = " ".join(value.split())
    if not value.startswith("--") and not value.startswith("\u2014"):
        raise InvalidPrompt(
            f"{what} must be parameters, like `--ar 2:3 --s 250`; got `{value}`.",
            text=value,
            accepted="--flag value …",
            example="--ar 2:3 --s 250",
        )
    parse_one(SAMPLE + value, limits)
    return value


@redis_errors
class Preferences:
    def __init__(self, conn: redis.Redis) -> None:
        self._redis = conn

    # -- a user's ------------------------------------------------------------------
    def user(self, user_id: int | None) -> UserPrefs:
        if user_id is None:
            return UserPrefs()
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.user_settings(user_id))
            pipe.hgetall(keys.user_options(user_id))
            raw, options = pipe.execute()
        data = {k.decode(): v.decode() for k, v in raw.items()}
        prefs = UserPrefs(options={k.decode(): v.decode() for k, v in sorted(options.items())})
        known = {f.name for f in fields(UserPrefs)}
        for name, value in data.items():  # tolerant: a setting of a newer version is ignored
            if name not in known or name == "options":
                continue
            if name in SWITCHES:
                prefs = replace(prefs, **{name: value == "on"})
            elif name == "stylize":
                prefs = replace(prefs, stylize=int(value))
            elif name == "quality":
                prefs = replace(prefs, quality=float(value))
            else:
                prefs = replace(prefs, **{name: value})
        return prefs

    def set(self, user_id: int, name: str, value: str | None) -> UserPrefs:
        """/settings: `name` (model, stylize, quality, raw, remix) to `value`; None or
        `default`: back to the default."""
        name = name.lower()
        if name not in SETTINGS:
            raise InvalidRequest(f"There is no setting `{name}`. Settings: {', '.join(SETTINGS)}.")
        key = keys.user_settings(user_id)
        if value is None or value.lower() in {"default", "reset"}:
            self._redis.hdel(key, name)
            return self.user(user_id)
        value = value.strip()
        if name in SWITCHES:
            stored = "on" if _switch(name, value) else "off"
        else:
            flag = BY_NAME[name]
            parsed = parse_one(f"{SAMPLE}--{flag.name} {value}")
            stored = (
                parsed.model
                if name == "model"
                else str(parsed.params.stylize if name == "stylize" else f"{parsed.params.quality:g}")
            )
        self._redis.hset(key, name, stored)
        return self.user(user_id)

    def set_suffix(self, user_id: int, suffix: str | None) -> UserPrefs:
        """/prefer suffix: text and flags added to every prompt (empty/None: none)."""
        suffix = " ".join((suffix or "").split())
        if not suffix:
            self._redis.hdel(keys.user_settings(user_id), "suffix")
            return self.user(user_id)
        if len(suffix) > MAX_SUFFIX_CHARS:
            raise InvalidRequest(f"A suffix may be {MAX_SUFFIX_CHARS} characters long; yours is {len(suffix)}.")
        parse_one(SAMPLE + suffix)  # its flags must be valid ones
        self._redis.hset(keys.user_settings(user_id), "suffix", suffix)
        return self.user(user_id)

    def set_option(self, user_id: int, name: str, value: str) -> UserPrefs:
        """/prefer option set: `--name` then stands for `value` (flags) in the user's prompts."""
        name = name.lower().lstrip("-").lstrip("\u2014")
        if not OPTION_NAME.match(name):
            raise InvalidRequest(
                f"`{name}` cannot name an option: use letters, digits, - and _ (starting with a letter), like `poster`."
            )
        if name in BY_NAME:
            raise InvalidRequest(f"`--{name}` is already a parameter of its own; pick another name for your option.")
        value = check_flags(value, f"The option `--{name}`")
        key = keys.user_options(user_id)
        if not self._redis.hexists(key, name) and self._redis.hlen(key) >= MAX_OPTIONS:
            raise InvalidRequest(f"You have {MAX_OPTIONS} options already; delete one first.")
        self._redis.hset(key, name, value)
        return self.user(user_id)

    def delete_option(self, user_id: int, name: str) -> bool:
        return bool(self._redis.hdel(keys.user_options(user_id), name.lower().lstrip("-")))

    # -- a channel's -----------------------------------------------------------------
    def channel(self, channel_id: int | None) -> ChannelDefaults:
        if channel_id is None:
            return ChannelDefaults()
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(keys.channel_settings(channel_id)).items()}
        limits = DEFAULT_LIMITS
        if "limits" in raw:
            data = json.loads(raw["limits"])
            known = {f.name for f in fields(PromptLimits)}
            changes = {k: (Fraction(v) if k.endswith("aspect") else int(v)) for k, v in data.items() if k in known}
            limits = replace(DEFAULT_LIMITS, **changes)
        return ChannelDefaults(defaults=raw.get("defaults", ""), limits=limits)

    def set_channel(
        self, channel_id: int, defaults: str | None = None, limits: dict[str, str] | None = None
    ) -> ChannelDefaults:
        """/admin defaults: the channel's default flags (`""`: none) and limits
        (`max_steps`, `max_repeat`, `max_jobs`, `confirm_above`, `min_aspect`/`max_aspect` as W:H)."""
        key = keys.channel_settings(channel_id)
        current = self.channel(channel_id)
        new_limits = current.limits
        if limits:
            changes: dict[str, object] = {}
            for name, value in limits.items():
                if name not in {f.name for f in fields(PromptLimits)}:
                    raise InvalidRequest(f"There is no limit `{name}`. Limits: {', '.join(_limit_names())}.")
                try:
                    changes[name] = Fraction(value.replace(":", "/")) if name.endswith("aspect") else int(value)
                except (ValueError, ZeroDivisionError):
                    raise InvalidRequest(f"The limit `{name}` needs a number (ratios as W:H), not `{value}`.") from None
                if changes[name] <= 0:  # type: ignore[operator]
                    raise InvalidRequest(f"The limit `{name}` must be above 0, not `{value}`.")
            new_limits = replace(current.limits, **changes)  # type: ignore[arg-type]
            if new_limits.min_aspect > 1 or new_limits.max_aspect < 1:
                raise InvalidRequest("The aspect-ratio range must include 1:1 (min_aspect ≤ 1 ≤ max_aspect).")
            stored = {k: str(v) for k, v in asdict(new_limits).items()}
            self._redis.hset(key, "limits", json.dumps(stored))
        if defaults is not None:
            defaults = " ".join(defaults.split())
            if defaults:
                self._redis.hset(key, "defaults", check_flags(defaults, "The channel's defaults", new_limits))
            else:
                self._redis.hdel(key, "defaults")
        return self.channel(channel_id)


def _limit_names() -> list[str]:
    return [f.name for f in fields(PromptLimits)]


PENDING_TTL_S = 600  # how long a prompt waits for its author's ✅ (bot/confirm.py)


@redis_errors
class PendingPrompts:
    """Prompts waiting for their author's confirmation, by a random token."""

    def __init__(self, conn: redis.Redis) -> None:
        self._redis = conn

    def keep(self, text: str, user_id: int, channel_id: int | None) -> str:
        token = secrets.token_hex(16)
        data = json.dumps({"text": text, "user_id": user_id, "channel_id": channel_id})
        self._redis.set(keys.pending_prompt(token), data, ex=PENDING_TTL_S)
        return token

    def take(self, token: str) -> dict | None:
        """The pending prompt, removed (a second click finds nothing), or None."""
        raw = self._redis.getdel(keys.pending_prompt(token))
        return json.loads(raw) if raw is not None else None

    def peek(self, token: str) -> dict | None:
        raw = self._redis.get(keys.pending_prompt(token))
        return json.loads(raw) if raw is not None else None
