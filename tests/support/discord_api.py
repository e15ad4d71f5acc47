"""Fakes of Discord's API as discord.py's two HTTP paths see it, written once:

* `RecordingDiscord` stands in for `AsyncWebhookAdapter.request`, through which
  discord.py sends every interaction request (answers, edits, follow-ups);
* `RecordingRest` stands in for `HTTPClient.request`, the bot-token REST calls
  (fetch a message, open a DM, send, edit, delete).

Both record each request and answer with payloads shaped like Discord's. With
them, `Harness` drives a real `DaydreamBot`: real discord.py `Interaction`s
built from gateway payloads and fed through `ConnectionState.parse_interaction_create`,
the path a real INTERACTION_CREATE takes. No network."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bot.app import DaydreamBot
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker

APP_ID = 700000000000000001
GUILD_ID = 700000000000000002
CHANNEL_ID = 700000000000000003
USER_ID = 700000000000000004
OTHER_USER_ID = 700000000000000005
EPHEMERAL = 1 << 6
DEFERRED_THINKING = 5  # interaction callback types
DEFERRED_UPDATE = 6
CHANNEL_MESSAGE = 4
DM_CHANNEL_ID = 700000000000000010
ALL_NEEDED = discord.Permissions(view_channel=True, send_messages=True, attach_files=True, embed_links=True)
# What a plain member of a server may do (not Manage Server: that makes a Daydream admin).
MEMBER = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
)

ids = itertools.count(800000000000000001)  # snowflakes for every fake object


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
        self.originalids: dict[str, int] = {}  # interaction token -> its original message id

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
            call.message_id = self.originalids.setdefault(token, next(ids))
        elif route.method == "POST":  # a follow-up
            call.message_id = next(ids)
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
    thread: bool = False,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload from a server text channel (or a thread in it)."""
    interaction_id = next(ids)
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
            "permissions": str((member_permissions or MEMBER).value),
        },
    }
    if thread:  # a public thread (type 11), as a forum post also is
        payload["channel"].update(type=11, parent_id=str(next(ids)), thread_metadata={
            "archived": False, "auto_archive_duration": 1440, "archive_timestamp": "2026-01-01T00:00:00+00:00",
            "locked": False,
        }, owner_id=str(user_id), message_count=1, member_count=1)  # fmt: skip
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
            "id": str(next(ids)),
            "name": "imagine",
            "type": 1,
            "options": [{"name": "prompt", "type": 3, "value": prompt}],
        }
        payload = interaction_payload(2, data, **kwargs)
        await self.deliver(payload)
        return payload

    async def command(
        self, name: str, options: dict[str, Any] | None = None, *, sub: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A slash command (`sub`: a subcommand of the group `name`), its options as {name: value}."""
        kinds = {bool: 5, int: 4, str: 3}
        opts = [{"name": k, "type": kinds[type(v)], "value": v} for k, v in (options or {}).items()]
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        data = {"id": str(next(ids)), "name": name, "type": 1, "options": opts}
        payload = interaction_payload(2, data, **kwargs)
        await self.deliver(payload)
        return payload

    def click_payload(
        self, custom_id: str, components: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A click on `custom_id`, on a message that carries `components` (by default just that button)."""
        if components is None:
            components = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "?", "custom_id": custom_id}]}]
        message = message_payload(next(ids), "**a result**", components)
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


def worker_alive(store: JobStore) -> None:
    """A live worker holding the embedded model, as its heartbeat announces it."""
    announce_worker(store, "w1")


@dataclass
class RestCall:
    method: str
    path: str  # discord.py's route template
    url: str
    payload: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)


class RecordingRest:
    """Discord's REST API as far as reactions go: messages, DMs, edits, deletions."""

    def __init__(self) -> None:
        self.calls: list[RestCall] = []
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> payload, in CHANNEL_ID
        self.dms_closed = False

    def post(self, content: str, components: list[dict[str, Any]] | None = None, author_id: int = APP_ID) -> int:
        """A message in the channel, as GET /channels/{id}/messages/{id} will return it."""
        message_id = next(ids)
        payload = message_payload(message_id, content, components)
        payload["author"] = {**user_payload(author_id), "bot": author_id == APP_ID}
        self.messages[message_id] = payload
        return message_id

    async def request(self, route: Any, *, files: Any = None, form: Any = None, **kwargs: Any) -> Any:
        payload = kwargs.get("json") or {}
        if form:
            payload = json.loads(next(part["value"] for part in form if part["name"] == "payload_json"))
        call = RestCall(route.method, route.path, route.url, payload)
        # discord.py closes the files once the request returns: read them now.
        call.files = [(f.filename, f.fp.getvalue()) for f in files or []]
        self.calls.append(call)
        if route.path == "/channels/{channel_id}/messages/{message_id}":
            message_id = int(route.url.rsplit("/", 1)[1])
            if message_id not in self.messages:
                raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), {"code": 10008})
            if route.method == "GET":
                return self.messages[message_id]
            if route.method == "DELETE":
                del self.messages[message_id]
                return None
            if route.method == "PATCH":
                self.messages[message_id] = {**self.messages[message_id], **payload}
                return self.messages[message_id]
        if route.path == "/users/@me/channels":
            recipient = {**user_payload(int(payload["recipient_id"])), "bot": False}
            return {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [recipient], "last_message_id": None}
        if route.path == "/channels/{channel_id}/messages" and route.method == "POST":
            if self.dms_closed and int(route.channel_id) == DM_CHANNEL_ID:
                raise discord.Forbidden(
                    SimpleNamespace(status=403, reason="Forbidden"),
                    {"code": 50007, "message": "Cannot send messages to this user"},
                )
            sent = message_payload(next(ids), payload.get("content", ""))
            return {**sent, "channel_id": route.channel_id}
        raise AssertionError(f"unexpected request {route.method} {route.path}")

    def find(self, method: str, path: str) -> list[RestCall]:
        return [c for c in self.calls if c.method == method and c.path == path]

    @property
    def changes(self) -> list[RestCall]:
        """Everything but reads: what a user would see."""
        return [c for c in self.calls if c.method != "GET"]
