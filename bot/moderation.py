"""The bot's side of moderation: where a request comes from (its venue: server,
channel, NSFW or not), the answer to a blocked prompt (with **Appeal**), the mod
log (blocked prompts, appeals with Allow / Uphold, bans), and the clicks on
those buttons. The buttons are `ResultButton`s (bot/buttons.py): their
custom_id is the whole state, so they work after a restart like the others.
The rules themselves are the store's (shared/moderation.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import discord

from bot import permissions, replies
from shared import messages, mod_messages
from shared.custom_id import Action, ButtonRef, encode
from shared.errors import DaydreamError, PromptBlocked
from shared.job import JobRecord, Venue

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

ACTIONS = frozenset({Action.APPEAL, Action.ALLOW, Action.UPHOLD})


def venue_of(interaction: discord.Interaction) -> Venue:
    """Where the request was made. A thread is NSFW when its parent channel is (discord.py's `is_nsfw`)."""
    channel = interaction.channel
    is_nsfw = getattr(channel, "is_nsfw", None)
    nsfw = bool(is_nsfw()) if callable(is_nsfw) else False
    return Venue(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        nsfw=nsfw,
        dm=interaction.guild_id is None,
    )


def _bot(interaction: discord.Interaction) -> DaydreamBot:
    return cast("DaydreamBot", interaction.client)


def _button(label: str, action: Action, job_id: str, style: discord.ButtonStyle) -> discord.ui.DynamicItem:
    from bot.buttons import ResultButton  # bot.buttons routes these clicks here

    item = ResultButton(encode(action, job_id, 0), label=label)
    item.item.style = style
    return item


def appeal_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(_button("Appeal", Action.APPEAL, job_id, discord.ButtonStyle.secondary))
    return view


def case_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(_button("Allow", Action.ALLOW, job_id, discord.ButtonStyle.success))
    view.add_item(_button("Uphold", Action.UPHOLD, job_id, discord.ButtonStyle.danger))
    return view


async def to_modlog(
    bot: DaydreamBot, guild_id: int | None, content: str, view: discord.ui.View | None = None
) -> int | None:
    """Post in the server's mod log channel, if it has one; the message id. Best effort."""
    try:
        channel_id = await bot.jobs.call(bot.store.moderation.modlog, guild_id)
        if channel_id is None:
            return None
        extra = {"view": view} if view is not None else {}
        sent = await bot.get_partial_messageable(channel_id).send(
            content[:2000], allowed_mentions=discord.AllowedMentions.none(), **extra
        )
        return sent.id
    except (DaydreamError, discord.HTTPException) as exc:
        logger.warning("could not post to the mod log of guild %s: %s", guild_id, exc)
        return None


async def answer_block(interaction: discord.Interaction, exc: PromptBlocked, job: JobRecord) -> None:
    """The private answer to a blocked /imagine (with Appeal), and its entry in the mod log."""
    from bot.imagine import withdraw

    await withdraw(interaction, exc.message, view=appeal_view(exc.job_id))
    link = f"<#{job.venue.channel_id}>" if job.venue.channel_id else None
    await to_modlog(
        _bot(interaction), job.venue.guild_id, mod_messages.log_blocked(job.user_id, job.id, job.prompt, exc.rule, link)
    )
    logger.info("blocked job %s of user %s: rule %r", job.id, job.user_id, exc.rule)


async def on_click(interaction: discord.Interaction, ref: ButtonRef) -> None:
    """Appeal (the blocked member), Allow or Uphold (an admin, in the mod log)."""
    bot = _bot(interaction)
    try:
        if ref.action is Action.APPEAL:
            await _appeal(interaction, bot, ref.job_id)
        else:
            await _decide(interaction, bot, ref.job_id, allow=ref.action is Action.ALLOW)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
    except Exception:
        logger.exception("moderation click %s on case %s failed", ref.action, ref.job_id)
        await replies.tell_privately(interaction, messages.GENERIC_ERROR)


async def _appeal(interaction: discord.Interaction, bot: DaydreamBot, job_id: str) -> None:
    moderation = bot.store.moderation
    case = await bot.jobs.call(moderation.case, job_id)
    if case is None:
        await replies.tell_privately(interaction, mod_messages.NOT_A_CASE)
        return
    if case.job.user_id != interaction.user.id:
        await replies.tell_privately(interaction, mod_messages.appeal_not_yours())
        return
    if case.state != "blocked":
        await replies.tell_privately(interaction, mod_messages.already_decided(case.state))
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    channel_id = await bot.jobs.call(moderation.modlog, case.job.venue.guild_id)
    if channel_id is None:
        await replies.tell_privately(interaction, mod_messages.appeal_no_modlog())
        return
    moved = await bot.jobs.call(moderation.move_case, job_id, ("blocked",), "appealed")
    if moved is None:  # a double click: the first one sent it
        await replies.tell_privately(interaction, mod_messages.appeal_sent())
        return
    text = mod_messages.log_appeal(case.job.user_id, job_id, case.job.prompt, case.rule)
    message_id = await to_modlog(bot, case.job.venue.guild_id, text, view=case_view(job_id))
    if message_id is None:
        await bot.jobs.call(moderation.move_case, job_id, ("appealed",), "blocked")
        await replies.tell_privately(interaction, mod_messages.appeal_no_modlog())
        return
    await bot.jobs.call(moderation.move_case, job_id, ("appealed",), "appealed", modlog_message_id=message_id)
    logger.info("case %s appealed by user %s", job_id, interaction.user.id)
    await replies.tell_privately(interaction, mod_messages.appeal_sent())


async def _decide(interaction: discord.Interaction, bot: DaydreamBot, job_id: str, *, allow: bool) -> None:
    permissions.check_admin(bot.settings, interaction)
    moderation = bot.store.moderation
    await interaction.response.defer()  # the mod log message is edited below
    to = "allowed" if allow else "upheld"
    case = await bot.jobs.call(moderation.move_case, job_id, ("blocked", "appealed"), to)
    if case is None:
        found = await bot.jobs.call(moderation.case, job_id)
        text = mod_messages.already_decided(found.state) if found else mod_messages.NOT_A_CASE
        await replies.tell_privately(interaction, text)
        return
    if allow:
        # The member's interaction is long gone: the worker posts in the channel, mentioning them.
        reply = replace(case.job.reply, application_id=None, interaction_token=None, token_expires_at=None,
                        message_id=None, message_url=None)  # fmt: skip
        # Its wait starts now: the expiry sweep counts from created_at (QUEUED_JOB_TTL_S).
        job = replace(case.job, reply=reply, created_at=time.time())
        try:
            await bot.jobs.call(bot.store.submit, job)
        except DaydreamError:
            await bot.jobs.call(moderation.move_case, job_id, ("allowed",), "appealed")
            raise
    elif case.job.user_id:
        # Nothing for the member to guess: their interaction is gone, so they are told by DM.
        await _tell_by_dm(bot, case.job.user_id, mod_messages.appeal_upheld(case.job.prompt))
    decided = mod_messages.allowed(interaction.user.id) if allow else mod_messages.upheld(interaction.user.id)
    original = interaction.message.content if interaction.message else ""
    await interaction.edit_original_response(
        content=f"{original}\n{decided}"[:2000], view=None, allowed_mentions=discord.AllowedMentions.none()
    )
    logger.info("case %s %s by moderator %s", job_id, to, interaction.user.id)


async def _tell_by_dm(bot: DaydreamBot, user_id: int, text: str) -> None:
    try:
        dm = await bot.create_dm(discord.Object(id=user_id))
        await dm.send(text, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException:
        logger.info("could not tell member %s by DM (their DMs may be closed)", user_id, exc_info=True)
