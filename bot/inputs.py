"""Input images from Discord: /imagine's image prompts (attachments and CDN links at
the start of the prompt), /blend (2–5 attachments) and /describe (one).

What can be checked without downloading (the hosts of links, the size and type
Discord declares for an attachment) is refused before the interaction is even
deferred; downloads (time-limited, bot/downloads.py) and decoding (in a thread,
shared/uploads.py) come after the defer, and a refusal then takes the public
"thinking…" down and answers privately. What is stored beside the job is
Daydream's own PNG of each image."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import moderation, permissions, replies
from bot.buttons import cancel_each_view, cancel_view
from bot.downloads import fetch_images, precheck
from bot.imagine import withdraw
from bot.store import AsyncStore
from shared import messages
from shared.builders import MAX_BLEND, blend_job, describe_job, with_inputs
from shared.errors import DaydreamError, QueueFull
from shared.job import JobRecord
from shared.models import model_name
from shared.settings import Settings
from shared.uploads import CheckedImage

logger = logging.getLogger(__name__)


async def queue_job(
    interaction: discord.Interaction, job: JobRecord, images: list[CheckedImage], store: AsyncStore
) -> None:
    """Store the inputs beside the job, show the waiting line, queue it (as /imagine does)."""
    roles = permissions.roles_of(interaction.user)
    stored = with_inputs(job, images)  # first: what the job needs of the model depends on its inputs
    status = await store.prepare(job)
    line = messages.waiting(job, status.position, status.eta_s, running=status.running, paused=status.paused)
    waiting = await interaction.edit_original_response(
        content=line, allowed_mentions=replies.only_mention(job.user_id), view=cancel_view(job.id)
    )
    await store.put_inputs(job.id, stored)
    await store.submit(job, waiting.id, roles, shown=line)


async def submit_with_inputs(
    interaction: discord.Interaction,
    attachments: list[discord.Attachment],
    build,
    settings: Settings,
    store: AsyncStore,
) -> None:
    """/blend and /describe: check, defer, download, build, queue; every refusal private."""
    # 1. What needs no download, and the bot's own permissions here.
    try:
        precheck([], attachments, settings)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
        return
    refusal = permissions.missing_bot_permissions(interaction)
    if refusal:
        await replies.tell_privately(interaction, refusal)
        return
    # 2. Acknowledge: downloads take longer than Discord's 3 s.
    await interaction.response.defer(thinking=True)
    job = None
    try:
        images = await fetch_images(interaction, [], attachments, settings)
        roles = permissions.roles_of(interaction.user)
        lane = await store.resolve_lane(interaction.user.id, roles, None)
        reply = replies.reply_target(interaction, settings.token_lifetime_s)
        job = build(len(images), interaction.user.id, model_name(settings.model), reply, lane)
        # The server's moderation policy (bans, cooldowns), as for /imagine.
        job.venue = moderation.venue_of(interaction)
        await store.call(store.sync.moderation.screen, job)
        await queue_job(interaction, job, images, store)
    except QueueFull as exc:
        await withdraw(interaction, str(exc), view=cancel_each_view(exc.jobs))
        return
    except DaydreamError as exc:
        await withdraw(interaction, str(exc))
        return
    except Exception:
        logger.exception("/%s failed", interaction.command.name if interaction.command else "?")
        await withdraw(interaction, messages.GENERIC_ERROR)
        return
    logger.info("queued %s job %s for user %s", job.kind, job.id, job.user_id)


class InputsCog(commands.Cog):
    def __init__(self, settings: Settings, store: AsyncStore) -> None:
        self.settings = settings
        self.store = store

    @app_commands.command(name="blend", description="Blend 2 to 5 images into four new ones.")
    @app_commands.describe(dimensions="The shape of the results (default: square)")
    @app_commands.choices(
        dimensions=[app_commands.Choice(name=n, value=n) for n in ("portrait", "square", "landscape")]
    )
    async def blend_command(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
    ) -> None:
        attachments = [a for a in (image1, image2, image3, image4, image5) if a is not None][:MAX_BLEND]
        shape = dimensions.value if dimensions is not None else None

        def build(count: int, user_id: int, model: str, reply, lane: str) -> JobRecord:
            return blend_job(count, shape, user_id, model, reply=reply, lane=lane)

        await submit_with_inputs(interaction, attachments, build, self.settings, self.store)

    @app_commands.command(name="describe", description="Four prompts that describe an image.")
    async def describe_command(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        def build(count: int, user_id: int, model: str, reply, lane: str) -> JobRecord:
            return describe_job(user_id, model, reply=reply, lane=lane)

        await submit_with_inputs(interaction, [image], build, self.settings, self.store)
