"""One settings object, read from the environment once and passed down.

The table of variables is the dataclass below: each field names its
environment variable, its default and its help in one `setting(...)`, and
`Settings.from_env` reads them all the same way. `.env.example` and the
README's configuration table are checked against it by the tests, so a new
variable cannot go undocumented. A value that cannot be used is a
`ConfigError` naming the variable (the host's mistake, not a user's)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from shared.errors import ConfigError

DISCORD_API_BASE = "https://discord.com/api/v10"
INTERACTION_TOKEN_LIFETIME_S = 15 * 60  # Discord's fixed lifetime
# The worker stops using the interaction token this long before it expires:
# an upload started at 14:59 must not fail half way.
TOKEN_SAFETY_MARGIN_S = 30
RECORD_TTL_S = 365 * 24 * 60 * 60  # job records (small) outlive the images
MAX_PROMPT_CHARS = 1000
QUANTIZE_CHOICES = ("none", "int8", "fp8")  # the denoiser's weights (worker/engines/speed.py)


def token_safety_margin(lifetime_s: float) -> float:
    """30 s for Discord's 15 minutes; a tenth of a lifetime that tests shorten."""
    return min(TOKEN_SAFETY_MARGIN_S, lifetime_s / 10)


def load_dotenv(path: str = ".env") -> list[str]:
    """Read KEY=VALUE lines from `path` into os.environ, never overriding what
    the environment already says. A tiny reader: no quotes, no expansion
    (the same subset docker compose's env_file reads identically)."""
    loaded: list[str] = []
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


# -- how a value is read -------------------------------------------------------------
# Each parser takes the raw text and raises ValueError with what it expected.
def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("a whole number") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("a number") from None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("true or false")


def _snowflake(raw: str) -> int:
    if not raw.strip().isdigit():
        raise ValueError("a Discord id (digits)")
    return int(raw)


def _snowflakes(raw: str) -> frozenset[int]:
    parts = raw.replace(",", " ").split()
    if not all(p.isdigit() for p in parts):
        raise ValueError("Discord user ids separated by commas")
    return frozenset(int(p) for p in parts)


def _names(raw: str) -> frozenset[str]:
    return frozenset(p for p in raw.replace(",", " ").split())


def _strength(raw: str) -> float:
    value = _float(raw)
    if not 0.0 < value <= 1.0:
        raise ValueError("a strength between 0 and 1 (e.g. 0.4)")
    return value


