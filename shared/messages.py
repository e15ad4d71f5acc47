"""Every line a Discord user reads about a job, in one place: the status line
(`**prompt** - @user (…)`) in its waiting, progress, result and failure forms,
the DM under ✉️, file names, and the fixed answers of the bot and workers.

Errors that carry data build their own text (shared/errors.py); the prompt
parser's messages come from its flag table (shared/params.py)."""

from __future__ import annotations

from shared.job import JobKind, JobRecord, ReplyTarget
from shared.understood_messages import EMBEDDED_WORLD, understood_line  # noqa: F401 - EMBEDDED_WORLD: its callers read it here

GENERIC_ERROR = (
    "Something went wrong on our side, so your request was not completed. "
    "Try again in a moment; if it keeps happening, tell a server admin."
)
NOT_QUEUED = "This request could not be queued."  # replaces a public "thinking…" before the private reason
UNKNOWN_BUTTON = "This button is not one Daydream knows. Run `/imagine` again."
CANCELLED_BEFORE_START = "Cancelled before it started."
CANCELLED_WHILE_RUNNING = "Cancelled while running."
OUT_OF_MEMORY = "The GPU ran out of memory for this size. Try a smaller --ar or fewer steps."
PARENT_GONE = (
    "The job behind this button no longer exists (it expired or was deleted), "
    "so there is nothing to work from. Run `/imagine` again."
)
PREVIEW_FILENAME = "preview.png"
NOTHING_TO_CANCEL = "You have no job waiting or running, so there is nothing to cancel."
NOT_AN_ADMIN = (
    "Only Daydream's admins can do that: members with Manage Server or Administrator here, "
    "or those the host named (DAYDREAM_ADMIN_IDS, DAYDREAM_ADMIN_ROLE_IDS)."
)


# -- the status line -----------------------------------------------------------
def title(job: JobRecord) -> str:
    """How Discord messages name a job: `**prompt**` (`**/blend** (2 images)` without one)."""
    if not job.prompt:
        named = wordless_title(job)
        if named is not None:
            return named
    return f"**{job.prompt}**"


def mention(job: JobRecord) -> str:
    return f"<@{job.user_id}>" if job.user_id else "(command line)"


def status_line(job: JobRecord, status: str) -> str:
    """`**<prompt>** - <@user> (<status>)`: the one form of every waiting and progress line."""
    return f"{title(job)} - {mention(job)} ({status})"


def lane_label(lane: str) -> str:
    """How messages name a lane, as Midjourney does: (fast), (relaxed), (turbo)."""
    return {"relax": "relaxed"}.get(lane, lane)


def waiting(
    job: JobRecord,
    position: int | None,
    eta_s: float | None = None,
    *,
    running: int | None = None,
    paused: bool = False,
) -> str:
    """The line the worker later replaces with progress, then the result:
    `(Waiting to start, #3 in queue, ~40 s)`; `Job queued` while the user's
    running jobs are at their cap."""
    head = f"Job queued: {running} of your jobs are running" if running else "Waiting to start"
    parts = [head]
    if position:
        parts.append(f"#{position} in queue")
    if eta_s is not None and not paused:
        parts.append(f"~{duration(eta_s)}")
    text = ", ".join(parts)
    if paused:
        text += " — the queue is paused by an admin; it starts when they resume it"
    return status_line(job, text)


def duration(seconds: float) -> str:
    """A wait as people say it: 40 s, 3 min, 1 h 5 min."""
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def progress(job: JobRecord, fraction: float) -> str:
    return status_line(job, f"{round(min(max(fraction, 0.0), 1.0) * 100)}%")


