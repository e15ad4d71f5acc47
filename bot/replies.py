"""What the bot says: the waiting line, the permission check, and the one way
to tell a user about an error whether or not the interaction was answered."""

from __future__ import annotations

import logging
import time

import discord

from shared.job import JobRecord, ReplyTarget

logger = logging.getLogger(__name__)

GENERIC_ERROR = (
    "Something went wrong on our side, so your request was not completed. "
    "Try again in a moment; if it keeps happening, tell a server admin."
)

# Past the 15-minute token the worker posts a plain channel message with the
# bot token, which needs these. Checked at submit time so nobody waits for a
# result that can never be delivered.
REQUIRED_PERMISSIONS = {"send_messages": "Send Messages", "attach_files": "Attach Files"}


def missing_permissions(interaction: discord.Interaction) -> str | None:
    """The user-facing refusal when the bot cannot post in this channel, else None.

    Only checked in servers: in a DM with the bot there are no permissions to grant."""
    if interaction.guild_id is None:
        return None
    perms = interaction.app_permissions
    missing = [label for flag, label in REQUIRED_PERMISSIONS.items() if not getattr(perms, flag)]
    if not missing:
        return None
    names = " and ".join(f"**{name}**" for name in missing)
    return (
        f"I can't deliver images in this channel: I'm missing the {names} permission here. "
        "A server admin must grant it to Daydream in this channel's settings, then try again."
    )


def waiting_text(record: JobRecord, position: int | None) -> str:
    """`**<prompt>** - <@user> (Waiting to start, #N in queue)` — the line the worker later replaces."""
    where = f"Waiting to start, #{position} in queue" if position else "Waiting to start"
    return f"{record.title} - {record.mention()} ({where})"


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


def message_link(reply: ReplyTarget) -> str | None:
    """A link to the message that shows (or will show) a job's result."""
    if reply.message_url:
        return reply.message_url
    if reply.message_id and reply.channel_id:
        return f"https://discord.com/channels/{reply.guild_id or '@me'}/{reply.channel_id}/{reply.message_id}"
    return None


async def tell_privately(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer, as a first response or as a follow-up after a defer.

    A failure to answer is logged, never raised: the caller is usually already
    handling an error."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except discord.HTTPException:
        logger.exception("could not send an ephemeral answer to interaction %s", interaction.id)
