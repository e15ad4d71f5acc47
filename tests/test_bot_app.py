"""The bot's wiring, and the harness the other bot tests share.

No network: real discord.py `Interaction`s are built from gateway payloads and
fed through `ConnectionState.parse_interaction_create`, the path a real
INTERACTION_CREATE takes. discord.py sends every interaction request (answers,
edits, follow-ups) through one `AsyncWebhookAdapter.request`; a recording
adapter stands in for Discord's REST API there and answers with payloads
shaped like Discord's."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bot.app import DaydreamBot, command_signatures, run_bot
from bot.buttons import ResultButton
from shared.errors import InvalidRequest
from shared.settings import Settings
from shared.store import JobStore

APP_ID = 700000000000000001
GUILD_ID = 700000000000000002
CHANNEL_ID = 700000000000000003
USER_ID = 700000000000000004
OTHER_USER_ID = 700000000000000005
EPHEMERAL = 1 << 6
DEFERRED_THINKING = 5  # interaction callback types
DEFERRED_UPDATE = 6
CHANNEL_MESSAGE = 4
ALL_NEEDED = discord.Permissions(view_channel=True, send_messages=True, attach_files=True, embed_links=True)

_ids = itertools.count(800000000000000001)


@dataclass
class Call:
    method: str
    path: str  # discord.py's route template, e.g. /webhooks/{webhook_id}/{webhook_token}/messages/@original
    url: str
    payload: dict[str, Any]
    message_id: int | None = None  # the message the response describes, if any

    @property
    def ephemeral(self) -> bool:
        flags = self.payload.get("flags") or self.payload.get("data", {}).get("flags") or 0
        return bool(flags & EPHEMERAL)

    @property
    def content(self) -> str:
        return self.payload.get("content") or self.payload.get("data", {}).get("content") or ""


def message_payload(message_id: int, content: str, components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": str(message_id),
        "channel_id": str(CHANNEL_ID),
        "author": {"id": str(APP_ID), "username": "Daydream", "discriminator": "0", "avatar": None, "bot": True},
        "content": content,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": components or [],
    }


class RecordingDiscord(AsyncWebhookAdapter):
    """Discord's REST API as far as interactions go: records each request, answers it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.original_ids: dict[str, int] = {}  # interaction token -> its original message id

    async def request(self, route: Any, session: Any, *, payload: Any = None, multipart: Any = None, **_: Any) -> Any:
        if payload is None and multipart:
            payload = json.loads(multipart[0]["value"])  # payload_json
        call = Call(route.method, route.path, route.url, payload or {})
        self.calls.append(call)
        token = route.webhook_token
        if route.path.endswith("/callback"):
            return {"interaction": {"id": str(route.webhook_id), "type": 2}}
        if route.method == "DELETE":
            return None
        if route.path.endswith("@original"):
            call.message_id = self.original_ids.setdefault(token, next(_ids))
        elif route.method == "POST":  # a follow-up
            call.message_id = next(_ids)
        else:
            call.message_id = int(route.url.rsplit("/", 1)[1])
        return message_payload(call.message_id, call.content)

    def find(self, method: str, path_end: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.endswith(path_end)]

    @property
    def answers(self) -> list[Call]:
        """Interaction callbacks: the first answer to each interaction."""
        return self.find("POST", "/callback")

    @property
    def followups(self) -> list[Call]:
        return self.find("POST", "/webhooks/{webhook_id}/{webhook_token}")

    def ephemeral_texts(self) -> list[str]:
        return [c.content for c in self.calls if c.ephemeral]


def user_payload(user_id: int) -> dict[str, Any]:
    return {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "avatar": None, "global_name": None}


def interaction_payload(
    kind: int,
    data: dict[str, Any],
    *,
    user_id: int = USER_ID,
    app_permissions: discord.Permissions = ALL_NEEDED,
    member_permissions: discord.Permissions | None = None,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload from a server text channel."""
    interaction_id = next(_ids)
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(APP_ID),
        "type": kind,
        "data": data,
        "token": f"interaction-token-{interaction_id}",
        "version": 1,
        "attachment_size_limit": 10 * 1024 * 1024,
        "locale": "en-US",
        "guild_locale": "en-US",
        "guild_id": str(GUILD_ID),
        "channel_id": str(CHANNEL_ID),
        "channel": {
            "id": str(CHANNEL_ID),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": "art",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        },
        "app_permissions": str(app_permissions.value),
        "member": {
            "user": user_payload(user_id),
            "roles": [],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str((member_permissions or discord.Permissions.general()).value),
        },
    }
    if message is not None:
        payload["message"] = message
    return payload


class Harness:
    """A started bot with a recording Discord, and a way to deliver interactions to it."""

    def __init__(self, bot: DaydreamBot, discord_api: RecordingDiscord) -> None:
        self.bot = bot
        self.store = bot.store
        self.discord = discord_api

    async def deliver(self, *payloads: dict[str, Any]) -> None:
        """Dispatch as the gateway would, then wait for the handlers discord.py started.

        The adapter is installed in this task's context: the handler tasks copy
        it when they are created."""
        async_context.set(self.discord)
        before = asyncio.all_tasks()
        for payload in payloads:
            self.bot._connection.parse_interaction_create(payload)
        started = asyncio.all_tasks() - before
        await asyncio.gather(*started)

    async def imagine(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        data = {
            "id": str(next(_ids)),
            "name": "imagine",
            "type": 1,
            "options": [{"name": "prompt", "type": 3, "value": prompt}],
        }
        payload = interaction_payload(2, data, **kwargs)
        await self.deliver(payload)
        return payload

    def click_payload(
        self, custom_id: str, components: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A click on `custom_id`, on a message that carries `components` (by default just that button)."""
        if components is None:
            components = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "?", "custom_id": custom_id}]}]
        message = message_payload(next(_ids), "**a result**", components)
        return interaction_payload(3, {"custom_id": custom_id, "component_type": 2}, message=message, **kwargs)

    async def click(self, custom_id: str, components: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        await self.deliver(self.click_payload(custom_id, components, **kwargs))


async def start_bot(settings: Settings) -> AsyncIterator[Harness]:
    store = JobStore(settings)
    bot = DaydreamBot(settings, store, sync=False)
    try:
        async with bot:  # sets up the loop-bound parts, as login() would, without a network
            # What READY would have told a connected bot about itself.
            bot._connection.user = discord.ClientUser(state=bot._connection, data={**user_payload(APP_ID), "bot": True})
            await bot.setup_hook()
            yield Harness(bot, RecordingDiscord())
    finally:
        store.redis.close()


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


def worker_alive(store: JobStore) -> None:
    store.heartbeat("w1", {"name": "w1", "device": "cpu", "model": "embedded", "job": None})


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
    with pytest.raises(InvalidRequest, match="DISCORD_TOKEN"):
        run_bot(Settings(redis_url=redis_url, discord_token="  "))


class CommandRegistry:
    """Discord's command registry for one application, as the HTTP client sees it."""

    def __init__(self) -> None:
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self.upserts: list[int | None] = []

    def _stored(self, guild_id: int | None, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = [{**c, "id": str(next(_ids)), "application_id": str(APP_ID), "version": "1"} for c in payload]
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
    assert [c["name"] for c in registry.commands[guild_id]] == ["imagine"]