def result(job: JobRecord) -> str:
    """The content above a finished result, as Midjourney words it per kind, with its lane."""
    lane = f" ({lane_label(job.lane)})"
    if job.kind == JobKind.UPSCALE:
        return f"{title(job)} - Image #{job.index} {mention(job)}{lane}"
    if getattr(job, "remix", None):  # the Remix modal edited it (bot/remix.py)
        return f"{title(job)} - Remix ({str(job.remix).title()}) by {mention(job)}{lane}"
    if job.kind == JobKind.VARIATION:
        return f"{title(job)} - Variations by {mention(job)}{lane}"
    if job.kind in EDIT_TITLES:
        return f"{title(job)} - {edit_title(job)} by {mention(job)}{lane}"
    return f"{title(job)} - {mention(job)}{lane}{understood_line(job)}"


def failed(job: JobRecord, reason: str) -> str:
    return f"{title(job)} - {mention(job)} — failed: {reason}"


def cancelled_by(job: JobRecord, canceller_id: int) -> str:
    """Replaces a waiting line whose job was cancelled before any worker touched it."""
    return f"{title(job)} - {mention(job)} — cancelled by <@{canceller_id}>."


def cancel_refused(job: JobRecord) -> str:
    return f"Only the person who asked for this job ({mention(job)}) or an admin can cancel it."


def already_ended(job: JobRecord) -> str:
    return f"That job has already ended ({job.state}), so there is nothing to cancel."


def cancelled_privately(job: JobRecord, was_waiting: bool) -> str:
    if was_waiting:
        return f"Cancelled {title(job)}: it will not run."
    return f"Stopping {title(job)}: it ends at its next sampling step."


def cancel_reason(canceller_id: int) -> str:
    """The error text on the record of a job someone cancelled."""
    return f"Cancelled by <@{canceller_id}>."


def file_stem(job: JobRecord) -> str:
    return f"daydream_{job.id[:8]}"


# -- the DM under ✉️ ---------------------------------------------------------------
def dm(job: JobRecord, *, expired: bool) -> str:
    """The prompt, the job id and the seeds, as in Midjourney."""
    lines = [title(job), f"Job ID: `{job.id}`"]
    if job.kind == JobKind.UPSCALE:
        lines.append(f"Seed: {job.seeds[0]}" if job.seeds else "Seed: unknown")
        if job.parent_id:
            lines.append(f"Image #{job.index} of job `{job.parent_id}`")
    else:
        lines.append("Seeds: " + ", ".join(f"{seed} (#{i})" for i, seed in enumerate(job.seeds, start=1)))
    if expired:
        again = (
            f"click U{job.index} under the grid it came from"
            if job.kind == JobKind.UPSCALE and job.index
            else "click U1–U4 or V1–V4 under it"
        )
        lines.append(f"The images have expired from storage; {again} to make them again from these seeds.")
    return "\n".join(lines)


# -- clicks ------------------------------------------------------------------------
def earlier_upscale(earlier: JobRecord | None, index: int) -> str:
    """A second click on U<index>: point to the upscale the first one made."""
    link = message_link(earlier.reply) if earlier else None
    if earlier is not None and earlier.state == "done":
        head = f"Image #{index} was already upscaled"
    else:
        head = f"Image #{index} is already being upscaled"
    return f"{head}: {link}" if link else f"{head}; it will appear in this channel shortly."


def clicks_restricted(parent: JobRecord) -> str:
    return (
        f"On this server only the person who asked for these images ({mention(parent)}) "
        "or an admin can use their buttons. Run `/imagine` to make your own."
    )


def missing_bot_permissions(names: list[str]) -> str:
    listed = " and ".join(f"**{name}**" for name in names)
    return (
        f"I can't deliver images in this channel: I'm missing the {listed} permission here. "
        "A server admin must grant it to Daydream in this channel's settings, then try again."
    )


# -- the worker's answers ------------------------------------------------------------
def unexpected_error(exc: BaseException) -> str:
    return f"The worker hit an unexpected error ({type(exc).__name__}). Try again; if it keeps failing, tell an admin."


def gave_up(stops: int) -> str:
    return f"The worker running this job stopped {stops} times; giving up. Try again later."


