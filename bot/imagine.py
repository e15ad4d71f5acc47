"""`/imagine prompt:<text>` — validate, acknowledge within Discord's 3 s, queue."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import moderation, permissions, replies
from bot.buttons import cancel_each_view, cancel_view
from bot.confirm import ask_to_confirm
from bot.downloads import fetch_images, precheck
from bot.store import AsyncStore
from shared import messages
from shared.builders import check_image_prompt, with_inputs
from shared.errors import DaydreamError, InvalidRequest, PromptBlocked, QueueFull
from shared.flags import option_description
from shared.job import JobRecord
from shared.models import model_name
from shared.resolution import resolve_in
from shared.settings import Settings
from shared.uploads import split_links

logger = logging.getLogger(__name__)

# Discord caps option descriptions at 100 characters; the full list is in the error text.
PROMPT_HELP = option_description()
RESOLVE_BEFORE_DEFER_S = 1.5  # Discord wants an answer within 3 s
ATTACHMENTS_CANNOT_WAIT = (
    "This prompt makes more jobs than this channel queues without asking, and an attached image cannot wait "
    "for that question: start the prompt with the image's link instead, or ask for fewer jobs."
)


def resolution_of(interaction: discord.Interaction, text: str, settings: Settings, store: AsyncStore):
    """The jobs `text` makes for this user in this channel (shared/resolution.py), off the loop."""
    return store.call(
        resolve_in,
        store.sync,
        text,
        user_id=interaction.user.id,
        role_ids=permissions.roles_of(interaction.user),
        channel_id=interaction.channel_id,
        default_model=model_name(settings.model),
        reply=replies.reply_target(interaction, settings.token_lifetime_s),
    )


async def imagine(
    interaction: discord.Interaction,
    text: str,
    settings: Settings,
    store: AsyncStore,
    attachments: list[discord.Attachment] | None = None,
    *,
    confirmed: bool = False,
) -> None:
    """The whole command. Steps 1–2 answer at once; everything slow comes after the defer.
    Image prompts: `attachments`, and Discord CDN links at the start of `text`."""
    attachments = attachments or []
    full_text = text
    # 1. The image prompts' hosts, declared sizes and types (no download yet).
    try:
        links, text = split_links(text)
        precheck(links, attachments, settings)
    except InvalidRequest as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    # 1b. Resolve the prompt with the user's settings: a typo is answered privately, before anything is
    #     queued. The settings are a Redis read away; should Redis be slow, acknowledge in time first.
    pending = asyncio.ensure_future(resolution_of(interaction, text, settings, store))
    done, _ = await asyncio.wait({pending}, timeout=RESOLVE_BEFORE_DEFER_S)
    if not done:
        await interaction.response.defer(thinking=True)
    try:
        resolution = await pending
        for job in resolution.jobs:
            check_image_prompt(job.params, len(links) + len(attachments))
    except DaydreamError as exc:
        await _refuse(interaction, str(exc), first=interaction.response.is_done())
        return

    # 2. The bot must be able to post here once the 15-minute token has expired.
    refusal = permissions.missing_bot_permissions(interaction)
    if refusal:
        await _refuse(interaction, refusal, first=interaction.response.is_done())
        return

    # 2b. Many jobs from one command ({a, b}, --repeat): the user confirms first.
    if resolution.needs_confirmation and not confirmed:
        if attachments:
            await _refuse(interaction, ATTACHMENTS_CANNOT_WAIT, first=interaction.response.is_done())
            return
        if interaction.response.is_done():
            await _refuse(interaction, "", first=True, quiet=True)
        await ask_to_confirm(interaction, full_text, resolution, store)
        return

    # 3. Acknowledge: Redis and Discord round trips below may take longer than 3 s.
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True)
    # 3b. The server's moderation policy (shared/moderation.py): bans, cooldowns, word
    #     filters; every job of the command passes before any is queued.
    venue = moderation.venue_of(interaction)
    try:
        for job in resolution.jobs:
            job.venue = venue
            await store.call(store.sync.moderation.screen, job)
    except PromptBlocked as exc:
        await moderation.answer_block(interaction, exc, job)
        return
    except DaydreamError as exc:
        await _refuse(interaction, str(exc), first=True)
        return
    # 3c. The image prompts, downloaded and checked (time-limited), once for all the jobs.
    try:
        images = await fetch_images(interaction, links, attachments, settings) if links or attachments else []
    except DaydreamError as exc:
        await _refuse(interaction, str(exc), first=True)
        return
    roles = permissions.roles_of(interaction.user)
    for n, job in enumerate(resolution.jobs):
        if not await queue_one(interaction, job, store, roles, first=n == 0, stored=with_inputs(job, images)):
            return


async def queue_one(
    interaction: discord.Interaction,
    job: JobRecord,
    store: AsyncStore,
    roles: frozenset[int],
    *,
    first: bool,
    stored: list[tuple[str, bytes]] | None = None,
) -> bool:
    """Show one job's waiting line (the deferred message for the first, a follow-up
    for the others) and queue it, its input images (`stored`) beside it first. False
    when it was refused (and the user told)."""
    try:
        # 5. Redis reachable, a worker for the model, a prompt the model can take?
        status = await store.prepare(job)
        # 6. Show the waiting line (with ❌), then enqueue: never the other way round,
        #    or this edit could land after a fast worker's result and overwrite it.
        line = messages.waiting(job, status.position, status.eta_s, running=status.running, paused=status.paused)
        if first:
            waiting = await interaction.edit_original_response(
                content=line, allowed_mentions=replies.only_mention(job.user_id), view=cancel_view(job.id)
            )
        else:
            waiting = await interaction.followup.send(
                line, allowed_mentions=replies.only_mention(job.user_id), view=cancel_view(job.id), wait=True
            )
        # 7. Queue it (its images beside it first). The workers keep the line up to date, then
        #    edit it (`@original`) with progress.
        if stored:
            await store.put_inputs(job.id, stored)
        await store.submit(job, waiting.id, roles, shown=line)
    except QueueFull as exc:
        await _refuse(interaction, str(exc), first, view=cancel_each_view(exc.jobs))
        return False
    except DaydreamError as exc:
        await _refuse(interaction, str(exc), first)
        return False
    except Exception:
        logger.exception("/imagine failed for job %s", job.id)
        await _refuse(interaction, messages.GENERIC_ERROR, first)
        return False
    logger.info("queued %s job %s for user %s at #%s (%s)", job.kind, job.id, job.user_id, status.position, job.lane)
    return True


async def _refuse(
    interaction: discord.Interaction,
    message: str,
    first: bool,
    view: discord.ui.View | None = None,
    quiet: bool = False,
) -> None:
    if quiet:  # only take the deferred message down
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            logger.warning("could not delete the original response of interaction %s", interaction.id, exc_info=True)
    elif first:
        await withdraw(interaction, message, view=view)
    else:  # the jobs before it are queued and shown: say why this one is not
        await replies.tell_privately(interaction, message, view=view)


async def withdraw(interaction: discord.Interaction, message: str, view: discord.ui.View | None = None) -> None:
    """Take the public "thinking…"/waiting message down and explain privately.

    Order matters: after a public defer, Discord turns the *first* follow-up
    into the deferred message itself (public, whatever its flags). So the
    deferral is answered first, then the private explanation is a real
    follow-up, then the public message goes."""
    try:
        await interaction.edit_original_response(content=messages.NOT_QUEUED, attachments=[], view=None)
    except discord.HTTPException:
        logger.warning("could not answer the deferral of interaction %s", interaction.id, exc_info=True)
    await replies.tell_privately(interaction, message, view=view)
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        logger.warning("could not delete the original response of interaction %s", interaction.id, exc_info=True)


class ImagineCog(commands.Cog):
    def __init__(self, settings: Settings, store: AsyncStore) -> None:
        self.settings = settings
        self.store = store

    @app_commands.command(name="imagine", description="Create four images from a text prompt.")
    @app_commands.describe(
        prompt=PROMPT_HELP, image="An image prompt: its composition and colours (weigh it with --iw)"
    )
    async def imagine_command(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        await imagine(interaction, prompt, self.settings, self.store, [image] if image is not None else None)
