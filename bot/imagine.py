"""`/imagine prompt:<text>` — validate, acknowledge within Discord's 3 s, queue."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import moderation, permissions, replies
from bot.buttons import cancel_each_view, cancel_view
from bot.downloads import fetch_images, precheck
from bot.store import AsyncStore
from shared import messages
from shared.builders import check_image_prompt, imagine_job, with_inputs
from shared.errors import DaydreamError, InvalidRequest, PromptBlocked, QueueFull
from shared.models import model_name
from shared.params import parse_prompt
from shared.settings import Settings
from shared.uploads import split_links

logger = logging.getLogger(__name__)

# Discord caps option descriptions at 100 characters; the full list is in the error text.
PROMPT_HELP = "What to draw, then options such as --ar 3:2 --seed 7 --steps 20 --cfg 7 --no text"


async def imagine(
    interaction: discord.Interaction,
    text: str,
    settings: Settings,
    store: AsyncStore,
    attachments: list[discord.Attachment] | None = None,
) -> None:
    """The whole command. Steps 1–2 answer at once; everything slow comes after the defer.
    Image prompts: `attachments`, and Discord CDN links at the start of `text`."""
    attachments = attachments or []
    # 1. Check the prompt: a typo is answered privately, before anything is queued.
    try:
        links, text = split_links(text)
        parsed = parse_prompt(text)
        precheck(links, attachments, settings)  # hosts, declared sizes and types: no download yet
        check_image_prompt(parsed, len(links) + len(attachments))
    except InvalidRequest as exc:
        await replies.tell_privately(interaction, str(exc))
        return

    # 2. The bot must be able to post here once the 15-minute token has expired.
    refusal = permissions.missing_bot_permissions(interaction)
    if refusal:
        await replies.tell_privately(interaction, refusal)
        return

    # 3. Acknowledge: Redis and Discord round trips below may take longer than 3 s.
    await interaction.response.defer(thinking=True)

    job = None
    try:
        # 4. The image prompts, downloaded and checked (time-limited), then the lane
        #    (the prompt's, the user's default; turbo only if granted).
        images = await fetch_images(interaction, links, attachments, settings) if links or attachments else []
        roles = permissions.roles_of(interaction.user)
        lane = await store.resolve_lane(interaction.user.id, roles, parsed.lane)
        job = imagine_job(
            parsed,
            user_id=interaction.user.id,
            model=model_name(settings.model),
            reply=replies.reply_target(interaction, settings.token_lifetime_s),
            lane=lane,
        )
        stored = with_inputs(job, images)
        # 4b. The server's moderation policy: bans, cooldowns, word filters (shared/moderation.py).
        job.venue = moderation.venue_of(interaction)
        await store.call(store.sync.moderation.screen, job)
        # 5. Redis reachable, a worker for the model, a prompt the model can take?
        status = await store.prepare(job)
        # 6. Show the waiting line (with ❌), then enqueue: never the other way round,
        #    or this edit could land after a fast worker's result and overwrite it.
        line = messages.waiting(job, status.position, status.eta_s, running=status.running, paused=status.paused)
        waiting = await interaction.edit_original_response(
            content=line, allowed_mentions=replies.only_mention(job.user_id), view=cancel_view(job.id)
        )
        # 7. Queue it (its images beside it first). The workers keep the line up to date, then
        #    edit it (`@original`) with progress.
        if stored:
            await store.put_inputs(job.id, stored)
        await store.submit(job, waiting.id, roles, shown=line)
    except QueueFull as exc:
        await withdraw(interaction, str(exc), view=cancel_each_view(exc.jobs))
        return
    except PromptBlocked as exc:
        await moderation.answer_block(interaction, exc, job)
        return
    except DaydreamError as exc:
        await withdraw(interaction, str(exc))
        return
    except Exception:
        logger.exception("/imagine failed for job %s", job.id if job else "(not built)")
        await withdraw(interaction, messages.GENERIC_ERROR)
        return
    logger.info("queued %s job %s for user %s at #%s (%s)", job.kind, job.id, job.user_id, status.position, lane)


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
