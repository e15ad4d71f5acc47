"""The bot's wiring: commands, buttons, intents, and syncing commands only when
Discord lacks them (with the harness of tests/support/discord_api.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.app import DaydreamBot, command_signatures, run_bot
from bot.buttons import ResultButton
from shared.errors import ConfigError
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_api import APP_ID, GUILD_ID, Harness, ids

# -- the bot's own wiring -------------------------------------------------


async def test_setup_registers_imagine_and_the_buttons_without_syncing(harness: Harness) -> None:
    bot = harness.bot
    imagine = bot.tree.get_command("imagine")
    assert imagine is not None
    assert ResultButton in bot._connection._view_store._dynamic_items.values()
    assert not harness.discord.calls  # sync=False: nothing sent to Discord
    assert bot.intents.guilds and bot.intents.guild_reactions
    assert not bot.intents.message_content and not bot.intents.members and not bot.intents.presences


async def test_command_fits_discord_limits(harness: Harness) -> None:
    tree = harness.bot.tree
    for command in tree.get_commands():
        spec = command.to_dict(tree)
        assert 1 <= len(spec["description"]) <= 100
        for option in spec["options"]:
            assert 1 <= len(option["description"]) <= 100


async def test_command_signatures_ignore_ids_but_not_options(harness: Harness) -> None:
    tree = harness.bot.tree
    local = [c.to_dict(tree) for c in tree.get_commands()]
    remote = [{**c, "id": "123", "application_id": str(APP_ID), "version": "9"} for c in json.loads(json.dumps(local))]
    assert command_signatures(local) == command_signatures(remote)
    remote[0]["options"][0]["description"] = "changed"
    assert command_signatures(local) != command_signatures(remote)
    assert command_signatures(local) != command_signatures([])


def test_run_bot_refuses_an_empty_token(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        run_bot(Settings(redis_url=redis_url, discord_token="  "))


class CommandRegistry:
    """Discord's command registry for one application, as the HTTP client sees it."""

    def __init__(self) -> None:
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self.upserts: list[int | None] = []

    def _stored(self, guild_id: int | None, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = [{**c, "id": str(next(ids)), "application_id": str(APP_ID), "version": "1"} for c in payload]
        if guild_id is not None:
            stored = [{**c, "guild_id": str(guild_id)} for c in stored]
        self.commands[guild_id] = stored
        self.upserts.append(guild_id)
        return stored

    async def get_guild_commands(self, application_id: int, guild_id: int) -> list[dict[str, Any]]:
        return self.commands.get(guild_id, [])

    async def get_global_commands(self, application_id: int) -> list[dict[str, Any]]:
        return self.commands.get(None, [])

    async def bulk_upsert_guild_commands(self, application_id: int, guild_id: int, payload: Any) -> Any:
        return self._stored(guild_id, payload)

    async def bulk_upsert_global_commands(self, application_id: int, payload: Any) -> Any:
        return self._stored(None, payload)


@pytest.mark.parametrize("guild_id", [GUILD_ID, None])
async def test_commands_are_synced_only_when_discord_lacks_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, guild_id: int | None
) -> None:
    registry = CommandRegistry()
    settings = Settings(redis_url=settings.redis_url, discord_token="test-token-not-real", discord_guild_id=guild_id)
    for start in range(3):
        bot = DaydreamBot(settings, JobStore(settings), sync=None if start < 2 else True)
        for name in (
            "get_guild_commands",
            "get_global_commands",
            "bulk_upsert_guild_commands",
            "bulk_upsert_global_commands",
        ):
            monkeypatch.setattr(bot.http, name, getattr(registry, name))
        bot._connection.application_id = APP_ID
        async with bot:
            await bot.setup_hook()
        bot.store.redis.close()
    # First start: Discord had nothing, so /imagine was pushed (to the dev guild when set).
    # Second: already there, nothing sent. Third: sync=True forces it.
    assert registry.upserts == [guild_id, guild_id]
    assert [c["name"] for c in registry.commands[guild_id]] == [
        "imagine",
        "cancel",
        "fast",
        "relax",
        "turbo",
        "prefer",
        "settings",
        "info",
        "show",
        "blend",
        "describe",
        "admin",
    ]
