"""`/admin defaults`: a channel's default flags and prompt limits (the
aspect-ratio range, the step and repeat caps, the jobs per command and the
confirmation threshold). The twin of `daydream admin defaults`."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot import replies
from bot.admin import ADMIN
from bot.admin_queue import _admin, _bot, _run, _told

logger = logging.getLogger(__name__)


def describe(channel) -> str:
    limits = channel.limits
    return (
        f"Defaults here: `{channel.defaults or '(none)'}`\n"
        f"Aspect ratios {limits.min_aspect.numerator}:{limits.min_aspect.denominator} to "
        f"{limits.max_aspect.numerator}:{limits.max_aspect.denominator}; up to {limits.max_steps} steps, "
        f"--repeat up to {limits.max_repeat}, {limits.max_jobs} jobs per command, "
        f"confirmation above {limits.confirm_above} jobs."
    )


@ADMIN.command(name="defaults", description="This channel's default flags and prompt limits.")
@app_commands.describe(
    defaults="Flags every prompt here gets unless it sets them (e.g. --ar 3:2 --s 50); `none` clears",
    max_steps="Most sampling steps", max_repeat="Highest --repeat", max_jobs="Most jobs per command",
    confirm_above="Ask first above this many jobs", min_aspect="Narrowest W:H, e.g. 1:4", max_aspect="Widest W:H",
)  # fmt: skip
@_told
async def defaults(
    interaction: discord.Interaction,
    defaults: str | None = None,
    max_steps: int | None = None,
    max_repeat: int | None = None,
    max_jobs: int | None = None,
    confirm_above: int | None = None,
    min_aspect: str | None = None,
    max_aspect: str | None = None,
) -> None:
    if not await _admin(interaction):
        return
    given = dict(
        max_steps=max_steps, max_repeat=max_repeat, max_jobs=max_jobs, confirm_above=confirm_above,
        min_aspect=min_aspect, max_aspect=max_aspect,
    )  # fmt: skip
    limits = {k: str(v) for k, v in given.items() if v is not None}
    text = None if defaults is None else ("" if defaults.strip().lower() == "none" else defaults)
    prefs = _bot(interaction).store.preferences
    channel = await _run(interaction, prefs.set_channel, interaction.channel_id, text, limits or None)
    logger.info("admin %s set channel %s defaults", interaction.user.id, interaction.channel_id)
    await replies.tell_privately(interaction, describe(channel))
