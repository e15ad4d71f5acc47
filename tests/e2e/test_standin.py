"""discord.py itself is the judge of the stand-in: a plain `commands.Bot`
(not Daydream's) pointed at it by `bot.endpoint.configure` logs in, joins
the gateway, syncs, answers a slash command and a button, and survives a 429,
a dropped connection, RECONNECT and INVALID_SESSION. Raw-HTTP checks show
Discord's rules, each with Discord's error shape: what it refuses in a body,
who may post or edit where, allowed_mentions, nonces, attachments, the bot
token, and the invalid requests it counts against an IP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot import endpoint
from shared.settings import Settings

from .standin import (
    BOT_ROLE_ID,
    CHANNEL_MESSAGE,
    CONTEXT_BOT_DM,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    Json,
    Standin,
    Upload,
)

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buffer, format="PNG")
    return buffer.getvalue()


class GridButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"probe:(?P<action>[uv]):(?P<index>[1-4])"):
    """Routed by custom_id alone, like Daydream's buttons."""

    def __init__(self, action: str, index: int) -> None:
        super().__init__(discord.ui.Button(label=f"{action.upper()}{index}", custom_id=f"probe:{action}:{index}"))
        self.action, self.index = action, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> GridButton:
        return cls(match["action"], int(match["index"]))

    async def callback(self, interaction: discord.Interaction[ProbeBot]) -> None:
        await interaction.response.defer()  # the silent kind: type 6
        interaction.client.clicks.append((self.action, self.index))
        await interaction.followup.send(f"{self.action}{self.index} for <@{interaction.user.id}>")


@app_commands.command(description="Draw four pictures")
@app_commands.describe(prompt="what to draw")
async def imagine(interaction: discord.Interaction[ProbeBot], prompt: app_commands.Range[str, 1, 100]) -> None:
    await interaction.response.defer(thinking=True)
    view = discord.ui.View(timeout=None)
    for index in range(1, 5):
        view.add_item(GridButton("u", index))
    grid = discord.File(io.BytesIO(png_bytes()), filename="grid.png")
    await interaction.followup.send(f"**{prompt}**", file=grid, view=view)


class ProbeBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        # guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE before on_ready.
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.guild_id = guild_id
        self.clicks: list[tuple[str, int]] = []
        self.resumed = asyncio.Event()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(GridButton)
        guild = discord.Object(self.guild_id)
        self.tree.add_command(imagine, guild=guild)
        await self.tree.sync(guild=guild)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py waits 5 s before a re-IDENTIFY for Discord's identify limit; the stand-in has none


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    async with Standin() as server:
        # Only the API base: the gateway URL is derived from it (no DISCORD_GATEWAY_URL).
        endpoint.configure(Settings(discord_api_base=server.api_base))
        try:
            yield server
        finally:
            endpoint.configure(Settings())  # discord.py back on discord.com for other tests


@contextlib.asynccontextmanager
async def running(standin: Standin) -> AsyncIterator[ProbeBot]:
    bot = ProbeBot(standin.guild_id)
    connection: asyncio.Task[None] | None = None
    try:
        await bot.login(standin.token)
        connection = asyncio.create_task(bot.connect())
        await asyncio.wait_for(bot.wait_until_ready(), WAIT_S)
        yield bot
    finally:
        await bot.close()
        if connection is not None:
            await asyncio.wait_for(connection, WAIT_S)


def test_configure_points_discord_py_at_the_standin_and_back() -> None:
    settings = Settings(discord_api_base="http://127.0.0.1:9/api/v10", discord_gateway_url="ws://127.0.0.1:10/gw")
    try:
        endpoint.configure(settings)
        assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:10/gw"
        endpoint.configure(Settings(discord_api_base="https://chat.example/api/v9"))
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://chat.example/"
    finally:
        endpoint.configure(Settings())
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"


async def test_login_gateway_and_guild_cache(standin: Standin) -> None:
    async with running(standin) as bot:
        assert bot.user is not None and bot.user.id == standin.application_id
        guild = bot.get_guild(standin.guild_id)
        assert guild is not None and guild.me is not None and guild.member_count == 2
        channel = bot.get_channel(standin.channel_id)
        assert isinstance(channel, discord.TextChannel) and channel.guild == guild
        assert channel.permissions_for(guild.me).attach_files
        session = standin.sessions[0]
        assert session.compression == "zlib-stream" and standin.heartbeats >= 1
    [command] = standin.commands(standin.guild_id)
    [option] = command["options"]
    assert (command["name"], option["name"], option["type"], option["required"]) == ("imagine", "prompt", 3, True)


