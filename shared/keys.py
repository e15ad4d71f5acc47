"""The Redis key layout, in one place. Everything Daydream stores is under
`daydream:` so an admin can see (and flush) it at a glance; RQ keeps its own
keys under `rq:` (queues are named by shared/dispatch.py).

Only the store's modules (store, images, claims, leases, dispatch) touch
Redis; they build every key here."""

from __future__ import annotations

PREFIX = "daydream"

# The job function RQ runs, by dotted name: the bot never imports torch.
JOB_FUNC = "worker.pipeline.run_job"
# What jobs queued before the pipeline moved name. Keep `worker.jobs.run_job`
# importable until queues of those versions have drained.
LEGACY_JOB_FUNC = "worker.jobs.run_job"


# -- job records and their signals ---------------------------------------------------
def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def events(job_id: str) -> str:
    """Pub/sub channel: 'update', 'cancel', 'done' for waiters of one job."""
    return f"{PREFIX}:events:{job_id}"


def done_signal(job_id: str) -> str:
    """A list the worker pushes to when the job ends; waiters BLPOP it."""
    return f"{PREFIX}:done:{job_id}"


def cancel(job_id: str) -> str:
    return f"{PREFIX}:cancel:{job_id}"


def user_active(user_id: int) -> str:
    """Set of a user's jobs waiting or running (their limit counts it)."""
    return f"{PREFIX}:user:{user_id}:active"


RECENT = f"{PREFIX}:recent"  # list of recent job ids, newest first
QUEUED = f"{PREFIX}:queued"  # sorted set: waiting job ids by enqueue time (the expiry sweep reads it)
RUNNING = f"{PREFIX}:running"  # set: job ids a worker has started (the recovery sweep reads it)


# -- images ----------------------------------------------------------------------
def image(job_id: str, index: int) -> str:
    return f"{PREFIX}:image:{job_id}:{index}"


def grid(job_id: str) -> str:
    return f"{PREFIX}:grid:{job_id}"


def input_image(job_id: str, name: str) -> str:
    return f"{PREFIX}:input:{job_id}:{name}"


# -- small protocols (shared/claims.py) -----------------------------------------------
def delivered(job_id: str) -> str:
    """Set once the result is posted: {message_id, message_url}. Named `delivery`
    since the first version: posted results of older versions keep it."""
    return f"{PREFIX}:delivery:{job_id}"


REDELIVER = f"{PREFIX}:redeliver"  # sorted set: job id → when its post is next tried (shared/redelivery.py)


def redeliver(job_id: str) -> str:
    """A result Discord failed to take, kept for another try: data, content, buttons, tries."""
    return f"{PREFIX}:redeliver:{job_id}"


def child(parent_id: str, action: str, index: int) -> str:
    """The job that a button click on a parent made (so a second click reuses it)."""
    return f"{PREFIX}:child:{parent_id}:{action}:{index}"


def message(message_id: int) -> str:
    """The job a Discord message shows (a waiting line has no buttons to read it from)."""
    return f"{PREFIX}:message:{message_id}"


def rate_limit(route: str) -> str:
    """Set (with a PX expiry) while Discord asked every worker to hold `route`."""
    return f"{PREFIX}:ratelimit:{route}"


def invalid_requests(window: int) -> str:
    """Count of 401/403/429 answers in one 10-minute window (Discord bans an IP at 10,000)."""
    return f"{PREFIX}:invalid:{window}"


def shown(job_id: str) -> str:
    """What a waiting line says now, so it is edited only when that changes."""
    return f"{PREFIX}:shown:{job_id}"


def sweep(kind: str, job_id: str, attempt: int | None = None) -> str:
    """One live worker claims each recovery or expiry of a job, not all of them."""
    suffix = "" if attempt is None else f":{attempt}"
    return f"{PREFIX}:{kind}:{job_id}{suffix}"


# -- leases (shared/leases.py) and the pick (shared/dispatch.py) ------------------------
def lease(job_id: str) -> str:
    """Hash: the worker holding the job, its attempt, its RQ id and queue."""
    return f"{PREFIX}:lease:{job_id}"


LEASES = f"{PREFIX}:leases"  # sorted set: job id → lease expiry (ms)


def held(worker: str) -> str:
    """Set: the jobs a worker holds a lease on (its heartbeat renews them)."""
    return f"{PREFIX}:held:{worker}"


def fair(model: str, lane: str, tier: str) -> str:
    """The fair index of one (model, lane, tier) (shared/scheduler.py): `<base>:users`
    (users waiting, by turn), `<base>:clock` (turns served), `<base>:arrivals` (users who came),
    `<base>:u:<user>` (their jobs)."""
    return f"{PREFIX}:fair:{model}:{lane}:{tier}"


def fair_users(base: str) -> str:
    return f"{base}:users"


def fair_clock(base: str) -> str:
    return f"{base}:clock"


def fair_arrivals(base: str) -> str:
    return f"{base}:arrivals"


def fair_user_list(base: str, user: str) -> str:
    return f"{base}:u:{user}"