def waited_too_long(minutes: int) -> str:
    return f"This job waited more than {minutes} minutes without a free worker and was dropped. Try again later."


def unknown_kind(kind: str) -> str:
    return f"This worker does not know how to run a `{kind}` job (it runs an older Daydream). Try again later."


# -- delivery --------------------------------------------------------------------------
def no_channel() -> str:
    return "The interaction expired and the job names no channel, so nothing could be posted."


def no_bot_token() -> str:
    return (
        "DISCORD_TOKEN is not set on this worker, so it cannot post in the channel once the "
        "interaction has expired. Set it and restart the worker."
    )


def channel_refused(channel_id: int, detail: str | None = None) -> str:
    if detail is None:
        return (
            f"The bot lacks Send Messages / Attach Files in <#{channel_id}>, so it could not post there. "
            "Ask a server admin to grant them."
        )
    return f"Discord refused the message in <#{channel_id}> ({detail})."


def discord_unreachable(problem: str, tries: int) -> str:
    return f"{problem} on {tries} tries in a row, so the message could not be posted. Try again in a few minutes."


def rate_limited_too_long(retry_after: float) -> str:
    return f"Discord kept rate-limiting the bot (asked to wait {retry_after:.0f} s). Try again in a few minutes."


# -- links ---------------------------------------------------------------------------
def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def message_link(reply: ReplyTarget) -> str | None:
    """A link to the message that shows (or will show) a job's result."""
    if reply.message_url:
        return reply.message_url
    if reply.message_id and reply.channel_id:
        return jump_url(reply.guild_id, reply.channel_id, reply.message_id)
    return None


# -- the queue, for users and admins ------------------------------------------------------
def lane_set(lane: str) -> str:
    return (
        f"Your new jobs now go to the {lane_label(lane)} lane. `--fast`, `--relax` or `--turbo` in a prompt still wins."
    )


def turbo_not_granted() -> str:
    return (
        "The turbo lane is for members an admin granted it to (`/admin lane turbo`, or"
        " `daydream admin lane turbo --user ID`). Use /fast or /relax meanwhile."
    )


def usage_lines(usage: object) -> list[str]:
    """GPU time of a user today and in total, per lane (shared/usage.Usage)."""
    today = getattr(usage, "today_s", 0.0)
    total = getattr(usage, "total_s", 0.0)
    lines = [
        f"GPU time today: {duration(today) if today else 'none'}; in total: {duration(total) if total else 'none'}"
    ]
    by_lane = getattr(usage, "by_lane_today", {}) or {}
    if by_lane:
        lines.append(
            "Today by lane: " + ", ".join(f"{lane_label(k)} {duration(v)}" for k, v in sorted(by_lane.items()))
        )
    return lines


def queue_report(report: object) -> str:
    """/admin queue and `daydream admin queue`: depth per model and lane, and per user."""
    waiting = getattr(report, "waiting", {})
    lines = [
        f"Waiting: {getattr(report, 'total', 0)}; running: {getattr(report, 'running', 0)}; "
        f"live workers: {getattr(report, 'workers', 0)}"
    ]
    paused = getattr(report, "paused", set())
    if paused:
        lines.append("Paused: " + ("every lane" if "*" in paused else ", ".join(sorted(lane_label(p) for p in paused))))
    for model, lanes in sorted(waiting.items()):
        counts = ", ".join(f"{lane_label(lane)} {n}" for lane, n in lanes.items())
        lines.append(f"`{model}`: {counts}")
        users = getattr(report, "by_user", {}).get(model, {})
        if users:
            top = sorted(users.items(), key=lambda kv: -kv[1])[:10]
            lines.append("  by user: " + ", ".join(f"{who_is(u)} {n}" for u, n in top))
    return "\n".join(lines)


def who_is(user: str) -> str:
    return "(command line)" if user in {"", "0"} else f"<@{user}>"