async def test_slash_command_deferred_then_grid_then_click(standin: Standin) -> None:
    async with running(standin) as bot:
        slash = await standin.slash_command("imagine", {"prompt": "a red square"})
        grid = await standin.wait_for(lambda: standin.messages(standin.channel_id, with_attachments=True))

        [callback] = standin.interaction_responses(slash.id)
        assert callback.type == DEFERRED_CHANNEL_MESSAGE and callback.accepted
        assert slash.ack_latency_s is not None and slash.ack_latency_s < 3.0
        [message] = grid
        # The first follow-up answers the "thinking" message: one message, one edit.
        assert message.id == slash.original_message_id and not message.loading and message.edits == 1
        assert [r.via for r in message.revisions] == ["interaction", "webhook"]
        assert message.content == "**a red square**" and not message.ephemeral
        assert message.attachment("grid.png").data == png_bytes()
        assert (message.attachment("grid.png").width, message.attachment("grid.png").height) == (64, 48)
        assert message.custom_ids == [f"probe:u:{i}" for i in range(1, 5)]

        # discord.py downloads the attachment from the URL the stand-in handed out.
        channel = bot.get_channel(standin.channel_id)
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(message.id)
        assert await fetched.attachments[0].read() == png_bytes()

        click = await standin.click(message.id, "probe:u:2")
        reply = await standin.wait_for(lambda: [m for m in standin.messages() if m.interaction_id == click.id])
        assert bot.clicks == [("u", 2)]
        assert [c.type for c in standin.interaction_responses(click.id)] == [DEFERRED_UPDATE_MESSAGE]
        assert reply[0].content == f"u2 for <@{standin.member.id}>" and reply[0].mentions == [standin.member.id]


async def test_rate_limited_message_is_retried_once(standin: Standin) -> None:
    async with running(standin) as bot:
        fault = standin.fail("POST /channels/*/messages", status=429, retry_after=0.3)
        channel = bot.get_partial_messageable(standin.channel_id)
        sent = await channel.send("after the 429")

        assert fault.hits == 1
        assert [m.id for m in standin.messages(standin.channel_id)] == [sent.id]
        first, second = standin.requests_to("POST /channels/*/messages")
        assert (first.status, first.fault, second.status) == (429, "injected", 200)
        assert second.received_at - first.received_at >= 0.3


async def test_server_error_is_retried(standin: Standin) -> None:
    async with running(standin) as bot:
        standin.fail("POST /channels/*/messages", status=502)
        sent = await bot.get_partial_messageable(standin.channel_id).send("after the 502")
        assert [r.status for r in standin.requests_to("POST /channels/*/messages")] == [502, 200]
        assert [m.id for m in standin.messages(standin.channel_id)] == [sent.id]


async def test_gateway_disconnect_resumes_and_replays(standin: Standin) -> None:
    async with running(standin) as bot:
        await standin.disconnect_gateway()
        # Sent while the bot is away: Discord keeps it for the RESUME.
        slash = await standin.slash_command("imagine", {"prompt": "still here"}, wait_connected=False)
        await asyncio.wait_for(bot.resumed.wait(), WAIT_S)
        await standin.wait_for(lambda: standin.messages(standin.channel_id, with_attachments=True))
        assert standin.resume_count == 1 and standin.identify_count == 1
        assert slash.acknowledged


async def test_invalidated_session_identifies_again(standin: Standin) -> None:
    async with running(standin):
        await standin.disconnect_gateway(resumable=False)
        second = await standin.wait_for(lambda: standin.identify_count == 2 and standin.live_session())
        slash = await standin.slash_command("imagine", {"prompt": "new session"})
        await standin.wait_for(lambda: slash.acknowledged)
        assert slash.session_id == second.id and standin.resume_count == 0


async def add_guild_command(bot: ProbeBot, standin: Standin, name: str, callback: Any) -> None:
    command = app_commands.Command(name=name, description=f"/{name} for a test", callback=callback)
    bot.tree.add_command(command, guild=discord.Object(standin.guild_id))
    await bot.tree.sync(guild=discord.Object(standin.guild_id))