def user_busy(user: str) -> str:
    """Set: the jobs a user has running (their running cap counts it)."""
    return f"{PREFIX}:busy:{user}"


CAPS_RUNNING = f"{PREFIX}:caps:running"  # hash: user → the running cap in force for them (written at submit)
LIMITS_BY_USER = f"{PREFIX}:limits:user"  # hash: user → {"running", "queued"} an admin set (shared/policy.py)
LIMITS_BY_ROLE = f"{PREFIX}:limits:role"  # hash: role → the same
LANE_GRANTS_BY_USER = f"{PREFIX}:lanes:user"  # hash: user → "turbo" (granted) or "relax" (imposed)
LANE_GRANTS_BY_ROLE = f"{PREFIX}:lanes:role"  # hash: role → the same
LANE_PREFERENCES = f"{PREFIX}:lanes:default"  # hash: user → the lane /fast, /relax, /turbo chose
DURATIONS = f"{PREFIX}:durations"  # hash: "<model>:<w>x<h>" → moving average of run seconds (ETAs)


def usage(user: str) -> str:
    """Hash: a user's GPU seconds: total, lane:<lane>, day:<date>, day:<date>:<lane> (shared/usage.py)."""
    return f"{PREFIX}:usage:{user}"


PAUSED = f"{PREFIX}:paused"  # set: lanes no job starts in ("*": every lane)
RELAX_USAGE = f"{PREFIX}:usage:relax"  # hash: user → decayed GPU seconds "value:stamp" (the relax order)


def bell(model: str) -> str:
    """A list enqueue pushes to, so idle workers of the model wake at once (BLPOP)."""
    return f"{PREFIX}:bell:{model}"


# -- workers and models (shared/dispatch.py) ------------------------------------------
def worker_heartbeat(name: str) -> str:
    return f"{PREFIX}:worker:{name}"


WORKERS = f"{PREFIX}:workers"  # set of worker names; each has a heartbeat key with a TTL


def model_spec(name: str) -> str:
    """The ModelSpec the workers holding model `name` announce (a TTL'd JSON)."""
    return f"{PREFIX}:model:{name}"


def model_spec_known(name: str) -> str:
    """The last ModelSpec announced for model `name`, kept after its workers stop (for `--dry-run`)."""
    return f"{PREFIX}:model-known:{name}"


def tokenizer(digest: str) -> str:
    """A model's tokenizer, by the digest its ModelSpec names (shared/tokens.py)."""
    return f"{PREFIX}:tokenizer:{digest}"


# -- moderation (shared/moderation.py); `scope` is a guild id, or "dm" for DMs with the bot ----
def mod_rules(scope: str) -> str:
    """Set: the word filter rules a server added."""
    return f"{PREFIX}:mod:{scope}:rules"


def mod_rules_dropped(scope: str) -> str:
    """Set: the default rules a server removed."""
    return f"{PREFIX}:mod:{scope}:dropped"


def mod_settings(scope: str) -> str:
    """Hash: modlog (channel id), threshold (NSFW score)."""
    return f"{PREFIX}:mod:{scope}:settings"


def mod_channels(scope: str) -> str:
    """Hash: channel id → {"images": allowed|blur|refuse, "spoiler": bool}."""
    return f"{PREFIX}:mod:{scope}:channels"


def mod_bans(scope: str) -> str:
    """Hash: user id → {"reason", "by", "at", "told"}."""
    return f"{PREFIX}:mod:{scope}:bans"


def mod_strikes(scope: str, user_id: int) -> str:
    """Sorted set: a user's blocked prompts by time (the escalation window)."""
    return f"{PREFIX}:mod:{scope}:strikes:{user_id}"


def mod_cooldown(scope: str, user_id: int) -> str:
    """The time (epoch s) a user's cooldown ends."""
    return f"{PREFIX}:mod:{scope}:cooldown:{user_id}"


def mod_case(job_id: str) -> str:
    """A blocked (held) job and its case: the rule, the appeal's state, the mod log message."""
    return f"{PREFIX}:mod:case:{job_id}"


def mod_told(scope: str) -> str:
    """Set: banned users already told why (SADD answers 1 only the first time)."""
    return f"{PREFIX}:mod:{scope}:told"


# -- personal settings and channel defaults (shared/preferences.py) --------------------
def user_settings(user_id: int) -> str:
    """Hash: a user's /settings (model, stylize, quality, remix, raw) and /prefer suffix."""
    return f"{PREFIX}:settings:user:{user_id}"


def user_options(user_id: int) -> str:
    """Hash: a user's /prefer option macros, name → the flags it stands for."""
    return f"{PREFIX}:settings:user:{user_id}:options"


def channel_settings(channel_id: int) -> str:
    """Hash: a channel's defaults (flags) and limits an admin set (/admin defaults)."""
    return f"{PREFIX}:settings:channel:{channel_id}"


def pending_prompt(token: str) -> str:
    """A prompt waiting for its author's ✅ (more jobs than the channel's confirm threshold)."""
    return f"{PREFIX}:pending:{token}"
