"""Reactions on Daydream's messages, as in Midjourney.

* ✉️ on a result: the reacting user gets a DM with its images, job id and seeds.
* ❌ from the requester or an admin: cancels a waiting or running job, or
  deletes the message of a finished one. From anyone else it is ignored.

Raw reaction events arrive for messages the bot never cached (results a worker
posted, anything from before a restart) and need only the non-privileged
guild_reactions intent. A message leads to its job through its buttons
(`dd:<action>:<job id>:<index>`) or, for a waiting line that has none yet,
through a `daydream:message:<id>` key the bot writes when it posts that line."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import discord
import redis
from discord.ext import commands

from shared import keys
from shared.custom_id import parse
from shared.errors import InvalidRequest, JobNotFound
from shared.grid import decode_image, encode_for_upload
from shared.job import JobKind, JobRecord, JobState
from shared.settings import RECORD_TTL_S, Settings
from shared.store import JobStore

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


# -- message -> job (blocking Redis calls: only through asyncio.to_thread) --------


def message_key(message_id: int) -> str:
    return f"{keys.PREFIX}:message:{message_id}"


def remember_message(store: JobStore, message_id: int | None, job_id: str) -> None:
    """Note that Discord message `message_id` shows job `job_id`, so a ❌ on its
    waiting line (which has no buttons to read the job from) can cancel it.

    Best effort: the job is already queued, and losing this only costs that ❌."""
    if message_id is None:
        return
    try:
        store.redis.set(message_key(message_id), job_id, ex=RECORD_TTL_S)
    except redis.RedisError:
        logger.warning("could not record that message %s shows job %s", message_id, job_id, exc_info=True)


def remembered_job_id(store: JobStore, message_id: int) -> str | None:
    raw = store.redis.get(message_key(message_id))
    return raw.decode() if raw is not None else None


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


def cancel_job(store: JobStore, job_id: str, canceller_id: int) -> JobRecord | None:
    """Cancel a waiting or running job. A waiting one is taken off the queue and
    finished here (returned); a running one stops at its worker's next step,
    and the worker tells the channel (None)."""
    # The flag first: a worker that picks the job up meanwhile sees it and stops.
    store.request_cancel(job_id)
    record = store.get(job_id)
    if record.state != JobState.QUEUED:
        return None
    store.withdraw(job_id)
    return store.finish(job_id, JobState.CANCELLED, error=f"Cancelled by <@{canceller_id}>.")


def stored_result(store: JobStore, settings: Settings, record: JobRecord) -> tuple[bytes, str] | None:
    """The picture the result message shows (an upscale's image, else the grid),
    sized for an upload; None once it has expired from storage."""
    data = store.get_image(record.id, 1) if record.kind == JobKind.UPSCALE else store.get_grid(record.id)
    if data is None:
        return None
    stem = f"daydream_{record.id[:8]}"
    if len(data) <= settings.upload_limit_bytes:
        return data, f"{stem}.png"
    return encode_for_upload(decode_image(data), settings.upload_limit_bytes, stem=stem)


# -- what the bot says ----------------------------------------------------------


def dm_text(record: JobRecord, *, expired: bool) -> str:
    """The DM under ✉️: the prompt, the job id and the seeds, as in Midjourney."""
    lines = [record.title, f"Job ID: `{record.id}`"]
    if record.kind == JobKind.UPSCALE:
        lines.append(f"Seed: {record.seeds[0]}" if record.seeds else "Seed: unknown")
        if record.parent_id:
            lines.append(f"Image #{record.index} of job `{record.parent_id}`")
    else:
        lines.append("Seeds: " + ", ".join(f"{seed} (#{i})" for i, seed in enumerate(record.seeds, start=1)))
    if expired:
        again = (
            f"click U{record.index} under the grid it came from"
            if record.kind == JobKind.UPSCALE and record.index
            else "click U1–U4 or V1–V4 under it"
        )
        lines.append(f"The images have expired from storage; {again} to make them again from these seeds.")
    return "\n".join(lines)


def cancelled_text(record: JobRecord, canceller_id: int) -> str:
    """Replaces a waiting line whose job was cancelled before any worker touched it."""
    return f"{record.title} - {record.mention()} — cancelled by <@{canceller_id}>."


@dataclass
class Found:
    record: JobRecord
    shows_result: bool  # the message already carries the result's buttons


class ReactionsCog(commands.Cog):
    def __init__(self, bot: DaydreamBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.store = bot.store

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
        job_id = await asyncio.to_thread(remembered_job_id, self.store, event.message_id)
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
            record = await asyncio.to_thread(self.store.get, job_id)
        except JobNotFound:
            logger.info("reaction on message %s: its job %s is gone", event.message_id, job_id)
            return None
        if not shows_result and not record.state.finished:
            # The worker posts the result, then records DONE: in between, its
            # delivery marker already says the message shows the result.
            shows_result = await asyncio.to_thread(self.store.redis.exists, keys.delivery_lock(job_id))
            shows_result = bool(shows_result)
        return Found(record, shows_result)

    async def send_result(self, event: discord.RawReactionActionEvent, found: Found) -> None:
        record = found.record
        if not (found.shows_result or record.state == JobState.DONE):
            return  # nothing to send yet (waiting, running) or ever (failed, cancelled)
        upload = await asyncio.to_thread(stored_result, self.store, self.settings, record)
        files = [discord.File(io.BytesIO(upload[0]), filename=upload[1])] if upload else []
        try:
            dm = await self.bot.create_dm(discord.Object(id=event.user_id))
            await dm.send(
                dm_text(record, expired=upload is None), files=files, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.Forbidden as exc:
            if exc.code != CANNOT_DM_USER:
                raise
            logger.info("user %s has closed DMs; job %s not sent", event.user_id, record.id)
            return
        logger.info("sent job %s to user %s by DM", record.id, event.user_id)

    async def cancel_or_delete(self, event: discord.RawReactionActionEvent, found: Found) -> None:
        record = found.record
        if not self.may_cancel(event, record):
            return
        message = self.channel(event).get_partial_message(event.message_id)
        if found.shows_result or record.state.finished:
            try:
                await message.delete()
            except discord.NotFound:
                return  # deleted meanwhile: what was asked
            logger.info("deleted message %s of job %s for user %s", event.message_id, record.id, event.user_id)
            return
        cancelled = await asyncio.to_thread(cancel_job, self.store, record.id, event.user_id)
        logger.info("job %s cancelled by user %s", record.id, event.user_id)
        if cancelled is None:
            return  # running: its worker stops and edits the message itself
        try:
            await message.edit(
                content=cancelled_text(cancelled, event.user_id), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException:
            logger.warning("could not mark message %s as cancelled", event.message_id, exc_info=True)

    def may_cancel(self, event: discord.RawReactionActionEvent, record: JobRecord) -> bool:
        if event.user_id == record.user_id or event.user_id in self.settings.admin_user_ids:
            return True
        return event.member is not None and event.member.guild_permissions.administrator

    def channel(self, event: discord.RawReactionActionEvent) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(event.channel_id, guild_id=event.guild_id)
