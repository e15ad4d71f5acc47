"""/admin queue|pause|resume|cancel|limits|lane|workers: the queue in the admins'
hands (each checks `permissions.check_admin`; everyone else is refused clearly).
Their twins for the host are `daydream admin …` (daydream/admin_queue.py); both
read the same reports (shared/reports.py) and say them the same way."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import discord
from discord import app_commands

from bot import permissions, replies
from bot.admin import ADMIN
from shared import messages, reports
from shared.errors import DaydreamError
from shared.policy import ALL_LANES, Limits

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

LaneChoice = Literal["fast", "relax", "turbo", "all"]
GrantChoice = Literal["turbo", "fast", "relax"]


class _Told(Exception):
    """The user has been answered (a refusal, an error); the command stops."""


def _bot(interaction: discord.Interaction) -> DaydreamBot:
    return cast("DaydreamBot", interaction.client)


async def _admin(interaction: discord.Interaction) -> bool:
    """Defer privately, and answer a refusal if the user is not an admin."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        permissions.check_admin(_bot(interaction).settings, interaction)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return False
    return True


async def _run(interaction: discord.Interaction, fn: Callable[..., Any], *args: Any) -> Any:
    """A store call off the event loop; its DaydreamError answered privately (then _Told)."""
    try:
        return await _bot(interaction).jobs.call(fn, *args)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        raise _Told from exc


def _told(command: Callable[..., Any]) -> Callable[..., Any]:
    """Ends a command quietly once its user has been answered."""

    @functools.wraps(command)
    async def run(interaction: discord.Interaction, *args: Any, **kwargs: Any) -> None:
        try:
            await command(interaction, *args, **kwargs)
        except _Told:
            return

    return run


@ADMIN.command(name="queue", description="What waits, per model and lane, and per user.")
@_told
async def queue(interaction: discord.Interaction) -> None:
    if not await _admin(interaction):
        return
    report = await _run(interaction, reports.queue_report, _bot(interaction).store)
    await replies.tell_privately(interaction, messages.queue_report(report))


@ADMIN.command(name="pause", description="Waiting jobs stay and none start (all lanes, or one).")
@app_commands.describe(lane="The lane to pause (all by default)")
@_told
async def pause(interaction: discord.Interaction, lane: LaneChoice = "all") -> None:
    if not await _admin(interaction):
        return
    which = ALL_LANES if lane == "all" else lane
    await _run(interaction, _bot(interaction).store.policy.pause, which)
    logger.info("user %s paused %s", interaction.user.id, which)
    await replies.tell_privately(interaction, messages.paused_lanes(which, resumed=False))


@ADMIN.command(name="resume", description="Jobs start again (all lanes, or one).")
@app_commands.describe(lane="The lane to resume (all by default)")
@_told
async def resume(interaction: discord.Interaction, lane: LaneChoice = "all") -> None:
    if not await _admin(interaction):
        return
    which = ALL_LANES if lane == "all" else lane
    await _run(interaction, _bot(interaction).store.policy.resume, which)
    logger.info("user %s resumed %s", interaction.user.id, which)
    await replies.tell_privately(interaction, messages.paused_lanes(which, resumed=True))


@ADMIN.command(name="cancel", description="Cancel anyone's job by its id.")
@app_commands.describe(job="The job id")
@_told
async def cancel(interaction: discord.Interaction, job: str) -> None:
    if not await _admin(interaction):
        return
    store = _bot(interaction).store
    record = await _run(interaction, store.get, job.strip())
    if record.finished:
        await replies.tell_privately(interaction, messages.already_ended(record))
        return
    cancelled = await _run(interaction, store.cancel, record.id, interaction.user.id)
    logger.info("job %s cancelled by admin %s", record.id, interaction.user.id)
    await replies.tell_privately(interaction, messages.cancelled_privately(record, cancelled is not None))


@ADMIN.command(name="limits", description="Show the limits, or set them for a member or a role.")
@app_commands.describe(
    member="Set this member's limits", role="Set this role's limits", running="Jobs running at once",
    waiting="Jobs waiting", reset="Back to the defaults",
)  # fmt: skip
@_told
async def limits(
    interaction: discord.Interaction,
    member: discord.Member | None = None,
    role: discord.Role | None = None,
    running: app_commands.Range[int, 1, 100] | None = None,
    waiting: app_commands.Range[int, 0, 1000] | None = None,
    reset: bool = False,
) -> None:
    if not await _admin(interaction):
        return
    policy = _bot(interaction).store.policy
    if member is None and role is None:
        overrides = await _run(interaction, policy.overrides)
        await replies.tell_privately(interaction, messages.limits_report(policy.defaults, overrides))
        return
    target = {"user_id": member.id} if member is not None else {"role_id": role.id if role else None}
    queued = waiting if waiting is not None else policy.defaults.queued
    new = None if reset else Limits(running or policy.defaults.running, queued)
    await _run(interaction, lambda: policy.set_limits(limits=new, **target))
    who = member.mention if member is not None else (role.mention if role else "?")
    said = "the defaults" if new is None else f"{new.running} running, {new.queued} waiting"
    await replies.tell_privately(interaction, f"Limits for {who}: {said}.")


@ADMIN.command(name="lane", description="Grant turbo, impose relax, or give back fast, to a member or a role.")
@app_commands.describe(lane="turbo: may use turbo; relax: only relax; fast: the default")
@_told
async def lane(
    interaction: discord.Interaction,
    lane: GrantChoice,
    member: discord.Member | None = None,
    role: discord.Role | None = None,
) -> None:
    if not await _admin(interaction):
        return
    if (member is None) == (role is None):
        await replies.tell_privately(interaction, "Name one member or one role.")
        return
    policy = _bot(interaction).store.policy
    target = {"user_id": member.id} if member is not None else {"role_id": role.id if role else None}
    await _run(interaction, lambda: policy.set_grant(lane, **target))
    who = member.mention if member is not None else (role.mention if role else "?")
    await replies.tell_privately(interaction, f"{who}: {lane} lane set.")


@ADMIN.command(name="workers", description="Every live worker: host, device, model, its job, its pace.")
@_told
async def workers(interaction: discord.Interaction) -> None:
    if not await _admin(interaction):
        return
    found = await _run(interaction, reports.workers_report, _bot(interaction).store)
    await replies.tell_privately(interaction, messages.workers_report(found))