def workers_report(workers: list) -> str:
    """/admin workers and `daydream admin workers`."""
    if not workers:
        return "No worker is alive. Start one with `daydream worker`."
    lines = []
    for w in workers:
        now = f"job `{w.current_job}`" if w.current_job else "idle"
        lines.append(
            f"**{w.name}** on {w.host} ({w.device}), model {', '.join(w.models) or '?'}: {now}; "
            f"{w.jobs_done} jobs, {w.images_per_minute:.1f} images/min; last heartbeat {w.last_heartbeat_s:.0f} s ago"
            + worker_figures(w)
        )
    return "\n".join(lines)


def worker_figures(w: object) -> str:
    """The figures a worker's /metrics exports too (absent from workers of earlier versions)."""
    parts = []
    steps = getattr(w, "steps_per_s", None)
    if steps is not None:
        parts.append(f"{steps:.1f} steps/s")
    memory = getattr(w, "gpu_memory_bytes", None)
    if memory is not None:
        parts.append(f"GPU memory {memory / 2**30:.2f} GiB")
    outcomes = getattr(w, "outcomes", None) or {}
    if outcomes:
        parts.append(", ".join(f"{n} {state}" for state, n in sorted(outcomes.items())))
    version = getattr(w, "version", None)
    if version:
        parts.append(f"version {version}")
    return "; " + "; ".join(parts) if parts else ""


def paused_lanes(lane: str, resumed: bool) -> str:
    what = "every lane" if lane == "*" else f"the {lane_label(lane)} lane"
    if resumed:
        return f"Resumed {what}: waiting jobs start again."
    return f"Paused {what}: waiting jobs stay and none start; new ones are accepted and told so."


def limits_report(defaults: object, overrides: dict) -> str:
    lines = [f"Defaults: {getattr(defaults, 'running', '?')} running, {getattr(defaults, 'queued', '?')} waiting."]
    for kind, who in (("users", "<@{}>"), ("roles", "<@&{}>")):
        for ident, limits in sorted(overrides.get(kind, {}).items()):
            lines.append(f"{who.format(ident)}: {limits.running} running, {limits.queued} waiting")
    return "\n".join(lines)


# -- many jobs from one prompt (bot/confirm.py) -------------------------------------------
CONFIRM_EXPIRED = "That prompt is no longer waiting (it was queued already, or 10 minutes passed). Run /imagine again."
CONFIRM_NOT_YOURS = "Only the person who wrote that prompt can queue it."


def confirm_many(jobs: list, limits) -> str:
    """The private question before a prompt of many jobs is queued."""
    shown = "\n".join(f"• {job.prompt}" for job in jobs[:10])
    more = f"\n… and {len(jobs) - 10} more" if len(jobs) > 10 else ""
    return (
        f"This prompt makes **{len(jobs)} jobs** (more than {limits.confirm_above}, this channel's limit "
        f"without asking):\n{shown}{more}\nQueue them all?"
    )


EXPIRED_RESULT = "That job's images have expired from storage; 🔄 or U/V on its message make them again from its seeds."


# -- how edits and wordless jobs are titled (the rest of their texts: shared/edit_messages.py)
EDIT_TITLES = {
    JobKind.REGION: "Variations (Region)",
    JobKind.ZOOM: "Zoom Out",
    JobKind.PAN: "Pan",
    JobKind.SQUARE: "Make Square",
}


def edit_title(job: JobRecord) -> str:
    """Midjourney's words for an edit's result: `Pan Left`, `Zoom Out`, `Variations (Region)`."""
    base = EDIT_TITLES[job.kind]
    if job.kind == JobKind.PAN and job.edit is not None and job.edit.direction:
        return f"{base} {job.edit.direction.capitalize()}"
    return base


def wordless_title(job: JobRecord) -> str | None:
    """How a job without a prompt is named: `**/blend** (3 images)`, `**/describe**`."""
    if job.kind == JobKind.BLEND:
        return f"**/blend** ({len(job.inputs)} images)"
    if job.kind == JobKind.DESCRIBE:
        return "**/describe**"
    return None
