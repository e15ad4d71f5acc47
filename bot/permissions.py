"""Who may do what, in one place (after RoboDanny's `cogs/utils/checks.py`):
buttons, reactions and admin commands call these same predicates.

* The bot itself must be able to post where a job's result goes.
* An admin is a member with Manage Server or Administrator in the server, one
  with a role in DAYDREAM_ADMIN_ROLE_IDS, or a user id in DAYDREAM_ADMIN_IDS.
* Anyone may click a result's buttons, unless CLICKS_BY_REQUESTER_ONLY
  restricts them to the requester and admins.
* Only the requester or an admin may cancel a job (❌)."""

from __future__ import annotations

import discord

from shared import messages
from shared.errors import NotAllowed
from shared.job import JobRecord
from shared.settings import Settings

# Past the 15-minute token the worker posts a plain channel message with the
# bot token, which needs these. Checked at submit time so nobody waits for a
# result that can never be delivered. In a thread (a forum post is one) Discord
# checks Send Messages in Threads instead of Send Messages.
REQUIRED_PERMISSIONS = {"send_messages": "Send Messages", "attach_files": "Attach Files"}
REQUIRED_IN_THREADS = {"send_messages_in_threads": "Send Messages in Threads", "attach_files": "Attach Files"}
THREADS = frozenset(
    {discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread}
)


def in_thread(interaction: discord.Interaction) -> bool:
    return getattr(interaction.channel, "type", None) in THREADS


def missing_bot_permissions(interaction: discord.Interaction) -> str | None:
    """The user-facing refusal when the bot cannot post in this channel, else None.

    Only checked in servers: in a DM with the bot there are no permissions to grant."""
    if interaction.guild_id is None:
        return None
    perms = interaction.app_permissions
    required = REQUIRED_IN_THREADS if in_thread(interaction) else REQUIRED_PERMISSIONS
    missing = [label for flag, label in required.items() if not getattr(perms, flag)]
    return messages.missing_bot_permissions(missing) if missing else None


def is_admin(
    settings: Settings, user_id: int, permissions: discord.Permissions | None, role_ids: frozenset[int] = frozenset()
) -> bool:
    """`permissions`: the member's in the server or channel (None in a DM); `role_ids`: their roles."""
    if user_id in settings.admin_user_ids or role_ids & settings.admin_role_ids:
        return True
    return permissions is not None and (permissions.administrator or permissions.manage_guild)


def roles_of(member: object) -> frozenset[int]:
    """The role ids of a guild member (none for a user outside a server)."""
    return frozenset(role.id for role in getattr(member, "roles", ()) or ())


def interaction_admin(settings: Settings, interaction: discord.Interaction) -> bool:
    return is_admin(settings, interaction.user.id, interaction.permissions, roles_of(interaction.user))


def check_admin(settings: Settings, interaction: discord.Interaction) -> None:
    """Raise NotAllowed unless the user of `interaction` may use the admin commands."""
    if not interaction_admin(settings, interaction):
        raise NotAllowed(messages.NOT_AN_ADMIN)


def check_may_click(settings: Settings, parent: JobRecord, user_id: int, admin: bool) -> None:
    """Raise NotAllowed unless `user_id` may use the buttons under `parent`."""
    if not settings.clicks_by_requester_only or user_id == parent.user_id or admin:
        return
    raise NotAllowed(messages.clicks_restricted(parent))


def may_cancel(job: JobRecord, user_id: int, admin: bool) -> bool:
    return user_id == job.user_id or admin