async def test_expired_token_is_refused(standin: Standin) -> None:
    async with running(standin) as bot:
        outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        async def late(interaction: discord.Interaction[ProbeBot]) -> None:
            await interaction.response.defer(thinking=True)
            standin.expire_token(interaction.id)
            try:
                await interaction.followup.send("too late")
            except discord.HTTPException as error:
                outcome.set_result(error)
            else:
                outcome.set_result(None)

        await add_guild_command(bot, standin, "late", late)
        await standin.slash_command("late")
        error = await asyncio.wait_for(outcome, WAIT_S)
        assert isinstance(error, discord.HTTPException) and (error.status, error.code) == (401, 50027)


async def test_ack_deadline_is_enforced() -> None:
    async with Standin(ack_deadline_s=0.0) as standin:
        endpoint.configure(Settings(discord_api_base=standin.api_base))
        try:
            async with running(standin) as bot:
                outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

                async def slow(interaction: discord.Interaction[ProbeBot]) -> None:
                    try:
                        await interaction.response.defer()
                    except discord.HTTPException as error:
                        outcome.set_result(error)
                    else:
                        outcome.set_result(None)

                await add_guild_command(bot, standin, "slow", slow)
                slash = await standin.slash_command("slow")
                error = await asyncio.wait_for(outcome, WAIT_S)
                assert isinstance(error, discord.NotFound) and error.code == 10062
                [callback] = standin.interaction_responses(slash.id)
                assert not callback.accepted and not slash.acknowledged
        finally:
            endpoint.configure(Settings())


async def test_discord_refusals_over_raw_http(standin: Standin) -> None:
    async with running(standin) as bot:
        unanswered = asyncio.Event()

        async def raw(interaction: discord.Interaction[ProbeBot]) -> None:
            unanswered.set()  # the test answers over raw HTTP instead

        await add_guild_command(bot, standin, "raw", raw)
        slash = await standin.slash_command("raw")
        await asyncio.wait_for(unanswered.wait(), WAIT_S)
        base, auth = standin.api_base, {"Authorization": f"Bot {standin.token}"}
        async with aiohttp.ClientSession() as http:
            callback = f"{base}/interactions/{slash.id}/{slash.token}/callback?with_response=true"
            async with http.post(callback, json={"type": CHANNEL_MESSAGE, "data": {"content": "hi"}}) as r:
                body = await r.json()
                assert r.status == 200 and body["resource"]["message"]["content"] == "hi"
            async with http.post(callback, json={"type": CHANNEL_MESSAGE, "data": {"content": "again"}}) as r:
                assert (r.status, (await r.json())["code"]) == (400, 40060)

            channel = f"{base}/channels/{standin.channel_id}/messages"
            long_id = {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "x" * 101}]}
            async with http.post(channel, json={"content": "x", "components": [long_id]}, headers=auth) as r:
                assert (r.status, (await r.json())["code"]) == (400, 50035)
            async with http.post(channel, json={"content": ""}, headers=auth) as r:
                assert (r.status, (await r.json())["code"]) == (400, 50006)
            async with http.post(channel, json={"content": "no token"}) as r:
                assert r.status == 401
            async with http.post(channel, json={"content": "ok"}, headers=auth) as r:
                assert r.status == 200
                assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset-After"} <= set(r.headers)
                assert r.headers["X-RateLimit-Bucket"]
            standin.slow("GET /channels/*", 0.2, times=1)
            started = time.monotonic()
            async with http.get(f"{base}/channels/{standin.channel_id}", headers=auth) as r:
                assert r.status == 200 and time.monotonic() - started >= 0.2
        assert [m.content for m in standin.messages(standin.channel_id)] == ["hi", "ok"]


# -- Discord's rules, shown over raw HTTP --------------------------------------------------


async def call(
    http: aiohttp.ClientSession,
    standin: Standin,
    method: str,
    path: str,
    *,
    body: Any = None,
    form: aiohttp.FormData | None = None,
    auth: str | None = "bot",
) -> tuple[int, Any]:
    """One request under the API base; `auth`: "bot" (the right header), None, or a header value."""
    headers = {"Authorization": f"Bot {standin.token}" if auth == "bot" else auth} if auth else {}
    kwargs: dict[str, Any] = {"data": form} if form is not None else {"json": body}
    async with http.request(method, standin.api_base + path, headers=headers, **kwargs) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else None)