def _positive(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def read(raw: str) -> Any:
        value = parse(raw)
        if value <= 0:
            raise ValueError("a number above 0")
        return value

    return read


def _switch(raw: str) -> bool | None:
    """true / false, or `auto` (None): the worker decides by its device (on on CUDA)."""
    if raw.strip().lower() == "auto":
        return None
    try:
        return _bool(raw)
    except ValueError:
        raise ValueError("true, false or auto") from None


def _quantize(raw: str) -> str:
    value = raw.strip().lower()
    if value not in QUANTIZE_CHOICES:
        raise ValueError(" or ".join(QUANTIZE_CHOICES))
    return value


def _threshold(raw: str) -> float:
    value = _float(raw)
    if not 0.0 <= value < 1.0:
        raise ValueError("a threshold from 0 (off) to below 1 (e.g. 0.1)")
    return value


def _hosts(raw: str) -> frozenset[str]:
    hosts = frozenset(h.strip().lower().rstrip("/") for h in raw.split(",") if h.strip())
    if not hosts:
        raise ValueError("a comma-separated list of host names")
    return hosts


def _url(raw: str) -> str:
    return raw.strip().rstrip("/")


def _candidates(raw: str) -> int:
    value = _int(raw)
    if not 4 <= value <= 64:
        raise ValueError("a whole number from 4 (no re-ranking) to 64")
    return value


def setting(env: str, default: Any, help: str, parse: Callable[[str], Any] = str, *, secret: bool = False) -> Any:
    """A field of Settings read from the variable `env`. An empty value means
    the default, as in docker compose's `.env` (where `NAME=` is common)."""
    return field(default=default, repr=not secret, metadata={"env": env, "help": help, "parse": parse})


@dataclass(frozen=True)
class Settings:
    # -- Redis
    redis_url: str = setting("REDIS_URL", "redis://127.0.0.1:6379/0", "where bot, workers and the CLI meet")
    queue_name: str = setting("DAYDREAM_QUEUE", "daydream", "prefix of the RQ queues (one per model and lane)")
    # -- Discord
    discord_token: str = setting(
        "DISCORD_TOKEN",
        "",
        "the bot token (bot, and workers for channel posts after 15 min); never logged",
        secret=True,
    )
    discord_guild_id: int | None = setting(
        "DISCORD_GUILD_ID", None, "sync commands to this server only (instant; for development)", _snowflake
    )
    discord_api_base: str = setting(
        "DISCORD_API_BASE", DISCORD_API_BASE, "another Discord-compatible API (the test stand-in)", _url
    )
    discord_gateway_url: str | None = setting(
        "DISCORD_GATEWAY_URL", None, "override the gateway URL that `GET /gateway/bot` returns"
    )
    admin_user_ids: frozenset[int] = setting(
        "DAYDREAM_ADMIN_IDS", frozenset(), "Discord user ids with admin rights in Daydream", _snowflakes
    )
    admin_role_ids: frozenset[int] = setting(
        "DAYDREAM_ADMIN_ROLE_IDS", frozenset(), "role ids whose members have admin rights in Daydream", _snowflakes
    )
    clicks_by_requester_only: bool = setting(
        "CLICKS_BY_REQUESTER_ONLY", False, "only the requester (or an admin) may click a result's buttons", _bool
    )
    # -- model and device (workers); MODEL is also the model new jobs name
    model: str = setting(
        "MODEL", "embedded", "a name in the fleet file, `embedded`, or a diffusers folder / hub id (README: Models)"
    )
    device: str = setting("DEVICE", "auto", "`cuda:0`, `cpu`, … (`daydream worker --device` overrides)")
    cpu_threads: int = setting(
        "CPU_THREADS", 0, "threads a worker on the CPU uses (0: every core; 1 each for two workers on two cores)", _int
    )
    models_file: str | None = setting(
        "MODELS_FILE", None, "the fleet file: model names → folder or hub id, family, defaults, lanes, LoRAs"
    )
    lora_dir: str | None = setting("LORA_DIR", None, "LoRAs: `<LORA_DIR>/<architecture>/<name>.safetensors`")
    cpu_offload: bool = setting(
        "CPU_OFFLOAD", False, "keep each model part on the CPU until it runs (small GPUs; slower)", _bool
    )
    vae_tiling_pixels: int = setting(
        "VAE_TILING_PIXELS",
        2048 * 2048,
        "decode images with more pixels than this in tiles (less GPU memory; 0: always)",
        _int,
    )
    # -- speed on a GPU (worker/engines/speed.py; README: Performance); auto: on on CUDA, off elsewhere
    bf16: bool | None = setting(
        "DAYDREAM_BF16", None, "bf16 weights (auto: on CUDA GPUs with bf16; false: fp16, diffusers' default)", _switch
    )
    channels_last: bool | None = setting(
        "CHANNELS_LAST", None, "channels-last memory layout for the UNet and VAE convolutions (auto: on CUDA)", _switch
    )
    torch_compile: bool | None = setting(
        "COMPILE",
        None,
        "torch.compile the denoiser, warmed up at every --ar size before jobs are taken (auto: on CUDA)",
        _switch,
    )
    fuse_qkv: bool | None = setting(
        "FUSE_QKV", None, "fuse the attention's query, key and value projections (auto: on CUDA)", _switch
    )
    cuda_graphs: bool = setting(
        "CUDA_GRAPHS", False, "with COMPILE: replay CUDA graphs (torch.compile mode reduce-overhead)", _bool
    )
    quantize: str = setting(
        "QUANTIZE", "none", "the denoiser's weights in int8 or fp8 (needs torchao; none: bf16/fp16)", _quantize
    )
    step_cache: float = setting(
        "STEP_CACHE",
        0.0,
        "first-block cache threshold for transformer models (FLUX.1 …): skip a step's rest when it changes less",
        _threshold,
    )
    deep_cache: int = setting(
        "DEEP_CACHE",
        0,
        "UNet models (SD, SDXL): run the whole UNet every N steps, only its outer blocks between (0: off; e.g. 3)",
        _int,
    )
    latent_previews: bool = setting(
        "LATENT_PREVIEWS", True, "progress previews from the latents without a VAE decode (false: decode them)", _bool
    )
    # -- limits and timings
    result_ttl_s: int = setting(
        "RESULT_TTL_S", 7 * 24 * 3600, "how long images stay in Redis; after that U/V regenerate them", _positive(_int)
    )
    queued_job_ttl_s: int = setting(
        "QUEUED_JOB_TTL_S", 3600, "a job still waiting after this is dropped, with a message", _positive(_int)
    )
    job_timeout_s: int = setting("JOB_TIMEOUT_S", 600, "RQ's limit for one job", _positive(_int))
    token_lifetime_s: int = setting(
        "INTERACTION_TOKEN_LIFETIME_S",
        INTERACTION_TOKEN_LIFETIME_S,
        "Discord's token lifetime (shortened only by tests)",
        _positive(_int),
    )
    max_running_per_user: int = setting(
        "MAX_RUNNING_PER_USER", 3, "jobs a user may have running at once; more wait (Job queued)", _positive(_int)
    )
    max_queued_per_user: int = setting(
        "MAX_QUEUED_PER_USER", 10, "jobs a user may have waiting; more are refused (Queue full)", _positive(_int)
    )
    progress_interval_s: float = setting(
        "PROGRESS_INTERVAL_S", 2.0, "at most one progress edit per this many seconds", _float
    )
    upload_limit_bytes: int = setting(
        "UPLOAD_LIMIT_BYTES", 10 * 1024 * 1024, "PNG → WebP → JPEG to stay under it", _positive(_int)
    )
    worker_heartbeat_s: int = setting(
        "WORKER_HEARTBEAT_S", 5, "a worker is dead after 3 missed heartbeats", _positive(_int)
    )
    # -- image-to-image strengths of the buttons (0 keeps the image, 1 ignores it)
    vary_strong: float = setting("VARY_STRONG", 0.75, "V1–V4 and Vary (Strong)", _strength)
    vary_subtle: float = setting("VARY_SUBTLE", 0.4, "Vary (Subtle) and `daydream vary --subtle`", _strength)
    upscale_subtle: float = setting("UPSCALE_SUBTLE", 0.25, "U1–U4 and Upscale (Subtle)", _strength)
    upscale_creative: float = setting("UPSCALE_CREATIVE", 0.5, "Upscale (Creative)", _strength)
    # -- image inputs: /imagine's images, /blend, /describe (shared/uploads.py)
    input_max_bytes: int = setting(
        "INPUT_MAX_BYTES", 10 * 1024 * 1024, "the largest input image (attachment or link) accepted", _positive(_int)
    )
    input_max_pixels: int = setting(
        "INPUT_MAX_PIXELS",
        4096 * 4096,
        "the most pixels an input image may have (read before decoding)",
        _positive(_int),
    )
    input_timeout_s: float = setting(
        "INPUT_TIMEOUT_S", 10.0, "a download of an input image is given up after this many seconds", _float
    )
    input_hosts: frozenset[str] = setting(
        "INPUT_HOSTS",
        frozenset({"cdn.discordapp.com", "media.discordapp.net"}),
        "the only hosts input images are fetched from (Discord's CDN); `http://host:port` for a local stand-in",
        _hosts,
    )
    describe_model: str = setting(
        "DESCRIBE_MODEL", "", "a captioning model (BLIP, a folder or hub id) for /describe on diffusers models"
    )
    # -- moderation (README: Moderation); each server's admins adjust theirs with /admin
    wordfilter_file: str | None = setting(
        "WORDFILTER_FILE", None, "the default word filter: one rule a line (replaces Daydream's short list)"
    )
    image_check: bool = setting(
        "IMAGE_CHECK", True, "score results outside NSFW channels with the open_nsfw classifier (workers)", _bool
    )
    nsfw_threshold: float = setting(
        "NSFW_THRESHOLD", 0.6, "an image scoring this or more is flagged (servers may set their own)", _strength
    )
    dm_image_policy: str = setting(
        "DM_IMAGE_POLICY", "blur", "flagged images in DMs with the bot: allowed, blur or refuse"
    )
    strike_window_s: int = setting(
        "STRIKE_WINDOW_S",
        24 * 3600,
        "blocked prompts within this many seconds count towards a cooldown",
        _positive(_int),
    )
    cooldown_minutes: str = setting(
        "COOLDOWN_MINUTES", "1,60,600", "cooldowns after the 2nd, 3rd, 4th+ blocked prompt in the window"
    )
    autoscaled_models: frozenset[str] = setting(
        "AUTOSCALED_MODELS",
        frozenset(),
        "models whose workers scale from zero (KEDA): their jobs are taken with no worker alive, and wait for one",
        _names,
    )
    # -- observing
    metrics_port: int = setting(
        "METRICS_PORT", 0, "serve Prometheus metrics on this port (bot, worker; 0: off; `--metrics-port`)", _int
    )
    # -- best four of N (worker/best_of.py)
    best_of: int = setting(
        "BEST_OF",
        8,
        "a grid samples this many candidates and keeps the four closest to the prompt (4: off)",
        _candidates,
    )
    rank_clip: str = setting(
        "RANK_CLIP", "", "a CLIP model folder or hub id that ranks a real checkpoint's candidates (empty: no ranking)"
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                shown = "(hidden)" if not f.repr else repr(raw)
                raise ConfigError(f.metadata["env"], f"{f.metadata['env']} must be {exc}, got {shown}.") from None
        return cls(**values)

    @classmethod
    def variables(cls) -> list[tuple[str, Any, str]]:
        """(variable, default, help) for every setting: the table the docs are checked against."""
        return [(f.metadata["env"], f.default, f.metadata["help"]) for f in fields(cls)]
