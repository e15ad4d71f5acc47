"""The Discord front end: a `commands.Bot` that owns no state of its own.

Everything it needs to answer a click or a command lives in Redis or in the
custom_id, so it can be restarted at any time (ARCHITECTURE.md)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

# admin_* add their /admin commands; edits the openers of Vary (Region) and Custom Zoom;
# edits and remix the submit handlers of their modals (bot/modals.py)
from bot import (  # noqa: F401
    admin_defaults,
    admin_moderation,
    admin_queue,
    edits,
    endpoint,
    modals,
    remix,
    replies,
)
from bot import metrics as bot_metrics
from bot.admin import ADMIN
from bot.buttons import ResultButton
from bot.cancel import CancelCog
from bot.confirm import ConfirmButton
from bot.downloads import Downloader
from bot.imagine import ImagineCog
from bot.inputs import InputsCog
from bot.lanes import LanesCog
from bot.reactions import ReactionsCog
from bot.settings import SettingsButton, SettingsCog, SettingsSelect
from bot.store import AsyncStore
from shared import messages
from shared.errors import ConfigError, DaydreamError, QueueUnavailable
from shared.metrics import Endpoint, FigureCollector
from shared.settings import Settings
from shared.store import JobStore

logger = logging.getLogger(__name__)


def _intents() -> discord.Intents:
    # Only non-privileged intents, and only those used: slash commands and
    # buttons arrive as interactions whatever the intents; reactions (✉️, ❌)
    # need guild_reactions. No message events: the bot never reads chat.
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    return intents


class DaydreamTree(app_commands.CommandTree["DaydreamBot"]):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Last resort for what a command did not handle itself: log it, still answer."""
        original = getattr(error, "original", error)
        if isinstance(original, DaydreamError):
            await replies.tell_privately(interaction, str(original))
            return
        command = interaction.command.name if interaction.command else "?"
        logger.error("unhandled error in /%s", command, exc_info=original)
        await replies.tell_privately(interaction, messages.GENERIC_ERROR)


class DaydreamBot(commands.Bot):
    """`sync` decides whether slash commands are pushed to Discord at start-up:

    * ``True``: always (after changing a command's name, options or descriptions);
    * ``False``: never;
    * ``None`` (the default): only when Discord's copy differs from ours — one
      cheap GET per start, and a fresh install gets /imagine without a flag.

    The target is the DISCORD_GUILD_ID server when set (instant, for
    development), otherwise global (Discord may take up to an hour to show it
    everywhere). Syncing on every start would hit Discord's daily limit on
    command updates for nothing."""

    def __init__(self, settings: Settings, store: JobStore, *, sync: bool | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: the bot has slash commands only
            intents=_intents(),
            help_command=None,
            tree_cls=DaydreamTree,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            http_trace=bot_metrics.discord_trace(),  # Discord requests, 429s and retries for /metrics
        )
        self.settings = settings
        self.store = store  # synchronous: never called on the event loop; the cogs use `jobs`
        self.jobs = AsyncStore(store)
        self.sync = sync
        self.downloads = Downloader(settings)  # input images (bot/downloads.py)

    async def setup_hook(self) -> None:
        # Buttons first: they must work on every earlier message, before any event arrives.
        self.add_dynamic_items(ResultButton)
        self.add_dynamic_items(ConfirmButton)  # ✅ under a prompt of many jobs (bot/confirm.py)
        self.add_dynamic_items(SettingsSelect, SettingsButton)  # the /settings panel (bot/settings.py)
        await self.add_cog(ImagineCog(self.settings, self.jobs))
        await self.add_cog(ReactionsCog(self))  # ✉️ and ❌ on results and waiting lines
        await self.add_cog(CancelCog(self.settings, self.jobs))
        await self.add_cog(LanesCog(self.jobs))
        await self.add_cog(SettingsCog(self))  # /settings /prefer /info /show
        await self.add_cog(InputsCog(self.settings, self.jobs))  # /blend, /describe
        if ADMIN.commands:  # /admin …, as the features registered them (bot/admin_*.py)
            self.tree.add_command(ADMIN)
        if self.sync is not False:
            await self.sync_commands(force=bool(self.sync))

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Push the slash commands to the guild (if configured) or globally.
        Returns whether a sync happened."""
        guild = discord.Object(id=self.settings.discord_guild_id) if self.settings.discord_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        where = f"guild {guild.id}" if guild else "globally"
        if not force:
            remote = await self.tree.fetch_commands(guild=guild)
            local = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
            if command_signatures(local) == command_signatures([c.to_dict() for c in remote]):
                logger.info("slash commands already up to date %s", where)
                return False
        synced = await self.tree.sync(guild=guild)
        logger.info("synced %d slash command(s) %s: %s", len(synced), where, ", ".join(c.name for c in synced))
        return True

    async def close(self) -> None:
        await self.downloads.close()
        await super().close()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Daydream's modals are routed by custom_id, not by discord.py's memory (bot/modals.py).
        await modals.dispatch(interaction, self.settings, self.jobs)

    async def on_ready(self) -> None:
        logger.info("connected as %s (id %s) to %d server(s)", self.user, self.user and self.user.id, len(self.guilds))

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        logger.exception("unhandled error in event %s", event_method)


def command_signatures(commands_: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """What a user sees of a command; differences elsewhere (ids, versions) don't need a sync."""

    def option(o: dict[str, Any]) -> tuple[Any, ...]:
        return (o["name"], o["type"], o.get("description", ""), bool(o.get("required", False)))

    return {
        (c["name"], c.get("type", 1), c.get("description", ""), tuple(option(o) for o in c.get("options", [])))
        for c in commands_
    }


def run_bot(settings: Settings, *, sync: bool | None = None, metrics_port: int | None = None) -> None:
    """Build the bot and run it until interrupted (blocking). Raises ConfigError
    with a clear message when DISCORD_TOKEN is missing. `metrics_port`: where
    Prometheus scrapes the bot (None: METRICS_PORT; 0: no endpoint)."""
    if not settings.discord_token.strip():
        raise ConfigError(
            "DISCORD_TOKEN",
            "DISCORD_TOKEN is empty: the bot cannot log in. Create a bot in the Discord developer portal, "
            "put its token in DISCORD_TOKEN (environment or .env), then run `daydream bot` again.",
        )
    endpoint.configure(settings)  # points discord.py at DISCORD_API_BASE / DISCORD_GATEWAY_URL

    store = JobStore(settings)
    try:
        store.ping()
    except QueueUnavailable:
        # Start anyway: each request then gets the clear "queue unreachable" answer,
        # and the bot recovers by itself once Redis is back.
        logger.warning("Redis is not reachable yet; jobs will be refused until it is")
    # Neither the Redis URL (it may hold a password) nor the token is logged.
    logger.info("starting the bot (queue %r, command guild %s)", settings.queue_name, settings.discord_guild_id)
    bot = DaydreamBot(settings, store, sync=sync)
    metrics_endpoint = Endpoint(settings.metrics_port if metrics_port is None else metrics_port)
    metrics_endpoint.add(FigureCollector(lambda: bot_metrics.queue_figures(store)))
    metrics_endpoint.start()
    try:
        bot.run(settings.discord_token, log_handler=None)
    finally:
        metrics_endpoint.close()