def form_errors(body: Json) -> dict[str, str]:
    """Discord's `errors` tree flattened: {"components.0.components.1.label": "BASE_TYPE_MAX_LENGTH"}."""
    assert (body["code"], body["message"]) == (50035, "Invalid Form Body"), body
    found: dict[str, str] = {}

    def walk(node: Json, path: list[str]) -> None:
        for key, value in node.items():
            if key == "_errors":
                found[".".join(path)] = ",".join(e["code"] for e in value)
            else:
                walk(value, [*path, key])

    walk(body["errors"], [])
    return found


def row(*components: Json) -> Json:
    return {"type": 1, "components": list(components)}


def button(**fields: Any) -> Json:
    return {"type": 2, "style": 1, "label": "U1", "custom_id": "probe:u:1", **fields}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_bot_routes_take_only_the_bot_prefixed_token(standin: Standin, http: aiohttp.ClientSession) -> None:
    for auth in (None, standin.token, f"Bearer {standin.token}", "Bot not-the-token"):
        status, body = await call(http, standin, "GET", "/users/@me", auth=auth)
        assert (status, body) == (401, {"message": "401: Unauthorized", "code": 0}), auth
    status, body = await call(http, standin, "GET", "/users/@me")
    assert status == 200 and body["id"] == str(standin.application_id)
    status, _ = await call(http, standin, "GET", "/gateway", auth=None)  # public, as on Discord
    assert status == 200


async def test_invalid_requests_are_counted_as_discord_counts_them(
    standin: Standin, http: aiohttp.ClientSession
) -> None:
    channel = f"/channels/{standin.channel_id}/messages"
    await call(http, standin, "POST", channel, body={"content": "no token"}, auth=None)  # 401
    standin.bot_permissions = VIEW_CHANNEL | READ_MESSAGE_HISTORY
    await call(http, standin, "POST", channel, body={"content": "not allowed"})  # 403
    standin.fail(f"GET {channel}", status=429)
    await call(http, standin, "GET", channel)  # 429, the bot's own limit
    standin.fail(f"GET {channel}", status=429, shared=True)
    await call(http, standin, "GET", channel)  # 429 of a shared limit: Discord does not count it
    await call(http, standin, "GET", f"{channel}/1")  # 404: not counted either

    assert [r.status for r in standin.requests] == [401, 403, 429, 429, 404]
    assert [r.status for r in standin.invalid_requests()] == [401, 403, 429]
    assert standin.invalid_request_count == 3
    assert [r.rate_limit_scope for r in standin.requests if r.status == 429] == ["user", "shared"]
    assert standin.invalid_requests(window_s=0.0) == []


async def test_threads_and_forum_posts_need_send_messages_in_threads(http: aiohttp.ClientSession) -> None:
    read = VIEW_CHANNEL | READ_MESSAGE_HISTORY
    for permissions, expected in (
        (read | SEND_MESSAGES, {"channel": 200, "thread": 403, "forum post": 403}),
        (read | SEND_MESSAGES_IN_THREADS, {"channel": 403, "thread": 200, "forum post": 200}),
    ):
        async with Standin(bot_permissions=permissions) as standin:
            thread = await standin.add_thread("ideas")
            forum = await standin.add_forum("gallery")
            post = await standin.add_forum_post(forum, "my cat", "look at her")
            statuses = {}
            for name, channel_id in (("channel", standin.channel_id), ("thread", thread), ("forum post", post)):
                status, body = await call(
                    http, standin, "POST", f"/channels/{channel_id}/messages", body={"content": "hi"}
                )
                statuses[name] = status
                if status == 403:
                    assert body == {"message": "Missing Permissions", "code": 50013}
            assert statuses == expected, permissions
            status, body = await call(http, standin, "POST", f"/channels/{forum}/messages", body={"content": "hi"})
            assert (status, body["code"]) == (400, 50008)  # a forum takes posts (threads), not messages
            starter = standin.message(post)
            assert starter.author == standin.member and starter.channel_id == post and starter.content == "look at her"


