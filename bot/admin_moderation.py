"""/admin filter add|remove|list, /admin modlog, /admin ban, /admin unban,
/admin channel, /admin threshold: a server's moderation in its admins' hands
(each checks `permissions.check_admin`, through admin_queue's helpers). Their
twins for the host are `daydream admin …` (daydream/moderation.py); both
write the same policy (shared/moderation.py)."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands

from bot import replies
from bot.admin import ADMIN
from bot.admin_queue import _admin, _bot, _run, _told
from bot.moderation import to_modlog
from shared import mod_messages

logger = logging.getLogger(__name__)

FILTER = app_commands.Group(name="filter", description="This server's word filter.", parent=ADMIN)


@FILTER.command(name="add", description="Block prompts with this word, phrase or pattern (porn* for any ending).")
@app_commands.describe(rule="A word, a phrase, or a pattern with * (e.g. gore, blood bath, porn*)")
@_told
async def filter_add(interaction: discord.Interaction, rule: str) -> None:
    if not await _admin(interaction):
        return
    added = await _run(interaction, _bot(interaction).store.moderation.add_rule, interaction.guild_id, rule)
    await replies.tell_privately(interaction, f"Prompts with `{added}` are now blocked here.")


@FILTER.command(name="remove", description="Stop blocking a rule (a default one too, in this server only).")
@app_commands.describe(rule="The rule as `/admin filter list` shows it")
@_told
async def filter_remove(interaction: discord.Interaction, rule: str) -> None:
    if not await _admin(interaction):
        return
    removed = await _run(interaction, _bot(interaction).store.moderation.remove_rule, interaction.guild_id, rule)
    await replies.tell_privately(interaction, f"`{removed}` no longer blocks prompts here.")


@FILTER.command(name="list", description="The rules that block prompts here.")
@_told
async def filter_list(interaction: discord.Interaction) -> None:
    if not await _admin(interaction):
        return
    rules = await _run(interaction, _bot(interaction).store.moderation.rules, interaction.guild_id)
    await replies.tell_privately(interaction, mod_messages.rules_report(rules))


@ADMIN.command(name="modlog", description="The channel that receives blocked prompts, flagged images, appeals, bans.")
@app_commands.describe(channel="The mod log channel (leave empty to turn the mod log off)")
@_told
async def modlog(interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
    if not await _admin(interaction):
        return
    moderation = _bot(interaction).store.moderation
    await _run(interaction, moderation.set_modlog, interaction.guild_id, channel.id if channel else None)
    said = f"The mod log is now {channel.mention}." if channel else "The mod log is off."
    await replies.tell_privately(interaction, said)


@ADMIN.command(name="ban", description="Stop a member from using Daydream in this server.")
@app_commands.describe(member="The member", reason="Why (they are told, once)")
@_told
async def ban(interaction: discord.Interaction, member: discord.Member, reason: str = "") -> None:
    if not await _admin(interaction):
        return
    bot = _bot(interaction)
    by = f"<@{interaction.user.id}>"
    await _run(interaction, lambda: bot.store.moderation.ban(interaction.guild_id, member.id, reason, by=by))
    logger.info("user %s banned in guild %s by %s", member.id, interaction.guild_id, interaction.user.id)
    await to_modlog(bot, interaction.guild_id, mod_messages.log_ban(member.id, by, reason))
    await replies.tell_privately(interaction, f"{member.mention} can no longer use Daydream here.")


@ADMIN.command(name="unban", description="Let a banned member use Daydream again (their strikes are cleared).")
@app_commands.describe(member="The member")
@_told
async def unban(interaction: discord.Interaction, member: discord.Member) -> None:
    if not await _admin(interaction):
        return
    bot = _bot(interaction)
    lifted = await _run(interaction, bot.store.moderation.unban, interaction.guild_id, member.id)
    if not lifted:
        await replies.tell_privately(interaction, f"{member.mention} is not banned here.")
        return
    await to_modlog(bot, interaction.guild_id, mod_messages.log_ban(member.id, f"<@{interaction.user.id}>", "", True))
    await replies.tell_privately(interaction, f"{member.mention} can use Daydream here again.")


@ADMIN.command(name="channel", description="A channel's image policy (allowed, blur, refuse) and spoiler mode.")
@app_commands.describe(
    channel="The channel", images="What happens to a flagged image there", spoiler="Post results as spoilers"
)
@_told
async def channel(
    interaction: discord.Interaction,
    channel: discord.TextChannel,
    images: Literal["allowed", "blur", "refuse"] | None = None,  # inline: _told evaluates in admin_queue
    spoiler: bool | None = None,
) -> None:
    if not await _admin(interaction):
        return
    moderation = _bot(interaction).store.moderation
    policy = await _run(
        interaction, lambda: moderation.set_channel(interaction.guild_id, channel.id, images=images, spoiler=spoiler)
    )
    nsfw = " It is marked NSFW, so results there are not checked." if channel.is_nsfw() else ""
    spoilers = "as spoilers" if policy.spoiler else "normally"
    await replies.tell_privately(
        interaction, f"{channel.mention}: flagged images `{policy.images}`, results posted {spoilers}.{nsfw}"
    )


@ADMIN.command(name="threshold", description="The NSFW score (0-1) at which the image check flags an image.")
@app_commands.describe(score="e.g. 0.6; lower flags more (leave empty for the host's default)")
@_told
async def threshold(
    interaction: discord.Interaction, score: app_commands.Range[float, 0.01, 1.0] | None = None
) -> None:
    if not await _admin(interaction):
        return
    moderation = _bot(interaction).store.moderation
    await _run(interaction, moderation.set_threshold, interaction.guild_id, score)
    now = await _run(interaction, moderation.threshold, interaction.guild_id)
    await replies.tell_privately(interaction, f"Images scoring {now:.2f} or more are flagged here.")
