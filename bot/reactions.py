"""Reactions on Daydream's messages, as in Midjourney.

* ✉️ on a result: the reacting user gets a DM with its images, job id and seeds.
* ❌ from the requester or an admin: cancels a waiting or running job, or
  deletes the message of a finished one. From anyone else it is ignored.

Raw reaction events arrive for messages the bot never cached (results a worker
posted, anything from before a restart) and need only the non-privileged
guild_reactions intent. A message leads to its job through its buttons
(`dd:<action>:<job id>:<index>`) or, for a waiting line that has none yet,
through the store's message map, written when the bot posts that line."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot import permissions
from shared import messages
from shared.custom_id import parse
from shared.errors import InvalidRequest, JobNotFound
from shared.job import JobRecord, JobState

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

VARIATION_SELECTOR_16 = "\N{VARIATION SELECTOR-16}"  # clients send ✉ with or without it
CANNOT_DM_USER = 50007  # Discord's error code for closed DMs


class Reaction(StrEnum):
    SEND = "\N{ENVELOPE}"  # ✉️
    CANCEL = "\N{CROSS MARK}"  # ❌


def reaction_of(emoji: discord.PartialEmoji) -> Reaction | None:
    """The reaction Daydream acts on, or None. A server's custom emoji is never one."""
    if emoji.id is not None or not emoji.name:
        return None
    try:
        return Reaction(emoji.name.removesuffix(VARIATION_SELECTOR_16))
    except ValueError:
        return None


def job_id_from_buttons(message: discord.Message) -> str | None:
    """The job a result message shows: every Daydream button under it names it."""
    for row in message.components:
        for item in getattr(row, "children", []):
            custom_id = getattr(item, "custom_id", None)
            if not custom_id:
                continue
            try:
                return parse(custom_id).job_id
            except InvalidRequest:
                continue
    return None


@dataclass
class Found:
    record: JobRecord
    shows_result: bool  # the message already carries the result's buttons


class ReactionsCog(commands.Cog):
    def __init__(self, bot: DaydreamBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.store = bot.jobs

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        try:
            await self.handle(event)
        except Exception:
            # Nobody to answer: a reaction has no reply. Log it, keep listening.
            logger.exception(
                "reaction %s by user %s on message %s failed", event.emoji, event.user_id, event.message_id
            )

    async def handle(self, event: discord.RawReactionActionEvent) -> None:
        # 1. Cheap filters first: this runs for every reaction in every server.
        reaction = reaction_of(event.emoji)
        me = self.bot.user
        if reaction is None or me is None or event.user_id == me.id:
            return
        if event.member is not None and event.member.bot:
            return
        if event.message_author_id is not None and event.message_author_id != me.id:
            return
        # 2. The job the message shows, if it is one of ours.
        found = await self.find_job(event, me.id)
        if found is None:
            return
        # 3. Act.
        if reaction is Reaction.SEND:
            await self.send_result(event, found)
        else:
            await self.cancel_or_delete(event, found)

    async def find_job(self, event: discord.RawReactionActionEvent, my_id: int) -> Found | None:
        job_id = await self.store.job_for_message(event.message_id)
        shows_result = False
        if job_id is None:
            try:
                message = await self.channel(event).fetch_message(event.message_id)
            except (discord.NotFound, discord.Forbidden) as exc:
                logger.info("cannot read message %s for a reaction: %s", event.message_id, exc)
                return None
            if message.author.id != my_id:
                return None
            job_id = job_id_from_buttons(message)
            if job_id is None:
                return None  # one of ours, but no job's: a failure notice, a waiting line of old
            shows_result = True
        try:
            record = await self.store.get(job_id)
        except JobNotFound:
            logger.info("reaction on message %s: its job %s is gone", event.message_id, job_id)
            return None
        if not shows_result and not record.finished:
            # The worker posts the result, then records DONE: in between, its
            # delivered marker already says the message shows the result.
            shows_result = await self.store.delivered(job_id)
        return Found(record, shows_result)

    async def send_result(self, event: discord.RawReactionActionEvent, found: Found) -> None:
        record = found.record
        if not (found.shows_result or record.state == JobState.DONE):
            return  # nothing to send yet (waiting, running) or ever (failed, cancelled)
        upload = await self.store.result_upload(record, self.settings)
        files = [discord.File(io.BytesIO(upload[0]), filename=upload[1])] if upload else []
        try:
            dm = await self.bot.create_dm(discord.Object(id=event.user_id))
            await dm.send(
                messages.dm(record, expired=upload is None),
                files=files,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.Forbidden as exc:
            if exc.code != CANNOT_DM_USER:
                raise
            logger.info("user %s has closed DMs; job %s not sent", event.user_id, record.id)
            return
        logger.info("sent job %s to user %s by DM", record.id, event.user_id)

    async def cancel_or_delete(self, event: discord.RawReactionActionEvent, found: Found) -> None:
        record = found.record
        member_permissions = event.member.guild_permissions if event.member is not None else None
        admin = permissions.is_admin(
            self.settings, event.user_id, member_permissions, permissions.roles_of(event.member)
        )
        if not permissions.may_cancel(record, event.user_id, admin):
            return
        message = self.channel(event).get_partial_message(event.message_id)
        if found.shows_result or record.finished:
            try:
                await message.delete()
            except discord.NotFound:
                return  # deleted meanwhile: what was asked
            logger.info("deleted message %s of job %s for user %s", event.message_id, record.id, event.user_id)
            return
        cancelled = await self.store.cancel(record.id, event.user_id)
        logger.info("job %s cancelled by user %s", record.id, event.user_id)
        if cancelled is None:
            return  # running: its worker stops and edits the message itself
        try:
            await message.edit(
                content=messages.cancelled_by(cancelled, event.user_id),
                view=None,  # its ❌ button has nothing left to cancel
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            logger.warning("could not mark message %s as cancelled", event.message_id, exc_info=True)

    def channel(self, event: discord.RawReactionActionEvent) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(event.channel_id, guild_id=event.guild_id)
