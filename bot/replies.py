"""How the bot answers: privately (whether or not the interaction was answered
yet), pinging only the requester, and the reply target a worker needs."""

from __future__ import annotations

import logging
import time

import discord

from shared.job import ReplyTarget

logger = logging.getLogger(__name__)


def only_mention(user_id: int | None) -> discord.AllowedMentions:
    """Ping the requester and nobody else: the prompt is user text and may hold
    `@everyone` or role mentions."""
    users = [discord.Object(id=user_id)] if user_id else []
    return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=False)


def reply_target(interaction: discord.Interaction, lifetime_s: int) -> ReplyTarget:
    """Everything a worker needs to answer this interaction, now or after its token expired."""
    return ReplyTarget(
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        token_expires_at=time.time() + lifetime_s,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
    )


async def tell_privately(interaction: discord.Interaction, message: str, view: discord.ui.View | None = None) -> None:
    """An ephemeral answer, as a first response or as a follow-up after a defer
    (with buttons, when `view` is given).

    A failure to answer is logged, never raised: the caller is usually already
    handling an error."""
    extra = {"view": view} if view is not None else {}
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none(), **extra
            )
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none(), **extra
            )
    except discord.HTTPException:
        logger.exception("could not send an ephemeral answer to interaction %s", interaction.id)
