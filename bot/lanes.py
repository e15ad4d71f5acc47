"""/fast, /relax, /turbo: the lane a member's new jobs take by default, as in
Midjourney. Turbo only for those an admin granted it to (/admin lane)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import permissions, replies
from bot.store import AsyncStore
from shared import messages
from shared.errors import DaydreamError

logger = logging.getLogger(__name__)


class LanesCog(commands.Cog):
    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def _set(self, interaction: discord.Interaction, lane: str) -> None:
        try:
            await self.store.set_default_lane(interaction.user.id, lane, permissions.roles_of(interaction.user))
        except DaydreamError as exc:
            await replies.tell_privately(interaction, str(exc))
            return
        logger.info("user %s chose the %s lane", interaction.user.id, lane)
        await replies.tell_privately(interaction, messages.lane_set(lane))

    @app_commands.command(name="fast", description="Your new jobs go to the fast lane (the default).")
    async def fast(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, "fast")

    @app_commands.command(name="relax", description="Your new jobs go to the relaxed lane: they run when it is quiet.")
    async def relax(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, "relax")

    @app_commands.command(name="turbo", description="Your new jobs go to the turbo lane, ahead of fast (if granted).")
    async def turbo(self, interaction: discord.Interaction) -> None:
        await self._set(interaction, "turbo")