async def test_discord_py_sees_threads_and_forums_and_commands_run_in_a_thread(standin: Standin) -> None:
    thread = await standin.add_thread("ideas")
    forum = await standin.add_forum("gallery")
    post = await standin.add_forum_post(forum, "my cat", "look at her")
    async with running(standin) as bot:
        guild = bot.get_guild(standin.guild_id)
        assert guild is not None
        assert isinstance(guild.get_channel(forum), discord.ForumChannel)
        ideas, cat = guild.get_thread(thread), guild.get_thread(post)
        assert ideas is not None and ideas.parent_id == standin.channel_id
        assert cat is not None and cat.parent_id == forum and cat.owner_id == standin.member.id
        assert guild.get_channel(thread) is None  # GUILD_CREATE lists threads apart from channels

        slash = await standin.slash_command("imagine", {"prompt": "in a thread"}, channel_id=thread)
        [grid] = await standin.wait_for(lambda: standin.messages(thread, with_attachments=True))
        assert grid.id == slash.original_message_id and grid.channel_id == thread
        assert standin.messages(standin.channel_id) == []
        with pytest.raises(LookupError, match="forum"):
            await standin.slash_command("imagine", {"prompt": "x"}, channel_id=forum)


async def test_allowed_mentions_decide_who_is_pinged(standin: Standin, http: aiohttp.ClientSession) -> None:
    member, other = standin.member, standin.add_member("other")
    content = f"<@{member.id}> and <@!{other.id}>, <@&{BOT_ROLE_ID}>, @everyone"
    cases: list[tuple[Json | None, list[int], list[str], bool]] = [
        (None, [member.id, other.id], [str(BOT_ROLE_ID)], True),  # without it, Discord parses them all
        ({"users": [str(member.id)]}, [member.id], [], False),
        ({"parse": []}, [], [], False),
        ({"parse": ["users", "everyone"]}, [member.id, other.id], [], True),
        ({"parse": ["roles"], "users": [str(other.id)]}, [other.id], [str(BOT_ROLE_ID)], False),
    ]
    for allowed, users, roles, everyone in cases:
        body: Json = {"content": content} if allowed is None else {"content": content, "allowed_mentions": allowed}
        status, sent = await call(http, standin, "POST", f"/channels/{standin.channel_id}/messages", body=body)
        assert status == 200, sent
        assert [int(u["id"]) for u in sent["mentions"]] == users, allowed
        assert (sent["mention_roles"], sent["mention_everyone"]) == (roles, everyone), allowed
        assert standin.message(int(sent["id"])).mentions == users

    exclusive = {"content": content, "allowed_mentions": {"parse": ["users"], "users": [str(member.id)]}}
    status, refused = await call(http, standin, "POST", f"/channels/{standin.channel_id}/messages", body=exclusive)
    assert status == 400 and refused["errors"] == {
        "allowed_mentions": {
            "_errors": [
                {
                    "code": "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    "message": 'parse:["users"] and users: [ids...] are mutually exclusive.',
                }
            ]
        }
    }
    assert len(standin.messages()) == len(cases)


async def test_enforce_nonce_returns_the_first_message(standin: Standin, http: aiohttp.ClientSession) -> None:
    channel = f"/channels/{standin.channel_id}/messages"
    once = {"content": "the result", "nonce": "result:job-1", "enforce_nonce": True}
    _, first = await call(http, standin, "POST", channel, body=once)
    status, again = await call(http, standin, "POST", channel, body={**once, "content": "a retry"})
    assert status == 200 and again["id"] == first["id"] and again["content"] == "the result"
    assert first["nonce"] == "result:job-1"
    _, unenforced = await call(http, standin, "POST", channel, body={**once, "enforce_nonce": False})
    assert unenforced["id"] != first["id"]  # without enforce_nonce, a nonce does not dedupe
    _, other_nonce = await call(http, standin, "POST", channel, body={**once, "nonce": 42})
    assert other_nonce["id"] != first["id"]
    assert [m.content for m in standin.messages()] == ["the result", "the result", "the result"]

    for nonce, code in (("x" * 26, "NONCE_TYPE_TOO_LONG"), ([1], "NONCE_TYPE_INVALID_TYPE")):
        status, refused = await call(http, standin, "POST", channel, body={"content": "x", "nonce": nonce})
        assert status == 400 and form_errors(refused) == {"nonce": code}
    status, _ = await call(http, standin, "POST", channel, body={"content": "x", "nonce": "x" * 25})
    assert status == 200


