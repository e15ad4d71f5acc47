"""`/admin …`: the server admins' commands, in one slash-command group. Each
feature adds its subcommands to `ADMIN` in a module of its own (`admin_*.py`,
imported by bot/app.py); every one of them checks `permissions.check_admin`
itself, since a server can change who sees a command (default_permissions
only hides it)."""

from __future__ import annotations

import discord
from discord import app_commands

ADMIN = app_commands.Group(
    name="admin",
    description="Daydream's admin commands (Manage Server, or set up by the host).",
    default_permissions=discord.Permissions(manage_guild=True),
    guild_only=True,
)
