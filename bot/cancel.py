"""/cancel [job]: cancel one of your jobs (your latest by default). A waiting
job is removed at once; a running one stops within one sampling step. Only
the requester or an admin may cancel (the same rule as ❌)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import permissions, replies
from bot.store import AsyncStore
from shared import messages
from shared.errors import DaydreamError
from shared.settings import Settings

logger = logging.getLogger(__name__)


class CancelCog(commands.Cog):
    def __init__(self, settings: Settings, store: AsyncStore) -> None:
        self.settings = settings
        self.store = store

    @app_commands.command(name="cancel", description="Cancel one of your jobs: your latest, or the one with this id.")
    @app_commands.describe(job="The job id (from ✉️ or /info); leave out for your latest job")
    async def cancel(self, interaction: discord.Interaction, job: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            if job is None:
                mine = await self.store.jobs_of(interaction.user.id)
                if not mine:
                    await replies.tell_privately(interaction, messages.NOTHING_TO_CANCEL)
                    return
                record = mine[-1]
            else:
                record = await self.store.get(job.strip())
            admin = permissions.interaction_admin(self.settings, interaction)
            if not permissions.may_cancel(record, interaction.user.id, admin):
                await replies.tell_privately(interaction, messages.cancel_refused(record))
                return
            if record.finished:
                await replies.tell_privately(interaction, messages.already_ended(record))
                return
            cancelled = await self.store.cancel(record.id, interaction.user.id)
        except DaydreamError as exc:
            await replies.tell_privately(interaction, str(exc))
            return
        logger.info("job %s cancelled by user %s (/cancel)", record.id, interaction.user.id)
        await replies.tell_privately(interaction, messages.cancelled_privately(record, cancelled is not None))