async def test_component_rules(standin: Standin, http: aiohttp.ClientSession) -> None:
    cases: dict[str, tuple[list[Json], dict[str, str]]] = {
        "label over 80": ([row(button(label="x" * 81))], {"components.0.components.0.label": "BASE_TYPE_MAX_LENGTH"}),
        "no custom_id": (
            [row(button(custom_id=None))],
            {"components.0.components.0.custom_id": "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED"},
        ),
        "bare emoji": (
            [row(button(emoji="\N{CROSS MARK}"))],
            {"components.0.components.0.emoji": "MODEL_TYPE_CONVERT"},
        ),
        "empty row": ([row()], {"components.0.components": "BASE_TYPE_BAD_LENGTH"}),
        "six in a row": (
            [row(*(button(custom_id=f"b{i}") for i in range(6)))],
            {"components.0.components": "BASE_TYPE_BAD_LENGTH"},
        ),
        "button at the top": ([button()], {"components.0": "UNION_TYPE_CHOICES"}),
        "duplicate custom_id": (
            [row(button(), button(label="U2"))],
            {"components.0.components.1.custom_id": "COMPONENT_CUSTOM_ID_DUPLICATED"},
        ),
    }
    channel = f"/channels/{standin.channel_id}/messages"
    for case, (components, expected) in cases.items():
        status, body = await call(http, standin, "POST", channel, body={"content": "x", "components": components})
        assert status == 400 and form_errors(body) == expected, (case, body)
    # Every problem of one body in one answer.
    several = [row(button(label="x" * 81), button(custom_id=None, emoji="\N{CROSS MARK}")), row()]
    status, body = await call(http, standin, "POST", channel, body={"content": "x", "components": several})
    assert form_errors(body) == {
        "components.0.components.0.label": "BASE_TYPE_MAX_LENGTH",
        "components.0.components.1.emoji": "MODEL_TYPE_CONVERT",
        "components.0.components.1.custom_id": "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
        "components.1.components": "BASE_TYPE_BAD_LENGTH",
    }
    link = {"type": 2, "style": 5, "label": "docs", "url": "https://example.com", "emoji": {"name": "\N{BOOKS}"}}
    status, body = await call(http, standin, "POST", channel, body={"content": "x", "components": [row(link)]})
    assert status == 200 and body["components"] == [row(link)]  # a link button has no custom_id
    assert len(standin.messages()) == 1


async def test_uploads_not_listed_in_attachments_are_dropped(standin: Standin, http: aiohttp.ClientSession) -> None:
    def two_files(payload: Json) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
        form.add_field("files[0]", png_bytes(), filename="grid.png", content_type="image/png")
        form.add_field("files[1]", b"stray", filename="stray.txt", content_type="text/plain")
        return form

    channel = f"/channels/{standin.channel_id}/messages"
    listed = {"content": "one listed", "attachments": [{"id": 0, "filename": "result.png"}]}
    status, body = await call(http, standin, "POST", channel, form=two_files(listed))
    assert status == 200 and [a["filename"] for a in body["attachments"]] == ["result.png"]
    assert standin.message(int(body["id"])).attachment("result.png").data == png_bytes()
    _, body = await call(http, standin, "POST", channel, form=two_files({"content": "none listed"}))
    assert [a["filename"] for a in body["attachments"]] == ["grid.png", "stray.txt"]  # unlisted: all kept
    [request] = [r for r in standin.requests if r.body == listed]
    assert (request.content_type, request.files) == ("multipart/form-data", (0, 1))


async def test_only_the_author_edits_a_message(standin: Standin, http: aiohttp.ClientSession) -> None:
    theirs = await standin.post_as(standin.member, standin.channel_id, "a member's message")
    _, mine = await call(http, standin, "POST", f"/channels/{standin.channel_id}/messages", body={"content": "mine"})
    base = f"/channels/{standin.channel_id}/messages"
    status, body = await call(http, standin, "PATCH", f"{base}/{theirs.id}", body={"content": "edited"})
    assert (status, body) == (403, {"message": "Cannot edit a message authored by another user", "code": 50005})
    status, body = await call(http, standin, "PATCH", f"{base}/{mine['id']}", body={"content": "edited"})
    assert status == 200 and body["content"] == "edited"
    status, body = await call(http, standin, "PATCH", f"{base}/1", body={"content": "edited"})
    assert (status, body) == (404, {"message": "Unknown Message", "code": 10008})

    status, body = await call(http, standin, "DELETE", f"{base}/{theirs.id}")
    assert (status, body["code"]) == (403, 50013)  # someone else's: Manage Messages
    standin.bot_permissions |= MANAGE_MESSAGES
    status, _ = await call(http, standin, "DELETE", f"{base}/{theirs.id}")
    assert status == 204 and theirs.deleted and theirs.content == "a member's message"


