"""The stand-in's state and what tests read from it: every other part of the
stand-in (payloads, gateway, REST, limits) is a layer on top of `StandinCore`."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web

from .constants import (
    ACK_DEADLINE_S,
    API_PREFIX,
    APPLICATION_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    DEFAULT_WAIT_S,
    DISCORD_EPOCH_MS,
    DM,
    GUILD_ID,
    GUILD_TEXT,
    HEARTBEAT_INTERVAL_MS,
    MEMBER_ID,
    RATE_LIMIT,
    RATE_WINDOW_S,
    TEXT_PERMISSIONS,
    TOKEN_LIFETIME_S,
    UPLOAD_LIMIT_BYTES,
)
from .state import Attachment, Callback, Fault, GatewaySession, Interaction, Json, Message, Request, User

if TYPE_CHECKING:
    from .gateway import GatewaySocket

T = TypeVar("T")


class StandinCore:
    """Discord's state for one test (or one standalone run), and the queries and waits on it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = BOT_TOKEN,
        application_id: int = APPLICATION_ID,
        guild_id: int = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        token_lifetime_s: float = TOKEN_LIFETIME_S,
        ack_deadline_s: float | None = ACK_DEADLINE_S,
        rate_limit: int = RATE_LIMIT,
        rate_window_s: float = RATE_WINDOW_S,
        upload_limit_bytes: int = UPLOAD_LIMIT_BYTES,
        bot_permissions: int = TEXT_PERMISSIONS,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self.host, self.port = host, port
        self.token = token
        self.application_id = application_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.token_lifetime_s = token_lifetime_s
        self.ack_deadline_s = ack_deadline_s
        self.rate_limit, self.rate_window_s = rate_limit, rate_window_s
        self.upload_limit_bytes = upload_limit_bytes
        self.bot_permissions = bot_permissions  # checked on channel posts; sent as app_permissions
        self.heartbeat_interval_ms = heartbeat_interval_ms

        self.bot_user = User(application_id, "Daydream", bot=True)
        self.member = User(MEMBER_ID, "member", global_name="A Member")
        self.users: dict[int, User] = {u.id: u for u in (self.bot_user, self.member)}
        self.channels: dict[int, Json] = {channel_id: self._channel(channel_id, "general", 0)}
        self.dm_channels: dict[int, Json] = {}  # the bot's DM channels, opened by `POST /users/@me/channels`
        self.member_permissions: dict[int, int] = {}  # members with more than TEXT_PERMISSIONS (admins)
        self.dms_closed: set[int] = set()  # users whose DMs are closed to the bot (Discord answers 50007)
        self.joined_at = datetime.now(UTC).isoformat()

        self.requests: list[Request] = []
        self.sessions: list[GatewaySession] = []
        self.faults: list[Fault] = []
        self.heartbeats = 0  # all connections; a bot that blocks its event loop stops sending them
        self._messages: dict[int, Message] = {}
        self.member_uploads: dict[int, Attachment] = {}  # files members gave in attachment options
        self._interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self._commands: dict[int | None, dict[tuple[str, int], Json]] = {}  # guild id (None: global)
        self._buckets: dict[str, tuple[int, float]] = {}  # bucket -> (count, window end)
        self._sockets: set[GatewaySocket] = set()
        self._ids = itertools.count()
        self._last_id = 0
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # --- where it listens -------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def env(self) -> dict[str, str]:
        """Environment for a bot or worker process pointed at this stand-in."""
        env = {
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            "DISCORD_TOKEN": self.token,
            "DISCORD_GUILD_ID": str(self.guild_id),
            # Its CDN route (attachment URLs) is the only place input images come from.
            "INPUT_HOSTS": f"http://{self.host}:{self.port}",
        }
        if self.token_lifetime_s != TOKEN_LIFETIME_S:
            env["INTERACTION_TOKEN_LIFETIME_S"] = str(math.ceil(self.token_lifetime_s))
        return env

    # --- queries for tests ------------------------------------------------------

    def messages(
        self,
        channel_id: int | None = None,
        *,
        include_deleted: bool = False,
        include_ephemeral: bool = True,
        with_attachments: bool = False,
    ) -> list[Message]:
        """Messages in creation order (all channels when channel_id is None)."""
        return [
            m
            for m in self._messages.values()
            if (channel_id is None or m.channel_id == channel_id)
            and (include_deleted or not m.deleted)
            and (include_ephemeral or not m.ephemeral)
            and (not with_attachments or m.attachments)
        ]

    def message(self, message_id: int) -> Message:
        return self._messages[message_id]

    def interaction(self, interaction_id: int) -> Interaction:
        return self._interactions[interaction_id]

    def interactions(self) -> list[Interaction]:
        return list(self._interactions.values())

    def interaction_responses(self, interaction_id: int) -> list[Callback]:
        return list(self._interactions[interaction_id].callbacks)

    def commands(self, guild_id: int | None = None) -> list[Json]:
        """Registered application commands: global ones, or those of one guild."""
        return list(self._commands.get(guild_id, {}).values())

    def requests_to(self, pattern: str) -> list[Request]:
        probe = Fault(pattern, times=None)
        return [r for r in self.requests if probe.matches(r.method, r.path)]

    @property
    def identify_count(self) -> int:
        return len(self.sessions)

    @property
    def resume_count(self) -> int:
        return sum(s.resumes for s in self.sessions)

    def dm_channel_id(self, user: User) -> int | None:
        """The DM channel the bot opened with `user`, if it did."""
        return next((int(c["id"]) for c in self.dm_channels.values() if int(c["recipients"][0]["id"]) == user.id), None)

    def dms(self, user: User, *, include_deleted: bool = False) -> list[Message]:
        """What the bot sent `user` by DM, in order."""
        channel_id = self.dm_channel_id(user)
        return [] if channel_id is None else self.messages(channel_id, include_deleted=include_deleted)

    def add_member(self, username: str, *, permissions: int = 0) -> User:
        """A member; `permissions`: what they hold beyond a member's (MANAGE_GUILD makes an admin)."""
        user = User(self._snowflake(), username)
        self.users[user.id] = user
        if permissions:
            self.member_permissions[user.id] = TEXT_PERMISSIONS | permissions
        return user

    # --- waiting (driven by the stand-in's own state changes, no polling) --------

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_S) -> T:
        """Return predicate()'s first truthy value, re-checked whenever the stand-in records something."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    change = self._change
                    if result := predicate():
                        return result
                    await change.wait()
        except TimeoutError:
            recent = [m.summary() for m in self.messages(include_deleted=True)[-5:]]
            raise TimeoutError(f"stand-in: condition not met within {timeout} s; last messages: {recent}") from None

    async def wait_connected(self, timeout: float = DEFAULT_WAIT_S) -> GatewaySession:
        """The newest session that is identified (READY and GUILD_CREATE sent) and has a live socket."""
        return await self.wait_for(self.live_session, timeout)

    def live_session(self) -> GatewaySession | None:
        return next((s for s in reversed(self.sessions) if s.live), None)

    # --- channels (stored as Discord's channel objects) --------------------------------

    def _channel(self, channel_id: int, name: str, position: int) -> Json:
        return {
            "id": str(channel_id),
            "type": GUILD_TEXT,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _dm_channel(self, channel_id: int, *, recipient: User) -> Json:
        return {
            "id": str(channel_id),
            "type": DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [recipient.payload()],
        }

    # --- ids ------------------------------------------------------------------------

    def _snowflake(self) -> int:
        # Real snowflakes (timestamp in the high bits) so discord.py's created_at is right.
        value = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0xFFF)
        self._last_id = value = max(value, self._last_id + 1)
        return value

    @staticmethod
    def _timestamp(snowflake: int) -> str:
        return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC).isoformat()
