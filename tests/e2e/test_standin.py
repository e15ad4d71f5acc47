"""discord.py itself is the judge of the stand-in: a plain `commands.Bot`
(not Daydream's) pointed at it by `bot.endpoint.configure` logs in, joins
the gateway, syncs, answers a slash command and a button, and survives a 429
and a dropped connection. A few raw-HTTP checks cover Discord's refusals."""

from __future__ import annotations

import asyncio
import contextlib
import io
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
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    Standin,
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