async def test_a_deferral_is_answered_without_a_message_resource(standin: Standin, http: aiohttp.ClientSession) -> None:
    async with running(standin) as bot:
        await add_guild_command(bot, standin, "raw", unanswered)
        deferred, answered = [await standin.slash_command("raw") for _ in range(2)]
        status, body = await call(
            http,
            standin,
            "POST",
            f"/interactions/{deferred.id}/{deferred.token}/callback?with_response=true",
            body={"type": DEFERRED_CHANNEL_MESSAGE},
            auth=None,
        )
        assert status == 200 and "resource" not in body, body
        thinking = standin.message(deferred.original_message_id or 0)
        assert body["interaction"]["response_message_id"] == str(thinking.id)
        assert body["interaction"]["response_message_loading"] is True and thinking.loading

        status, body = await call(
            http,
            standin,
            "POST",
            f"/interactions/{answered.id}/{answered.token}/callback?with_response=true",
            body={"type": CHANNEL_MESSAGE, "data": {"content": "hi"}},
            auth=None,
        )
        assert status == 200 and body["resource"]["type"] == CHANNEL_MESSAGE
        assert body["resource"]["message"]["content"] == "hi"


async def unanswered(interaction: discord.Interaction[ProbeBot]) -> None:
    """A command the bot leaves for the test to answer over raw HTTP."""


async def test_dm_interaction_has_a_user_and_no_member(standin: Standin) -> None:
    async with running(standin) as bot:
        seen: asyncio.Future[discord.Interaction[ProbeBot]] = asyncio.get_running_loop().create_future()

        async def ping(interaction: discord.Interaction[ProbeBot]) -> None:
            seen.set_result(interaction)
            await interaction.response.send_message("pong")

        command = app_commands.Command(name="ping", description="/ping in DMs", callback=ping)
        command.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=True)
        bot.tree.add_command(command)
        await bot.tree.sync()  # global: guild commands are never offered in DMs

        slash = await standin.slash_command("ping", in_dm=True)
        interaction = await asyncio.wait_for(seen, WAIT_S)
        assert "member" not in slash.payload and "guild_id" not in slash.payload
        assert slash.payload["user"]["id"] == str(standin.member.id) and slash.payload["context"] == CONTEXT_BOT_DM
        assert interaction.guild is None and type(interaction.user) is discord.User
        assert isinstance(interaction.channel, discord.DMChannel) and interaction.context.dm_channel
        [reply] = await standin.wait_for(lambda: standin.dms(standin.member))
        assert reply.content == "pong" and reply.guild_id is None and reply.interaction_id == slash.id
        with pytest.raises(LookupError, match="DMs"):
            await standin.slash_command("imagine", {"prompt": "in a DM"}, in_dm=True)


async def test_reconnect_opcode_resumes_the_session(standin: Standin) -> None:
    async with running(standin) as bot:
        await standin.request_reconnect()
        slash = await standin.slash_command("imagine", {"prompt": "across the reconnect"}, wait_connected=False)
        await asyncio.wait_for(bot.resumed.wait(), WAIT_S)
        await standin.wait_for(lambda: slash.acknowledged)
        assert (standin.identify_count, standin.resume_count) == (1, 1)


async def test_invalid_session_resumes_after_true_and_identifies_after_false(standin: Standin) -> None:
    async with running(standin) as bot:
        await standin.invalidate_sessions(resumable=True)
        await asyncio.wait_for(bot.resumed.wait(), WAIT_S)
        assert (standin.identify_count, standin.resume_count) == (1, 1)

        await standin.invalidate_sessions(resumable=False)
        second = await standin.wait_for(lambda: standin.identify_count == 2 and standin.live_session())
        slash = await standin.slash_command("imagine", {"prompt": "a new session"})
        await standin.wait_for(lambda: slash.acknowledged)
        assert slash.session_id == second.id and standin.resume_count == 1


