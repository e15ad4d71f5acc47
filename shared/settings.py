"""One settings object, read from the environment once and passed down.

Every variable is documented in `.env.example` and the README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from shared.errors import InvalidRequest

DISCORD_API_BASE = "https://discord.com/api/v10"
INTERACTION_TOKEN_LIFETIME_S = 15 * 60  # Discord's fixed lifetime
# The worker stops using the interaction token this long before it expires:
# an upload started at 14:59 must not fail half way.
TOKEN_SAFETY_MARGIN_S = 30


def token_safety_margin(lifetime_s: float) -> float:
    """30 s for Discord's 15 minutes; a tenth of a lifetime that tests shorten."""
    return min(TOKEN_SAFETY_MARGIN_S, lifetime_s / 10)


QUEUED_JOB_TTL_S = 60 * 60  # a request still waiting after an hour is dropped, with a message
JOB_TIMEOUT_S = 10 * 60
RESULT_TTL_S = 7 * 24 * 60 * 60  # images kept this long; regenerated from seeds after
RECORD_TTL_S = 365 * 24 * 60 * 60  # job records (small) outlive the images
WORKER_HEARTBEAT_S = 5
MAX_PROMPT_CHARS = 1000
MAX_QUEUED_PER_USER = 5
PROGRESS_EDIT_INTERVAL_S = 2.0
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024


def load_dotenv(path: str = ".env") -> list[str]:
    """Read KEY=VALUE lines from `path` into os.environ, never overriding what
    the environment already says. A tiny reader: no quotes, no expansion
    (the same subset docker compose's env_file reads identically)."""
    loaded = []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return loaded
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key and key not in os.environ:
            os.environ[key] = value.strip()
            loaded.append(key)
    return loaded


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, got {raw!r}.") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, got {raw!r}.") from None


def _strength(name: str, default: float) -> float:
    value = _env_float(name, default)
    if not 0.0 < value <= 1.0:
        raise InvalidRequest(f"{name} must be a strength between 0 and 1 (e.g. 0.4), got {value}.")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    discord_token: str = field(default="", repr=False)  # never printed
    discord_guild_id: int | None = None
    discord_api_base: str = DISCORD_API_BASE
    discord_gateway_url: str | None = None
    model: str = "embedded"
    device: str = "auto"
    queue_name: str = "daydream"
    result_ttl_s: int = RESULT_TTL_S
    queued_job_ttl_s: int = QUEUED_JOB_TTL_S
    job_timeout_s: int = JOB_TIMEOUT_S
    token_lifetime_s: int = INTERACTION_TOKEN_LIFETIME_S
    max_queued_per_user: int = MAX_QUEUED_PER_USER
    progress_interval_s: float = PROGRESS_EDIT_INTERVAL_S
    upload_limit_bytes: int = UPLOAD_LIMIT_BYTES
    worker_heartbeat_s: int = WORKER_HEARTBEAT_S
    clicks_by_requester_only: bool = False
    # Image-to-image strengths of the buttons (0 keeps the image, 1 ignores it).
    vary_strong: float = 0.75
    vary_subtle: float = 0.4
    upscale_subtle: float = 0.25
    upscale_creative: float = 0.5
    admin_user_ids: frozenset[int] = frozenset()

    @classmethod
    def from_env(cls) -> Settings:
        guild = os.environ.get("DISCORD_GUILD_ID", "").strip()
        admins = os.environ.get("DAYDREAM_ADMIN_IDS", "")
        try:
            admin_ids = frozenset(int(a) for a in admins.replace(",", " ").split())
        except ValueError:
            raise InvalidRequest(
                f"DAYDREAM_ADMIN_IDS must be Discord user ids separated by commas, got {admins!r}."
            ) from None
        if guild and not guild.isdigit():
            raise InvalidRequest(f"DISCORD_GUILD_ID must be a server id (digits), got {guild!r}.")
        return cls(
            redis_url=os.environ.get("REDIS_URL", cls.redis_url),
            discord_token=os.environ.get("DISCORD_TOKEN", ""),
            discord_guild_id=int(guild) if guild else None,
            discord_api_base=os.environ.get("DISCORD_API_BASE", DISCORD_API_BASE).rstrip("/"),
            discord_gateway_url=os.environ.get("DISCORD_GATEWAY_URL") or None,
            model=os.environ.get("MODEL", cls.model),
            device=os.environ.get("DEVICE", cls.device),
            queue_name=os.environ.get("DAYDREAM_QUEUE", cls.queue_name),
            result_ttl_s=_env_int("RESULT_TTL_S", RESULT_TTL_S),
            queued_job_ttl_s=_env_int("QUEUED_JOB_TTL_S", QUEUED_JOB_TTL_S),
            job_timeout_s=_env_int("JOB_TIMEOUT_S", JOB_TIMEOUT_S),
            token_lifetime_s=_env_int("INTERACTION_TOKEN_LIFETIME_S", INTERACTION_TOKEN_LIFETIME_S),
            max_queued_per_user=_env_int("MAX_QUEUED_PER_USER", MAX_QUEUED_PER_USER),
            progress_interval_s=_env_float("PROGRESS_INTERVAL_S", PROGRESS_EDIT_INTERVAL_S),
            upload_limit_bytes=_env_int("UPLOAD_LIMIT_BYTES", UPLOAD_LIMIT_BYTES),
            worker_heartbeat_s=_env_int("WORKER_HEARTBEAT_S", WORKER_HEARTBEAT_S),
            clicks_by_requester_only=os.environ.get("CLICKS_BY_REQUESTER_ONLY", "").lower() in {"1", "true", "yes"},
            admin_user_ids=admin_ids,
            vary_strong=_strength("VARY_STRONG", 0.75),
            vary_subtle=_strength("VARY_SUBTLE", 0.4),
            upscale_subtle=_strength("UPSCALE_SUBTLE", 0.25),
            upscale_creative=_strength("UPSCALE_CREATIVE", 0.5),
        )

    def describe(self) -> dict[str, object]:
        """Settings for logs and `daydream status`, with the token masked."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "discord_token":
                value = "set" if value else "unset"
            elif f.name == "redis_url" and "@" in str(value):
                # redis://user:password@host — keep the host, drop the secret.
                value = "redis://***@" + str(value).rsplit("@", 1)[1]
            out[f.name] = value
        return out