# -- what members hand the bot (issue 19): files, select values, modal fields ---------------


async def test_a_members_file_is_resolved_and_served_and_a_too_large_one_is_not_sent(standin: Standin) -> None:
    async with running(standin) as bot:
        got: asyncio.Future[tuple[bytes, discord.Attachment]] = asyncio.get_running_loop().create_future()

        async def describe(interaction: discord.Interaction[ProbeBot], image: discord.Attachment) -> None:
            await interaction.response.defer(thinking=True)
            got.set_result((await image.read(), image))
            await interaction.followup.send("read")

        await add_guild_command(bot, standin, "describe", describe)
        data = png_bytes()
        slash = await standin.slash_command("describe", {"image": Upload("red.png", data)})
        read, attachment = await asyncio.wait_for(got, WAIT_S)
        assert read == data and attachment.size == len(data) and attachment.content_type == "image/png"
        assert (attachment.width, attachment.height) == (64, 48) and attachment.url.startswith(standin.url)
        [option] = slash.payload["data"]["options"]
        assert option["type"] == 11 and option["value"] in slash.payload["data"]["resolved"]["attachments"]
        with pytest.raises(ValueError, match="refuses files this large"):
            await standin.slash_command("describe", {"image": Upload("huge.png", b"\0" * (10 * 1024 * 1024 + 1))})
        with pytest.raises(ValueError, match="not what Discord's client would send"):
            await standin.slash_command("describe", {"image": "a string, not a file"})


async def test_selects_and_modals_follow_discords_rules(standin: Standin) -> None:
    async with running(standin) as bot:
        unanswered = asyncio.Event()

        async def raw(interaction: discord.Interaction[ProbeBot]) -> None:
            unanswered.set()  # the test answers over raw HTTP

        await add_guild_command(bot, standin, "raw", raw)
        slash = await standin.slash_command("raw")
        await asyncio.wait_for(unanswered.wait(), WAIT_S)
        callback = f"{standin.api_base}/interactions/{slash.id}/{slash.token}/callback"
        field = {"type": 4, "custom_id": "f", "label": "Prompt", "style": 1, "required": True}
        modal = {"custom_id": "m", "title": "Vary (Region)", "components": [{"type": 1, "components": [field]}]}
        async with aiohttp.ClientSession() as http:
            too_long = {**modal, "title": "x" * 46}
            async with http.post(callback, json={"type": 9, "data": too_long}) as r:
                assert (r.status, (await r.json())["code"]) == (400, 50035)
            async with http.post(callback, json={"type": 9, "data": modal}) as r:
                assert r.status == 204
            with pytest.raises(ValueError, match="is required"):
                await standin.submit_modal(slash, [""])
            submitted = await standin.submit_modal(slash, ["a green circle"])
            assert submitted.type == 5
            assert submitted.payload["data"]["components"][0]["components"][0] == {
                "type": 4, "custom_id": "f", "value": "a green circle",
            }  # fmt: skip
            with pytest.raises(LookupError, match="not answered with a modal"):
                await standin.submit_modal(submitted, ["again"])
            # A select menu in a message: Discord's limits, and only its options can be picked.
            auth = {"Authorization": f"Bot {standin.token}"}
            channel = f"{standin.api_base}/channels/{standin.channel_id}/messages"
            options = [{"label": str(i), "value": str(i)} for i in range(1, 27)]
            select = {"type": 3, "custom_id": "cells", "min_values": 1, "max_values": 3, "options": options}
            async with http.post(
                channel, json={"content": "x", "components": [{"type": 1, "components": [select]}]}, headers=auth
            ) as r:
                assert (r.status, (await r.json())["code"]) == (400, 50035)  # 26 options
            select["options"] = options[:16]
            async with http.post(
                channel, json={"content": "x", "components": [{"type": 1, "components": [select]}]}, headers=auth
            ) as r:
                assert r.status == 200
                message_id = int((await r.json())["id"])
        with pytest.raises(ValueError, match="not among the select's options"):
            await standin.click(message_id, "cells", values=["17"])
        with pytest.raises(ValueError, match="would not send 4"):
            await standin.click(message_id, "cells", values=["1", "2", "3", "4"])
        picked = await standin.click(message_id, "cells", values=["1", "5"])
        assert picked.payload["data"]["values"] == ["1", "5"] and picked.payload["data"]["component_type"] == 3
