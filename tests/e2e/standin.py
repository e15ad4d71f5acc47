"""A local stand-in for Discord: the REST v10 and gateway subset that
discord.py and Daydream use, on 127.0.0.1, recording everything.

In a test (same event loop):

    async with Standin(token_lifetime_s=5) as discord_:
        env = discord_.env()                # DISCORD_API_BASE, DISCORD_TOKEN, ...
        ...start the bot against it...
        it = await discord_.slash_command("imagine", {"prompt": "a red circle"})
        grid = await discord_.wait_for(lambda: discord_.messages(discord_.channel_id, with_attachments=True))
        await discord_.click(grid[0].id, grid[0].custom_ids[0])
        other = discord_.add_member("other")
        await discord_.react(grid[0].id, "\N{ENVELOPE}\N{VARIATION SELECTOR-16}", user=other)
        dm = await discord_.wait_for(lambda: discord_.dms(other))  # what the bot sent `other` by DM
        discord_.fail("POST /channels/*/messages", status=429, retry_after=0.3)

Standalone, for a bot started by hand: `python -m tests.e2e.standin --port 8765`
prints the environment to give the bot, and takes injections on
`POST /_standin/slash`, `POST /_standin/click` and `POST /_standin/react`.

Payloads follow Discord's documented shapes closely enough that discord.py
parses them unpatched; where Discord enforces a limit that Daydream must
respect (3 s to acknowledge, 15 min token lifetime, 2000 characters, 5×5
buttons, custom_id ≤ 100, upload size, rate limits) the stand-in enforces it
and answers with Discord's error code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import hashlib
import http
import io
import itertools
import json
import logging
import math
import mimetypes
import re
import secrets
import socket
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

logger = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]
Via = Literal["bot", "interaction", "webhook"]

# --- Discord's numbers -------------------------------------------------------

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
TOKEN_LIFETIME_S = 15 * 60  # interaction tokens
ACK_DEADLINE_S = 3.0  # first answer to an interaction
HEARTBEAT_INTERVAL_MS = 41_250
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024  # per file, for bots
MAX_CONTENT_CHARS = 2000
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
MAX_CUSTOM_ID = 100
RATE_LIMIT = 50  # requests per bucket and window: generous, so only injected 429s slow tests
RATE_WINDOW_S = 1.0
RESUME_BUFFER_FRAMES = 1000  # dispatches kept per session for RESUME
DEFAULT_WAIT_S = 10.0

BOT_TOKEN = "standin-bot-token"
APPLICATION_ID = 1_300_000_000_000_000_001  # the bot user has the application's id, as on Discord
GUILD_ID = 1_300_000_000_000_000_002
CHANNEL_ID = 1_300_000_000_000_000_003
MEMBER_ID = 1_300_000_000_000_000_004
BOT_ROLE_ID = 1_300_000_000_000_000_005

# Message flags, types and gateway intents used below.
SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
CLIENT_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
DEFAULT_MESSAGE = 0
CHAT_INPUT_COMMAND_MESSAGE = 20
GUILD_TEXT, DM = 0, 1  # channel types
NORMAL_REACTION = 0  # reaction type (1: a super reaction)
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13

# Interaction and callback types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Permissions.
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
TEXT_PERMISSIONS = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)

# Gateway close codes (4000 and 4009 are resumable; 4004 is not).
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005

# Option types Discord's client converts before sending.
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_NUMBER = 3, 4, 5, 10
OPTION_SUBCOMMAND, OPTION_GROUP = 1, 2


# --- What the stand-in records ----------------------------------------------


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> Json:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass(frozen=True)
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    width: int | None = None
    height: int | None = None
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Revision:
    """One state of a message: its creation, then one per edit."""

    at: float  # time.monotonic()
    via: Via
    content: str
    filenames: tuple[str, ...]
    custom_ids: tuple[str, ...]
    flags: int


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author: User
    via: Via  # who created it: the bot token, an interaction callback, or the interaction webhook
    type: int
    content: str = ""
    flags: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    embeds: list[Json] = field(default_factory=list)
    interaction_id: int | None = None
    created_at: float = field(default_factory=time.monotonic)
    edited_at: float | None = None  # time.monotonic() of the last edit
    edited_timestamp: str | None = None  # the same, as Discord reports it
    deleted: bool = False
    reactions: dict[str, set[int]] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]

    @property
    def edits(self) -> int:
        """Edits after creation. A deferred ("thinking") message's first edit is its answer."""
        return len(self.revisions) - 1

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def mentions(self) -> list[int]:
        return [int(m) for m in re.findall(r"<@!?(\d+)>", self.content)]

    def attachment(self, filename: str) -> Attachment:
        for a in self.attachments:
            if a.filename == filename:
                return a
        raise KeyError(f"message {self.id} has no attachment {filename!r}: {[a.filename for a in self.attachments]}")

    def summary(self) -> Json:
        """JSON-safe digest for the standalone control API and failure messages."""
        return {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "via": self.via,
            "content": self.content,
            "ephemeral": self.ephemeral,
            "loading": self.loading,
            "attachments": [{"filename": a.filename, "size": a.size} for a in self.attachments],
            "custom_ids": self.custom_ids,
            "edits": self.edits,
            "deleted": self.deleted,
            "interaction_id": str(self.interaction_id) if self.interaction_id else None,
        }


@dataclass(frozen=True)
class Callback:
    """One `POST /interactions/{id}/{token}/callback`, accepted or not."""

    type: int
    data: Json
    received_at: float
    latency_s: float  # since INTERACTION_CREATE was sent (or created, if never sent)
    status: int  # 200/204 when Discord would have accepted it

    @property
    def accepted(self) -> bool:
        return self.status < 300


@dataclass
class Interaction:
    id: int
    type: int
    token: str
    user: User
    channel_id: int
    guild_id: int
    payload: Json  # exactly what INTERACTION_CREATE carried
    created_at: float
    expires_at: float
    message_id: int | None = None  # the clicked message, for components
    session_id: str | None = None
    dispatched_at: float | None = None
    callbacks: list[Callback] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(c.accepted for c in self.callbacks)

    @property
    def ack_latency_s(self) -> float | None:
        """Seconds from dispatch to the bot's first answer (Discord allows 3)."""
        return self.callbacks[0].latency_s if self.callbacks else None

    @property
    def response_type(self) -> int | None:
        accepted = [c for c in self.callbacks if c.accepted]
        return accepted[0].type if accepted else None


@dataclass
class Request:
    method: str
    path: str  # below the API prefix, e.g. /channels/1/messages
    received_at: float
    status: int | None = None
    fault: str | None = None  # "injected", "rate_limit" when the stand-in refused it

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    """An injected failure or delay for requests whose `METHOD /path` matches `pattern` (fnmatch)."""

    pattern: str
    status: int | None = None
    retry_after: float = 0.0
    is_global: bool = False
    delay_s: float = 0.0
    times: int | None = 1  # None: until cleared
    body: Json | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        target = f"{method} {path}" if " " in self.pattern else path
        return fnmatch.fnmatchcase(target, self.pattern)


class ApiError(Exception):
    """An error answer shaped as Discord's: `{"message", "code"[, "errors"]}`."""

    def __init__(self, status: int, message: str, code: int, errors: Json | None = None) -> None:
        super().__init__(f"{status} {message} ({code})")
        self.status, self.message, self.code, self.errors = status, message, code, errors

    def response(self) -> web.Response:
        body: Json = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return _json(body, status=self.status)


def _form_error(path: list[str | int], code: str, message: str) -> ApiError:
    errors: Json = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return ApiError(400, "Invalid Form Body", 50035, errors)


def _walk_components(components: list[Json]) -> Iterator[Json]:
    for c in components:
        yield c
        yield from _walk_components(c.get("components", []))
        if isinstance(c.get("accessory"), dict):
            yield c["accessory"]


# --- The gateway -------------------------------------------------------------


class GatewaySocket:
    """One websocket connection; zlib-stream compressed when asked for."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        # One zlib context for the whole connection, flushed per message: what discord.py expects.
        # zstd-stream is answered with plain text frames, which discord.py accepts whatever it asked.
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._lock = asyncio.Lock()  # frames must leave in compression order
        self.session: GatewaySession | None = None

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def send(self, frame: Json) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        async with self._lock:
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)


@dataclass
class GatewaySession:
    id: str
    intents: int
    identified_at: float
    compression: str | None = None  # as asked for in the connection URL
    seq: int = 0
    socket: GatewaySocket | None = None
    ready: bool = False  # READY and GUILD_CREATE sent
    resumes: int = 0
    invalidated: bool = False  # RESUME refused
    heartbeats: int = 0
    buffer: deque[Json] = field(default_factory=lambda: deque(maxlen=RESUME_BUFFER_FRAMES))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # seq order == send order

    @property
    def live(self) -> bool:
        return self.ready and self.socket is not None and self.socket.open


# --- Request bodies -----------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


async def _read_body(request: web.Request) -> tuple[Json, dict[int, Upload]]:
    """JSON, or multipart with `payload_json` and `files[n]` (how Discord takes attachments)."""
    try:
        if request.content_type.startswith("multipart/"):
            payload: Json = {}
            uploads: dict[int, Upload] = {}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.name and (m := re.fullmatch(r"files\[(\d+)\]", part.name)):
                    uploads[int(m[1])] = Upload(part.filename or f"file{m[1]}", bytes(await part.read()))
            return payload, uploads
        if request.body_exists:
            return await request.json(), {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body contains invalid JSON.", 50109) from None
    return {}, {}


def _json(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: discord.py decodes JSON only for that header value.
    return web.Response(body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"})


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image  # Daydream depends on Pillow; the stand-in works without it
    except ImportError:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except OSError:
        return None, None


# --- The server ----------------------------------------------------------------


class Standin:
    """Discord on 127.0.0.1 for one test (or one standalone run)."""

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
        self.dms_closed: set[int] = set()  # users whose DMs are closed to the bot (Discord answers 50007)
        self.joined_at = datetime.now(UTC).isoformat()

        self.requests: list[Request] = []
        self.sessions: list[GatewaySession] = []
        self.faults: list[Fault] = []
        self.heartbeats = 0  # all connections; a bot that blocks its event loop stops sending them
        self._messages: dict[int, Message] = {}
        self._interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self._commands: dict[int | None, dict[tuple[str, int], Json]] = {}  # guild id (None: global)
        self._buckets: dict[str, tuple[int, float]] = {}  # bucket -> (count, window end)
        self._sockets: set[GatewaySocket] = set()
        self._ids = itertools.count()
        self._last_id = 0
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * self.upload_limit_bytes)
        self._add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        logger.info("Discord stand-in on %s (gateway %s)", self.api_base, self.gateway_url)
        return self

    async def close(self) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sock.ws.close(code=1001, message=b"stand-in closing"), 2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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

    def add_member(self, username: str) -> User:
        user = User(self._snowflake(), username)
        self.users[user.id] = user
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

    # --- injection ----------------------------------------------------------------

    async def slash_command(
        self,
        name: str,
        options: Json | None = None,
        *,
        user: User | None = None,
        channel_id: int | None = None,
        validate: bool = True,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Interaction:
        """A member runs `/name` (`"admin status"` for a subcommand) with `options` ({name: value}).

        With `validate`, only what Discord's client would send is allowed: a
        registered command, known options, required ones present, lengths,
        ranges and choices respected. `validate=False` forges anything."""
        if wait_connected:
            await self.wait_connected(timeout)  # a starting bot registers its commands before it connects
        words = name.split()
        command = self._find_command(words[0])
        if command is None and validate:
            raise LookupError(f"/{words[0]} is not registered (global or guild {self.guild_id})")
        declared = (command or {}).get("options", [])
        data_options = self._command_options(words[1:], declared, options or {}, validate)
        data: Json = {
            "id": (command or {}).get("id", str(self._snowflake())),
            "name": words[0],
            "type": (command or {}).get("type", 1),
        }
        if data_options:
            data["options"] = data_options
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(APPLICATION_COMMAND, data, user, channel_id or self.channel_id, None)
        await self._deliver(interaction, wait_connected, timeout)
        return interaction

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user: User | None = None,
        strict: bool = True,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Interaction:
        """A member clicks the button `custom_id` on a recorded message.

        `strict=False` lets a test click a custom_id the message does not carry (a forged one)."""
        message = self._messages[message_id]
        if strict and custom_id not in message.custom_ids:
            raise LookupError(f"message {message_id} has no button {custom_id!r}; it has {message.custom_ids}")
        component = next((c for c in _walk_components(message.components) if c.get("custom_id") == custom_id), {})
        data: Json = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        if "id" in component:
            data["id"] = component["id"]
        interaction = self._new_interaction(MESSAGE_COMPONENT, data, user, message.channel_id, message)
        await self._deliver(interaction, wait_connected, timeout)
        return interaction

    async def react(
        self,
        message_id: int,
        emoji: str,
        user: User | None = None,
        *,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Json:
        """A member adds the Unicode reaction `emoji` to a recorded message: recorded on the
        message, and MESSAGE_REACTION_ADD goes to sessions with the reactions intent.
        Returns the event's payload, shaped as Discord documents it."""
        if wait_connected:
            await self.wait_connected(timeout)
        user = user or self.member
        message = self._messages[message_id]
        if message.deleted or message.ephemeral:
            raise LookupError(f"message {message_id} cannot be reacted to (deleted or ephemeral)")
        message.reactions.setdefault(emoji, set()).add(user.id)
        data: Json = {
            "user_id": str(user.id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": None, "name": emoji},
            "message_author_id": str(message.author.id),
            "burst": False,
            "type": NORMAL_REACTION,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            data["member"] = self._member(user)
            intent = INTENT_GUILD_MESSAGE_REACTIONS
        else:
            intent = INTENT_DIRECT_MESSAGE_REACTIONS
        await self._dispatch_with_intent(intent, "MESSAGE_REACTION_ADD", data)
        self._changed()
        return data

    async def dispatch(self, event: str, data: Json) -> None:
        """Send any gateway event to every identified session (buffered for those resuming)."""
        for session in self.sessions:
            if session.ready:
                await self._send_dispatch(session, event, data)

    # --- fault injection ------------------------------------------------------------

    def fail(
        self,
        pattern: str,
        status: int = 429,
        *,
        retry_after: float = 0.3,
        is_global: bool = False,
        times: int | None = 1,
        body: Json | None = None,
    ) -> Fault:
        """Answer `times` requests matching `pattern` (`"POST /channels/*/messages"`) with `status`.

        429 comes with Discord's headers and `{"message", "retry_after", "global"}`;
        other statuses with `body` or Discord's generic error for the status."""
        fault = Fault(pattern, status=status, retry_after=retry_after, is_global=is_global, times=times, body=body)
        self.faults.append(fault)
        return fault

    def slow(self, pattern: str, delay_s: float, *, times: int | None = None) -> Fault:
        """Answer matching requests `delay_s` late (they are still recorded as received on time)."""
        fault = Fault(pattern, delay_s=delay_s, times=times)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def expire_token(self, interaction_id: int) -> None:
        """End an interaction token's life now (instead of waiting `token_lifetime_s`)."""
        self._interactions[interaction_id].expires_at = time.monotonic()

    async def disconnect_gateway(self, code: int = CLOSE_UNKNOWN_ERROR, *, resumable: bool = True) -> None:
        """Close every gateway connection with `code` (discord.py reconnects after 4000 and RESUMEs).

        `resumable=False` forgets the sessions too: the RESUME is answered with
        INVALID_SESSION and the bot has to IDENTIFY again (a new session)."""
        if not resumable:
            for session in self.sessions:
                session.invalidated = True
        for sock in [s for s in self._sockets if s.open]:
            await asyncio.wait_for(sock.ws.close(code=code, message=b"stand-in: injected disconnect"), 10.0)

    # --- ids and payloads -------------------------------------------------------------

    def _snowflake(self) -> int:
        # Real snowflakes (timestamp in the high bits) so discord.py's created_at is right.
        value = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0xFFF)
        self._last_id = value = max(value, self._last_id + 1)
        return value

    @staticmethod
    def _timestamp(snowflake: int) -> str:
        return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC).isoformat()

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

    def _dm_channel(self, channel_id: int, recipient: User) -> Json:
        return {
            "id": str(channel_id),
            "type": DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [recipient.payload()],
        }

    def _member(self, user: User, *, permissions: int | None = None) -> Json:
        member: Json = {
            "user": user.payload(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(BOT_ROLE_ID)] if user.bot else [],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            member["permissions"] = str(permissions)
        return member

    def _role(self, role_id: int, name: str, permissions: int, *, bot: bool = False) -> Json:
        role: Json = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 1 if bot else 0,
            "permissions": str(permissions),
            "managed": bot,
            "mentionable": False,
            "flags": 0,
        }
        if bot:
            role["tags"] = {"bot_id": str(self.application_id)}
        return role

    def _guild(self, intents: int) -> Json:
        # Without the GUILD_MEMBERS intent Discord sends only the bot's own member.
        users = self.users.values() if intents & INTENT_GUILD_MEMBERS else [self.bot_user]
        members = [self._member(u) for u in users]
        channels = [{k: v for k, v in c.items() if k != "guild_id"} for c in self.channels.values()]
        return {
            "id": str(self.guild_id),
            "name": "Daydream stand-in",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.member.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "features": [],
            "roles": [
                self._role(self.guild_id, "@everyone", VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS),
                self._role(BOT_ROLE_ID, self.bot_user.username, self.bot_permissions, bot=True),
            ],
            "emojis": [],
            "stickers": [],
            "joined_at": self.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.users),
            "members": members,
            "channels": channels,
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _attachment_payload(self, message: Message, a: Attachment) -> Json:
        url = f"{self.url}/attachments/{message.channel_id}/{a.id}/{a.filename}"
        payload: Json = {
            "id": str(a.id),
            "filename": a.filename,
            "size": a.size,
            "url": url,
            "proxy_url": url,
            "content_type": a.content_type,
            "flags": 0,
        }
        if a.width is not None:
            payload["width"], payload["height"] = a.width, a.height
        if a.description is not None:
            payload["description"] = a.description
        return payload

    def _message_payload(self, m: Message) -> Json:
        payload: Json = {
            "id": str(m.id),
            "type": m.type,
            "channel_id": str(m.channel_id),
            "author": m.author.payload(),
            "content": m.content,
            "timestamp": self._timestamp(m.id),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in m.content,
            "mentions": [self.users[u].payload() for u in m.mentions if u in self.users],
            "mention_roles": [],
            "attachments": [self._attachment_payload(m, a) for a in m.attachments],
            "embeds": m.embeds,
            "components": m.components,
            "pinned": False,
            "flags": m.flags,
        }
        if m.edited_timestamp is not None:
            payload["edited_timestamp"] = m.edited_timestamp
        if m.guild_id is not None:
            payload["guild_id"] = str(m.guild_id)
        if m.reactions:
            payload["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.application_id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for emoji, users in m.reactions.items()
            ]
        if m.via != "bot":
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
        if m.interaction_id is not None:
            it = self._interactions[m.interaction_id]
            metadata: Json = {
                "id": str(it.id),
                "type": it.type,
                "user": it.user.payload(),
                "authorizing_integration_owners": {"0": str(it.guild_id)},
            }
            if it.type == APPLICATION_COMMAND:
                metadata["name"] = it.payload["data"]["name"]
                metadata["command_type"] = it.payload["data"].get("type", 1)
            if it.message_id is not None:
                metadata["interacted_message_id"] = str(it.message_id)
            if it.original_message_id is not None and it.original_message_id != m.id:
                metadata["original_response_message_id"] = str(it.original_message_id)
            payload["interaction_metadata"] = metadata
        return payload

    # --- commands ----------------------------------------------------------------------

    def _find_command(self, name: str) -> Json | None:
        for scope in (self.guild_id, None):
            for (cmd_name, cmd_type), cmd in self._commands.get(scope, {}).items():
                if cmd_name == name and cmd_type == 1:
                    return cmd
        return None

    def _command_options(self, path: list[str], declared: list[Json], values: Json, validate: bool) -> list[Json]:
        """`{name: value}` as Discord's client sends it, nested under subcommands in `path`."""
        if path:
            sub = next(
                (o for o in declared if o["name"] == path[0] and o["type"] in (OPTION_SUBCOMMAND, OPTION_GROUP)), None
            )
            if sub is None and validate:
                raise LookupError(f"no subcommand {path[0]!r}")
            inner = self._command_options(path[1:], (sub or {}).get("options", []), values, validate)
            option: Json = {"name": path[0], "type": (sub or {}).get("type", OPTION_SUBCOMMAND)}
            if inner:
                option["options"] = inner
            return [option]
        by_name = {o["name"]: o for o in declared}
        out: list[Json] = []
        for name, value in values.items():
            spec = by_name.get(name)
            if spec is None and validate:
                raise ValueError(f"option {name!r} is not declared; Discord's client offers {sorted(by_name)}")
            if validate and spec is not None:
                self._check_option(spec, value)
            out.append({"name": name, "type": (spec or {}).get("type", OPTION_STRING), "value": value})
        if validate:
            missing = [o["name"] for o in declared if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing} (Discord's client would not send this)")
        return out

    @staticmethod
    def _check_option(spec: Json, value: Any) -> None:
        kind = spec["type"]
        wrong = ValueError(f"option {spec['name']!r}: {value!r} is not what Discord's client would send")
        if kind == OPTION_STRING:
            if not isinstance(value, str):
                raise wrong
            if not spec.get("min_length", 0) <= len(value) <= spec.get("max_length", 6000):
                raise wrong
        elif kind in (OPTION_INTEGER, OPTION_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            if kind == OPTION_INTEGER and not isinstance(value, int):
                raise wrong
            if value < spec.get("min_value", value) or value > spec.get("max_value", value):
                raise wrong
        elif kind == OPTION_BOOLEAN and not isinstance(value, bool):
            raise wrong
        choices = spec.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise wrong

    # --- interactions ------------------------------------------------------------------

    def _new_interaction(
        self, kind: int, data: Json, user: User | None, channel_id: int, message: Message | None
    ) -> Interaction:
        user = user or self.member
        interaction_id = self._snowflake()
        # Discord's tokens are long opaque strings; the prefix keeps them recognisable in logs.
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        channel = self.channels[channel_id]
        payload: Json = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "guild_id": str(self.guild_id),
            "channel": {**channel, "permissions": str(TEXT_PERMISSIONS)},
            "channel_id": str(channel_id),
            "member": self._member(user, permissions=TEXT_PERMISSIONS),
            "token": token,
            "version": 1,
            "app_permissions": str(self.bot_permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.upload_limit_bytes,
        }
        if message is not None:
            payload["message"] = self._message_payload(message)
        now = time.monotonic()
        interaction = Interaction(
            id=interaction_id,
            type=kind,
            token=token,
            user=user,
            channel_id=channel_id,
            guild_id=self.guild_id,
            payload=payload,
            created_at=now,
            expires_at=now + self.token_lifetime_s,
            message_id=message.id if message is not None else None,
        )
        self._interactions[interaction_id] = interaction
        self._by_token[token] = interaction
        return interaction

    async def _deliver(self, interaction: Interaction, wait_connected: bool, timeout: float) -> None:
        if wait_connected:
            session = await self.wait_connected(timeout)
        elif self.sessions:
            session = self.sessions[-1]  # buffered until it resumes, as Discord does
        else:
            raise RuntimeError("no bot has identified on the gateway yet")
        interaction.session_id = session.id
        await self._send_dispatch(session, "INTERACTION_CREATE", interaction.payload)
        self._changed()

    # --- messages ------------------------------------------------------------------------

    def _new_attachments(
        self, payload: Json, uploads: dict[int, Upload], existing: list[Attachment]
    ) -> list[Attachment]:
        """Apply Discord's rule: without `attachments`, uploads are appended; with it,
        only the listed existing ones are kept, plus the uploads (referenced by index)."""
        for upload in uploads.values():
            if len(upload.data) > self.upload_limit_bytes:
                raise ApiError(413, "Request entity too large", 40005)
        entries: list[Json] | None = payload.get("attachments")
        kept_existing = list(existing) if entries is None else []
        by_id = {a.id: a for a in existing}
        meta: dict[int, Json] = {}
        for position, entry in enumerate(entries or []):
            ref = int(entry["id"])
            if ref in by_id:
                kept_existing.append(by_id[ref])
            elif ref in uploads:
                meta[ref] = entry
            else:
                raise _form_error(["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", "Unknown attachment.")
        added = []
        for index in sorted(uploads):
            upload, entry = uploads[index], meta.get(index, {})
            filename = entry.get("filename") or upload.filename
            width, height = _image_size(upload.data)
            added.append(
                Attachment(
                    id=self._snowflake(),
                    filename=filename,
                    data=upload.data,
                    content_type=mimetypes.guess_type(filename)[0],
                    width=width,
                    height=height,
                    description=entry.get("description"),
                )
            )
        return kept_existing + added

    @staticmethod
    def _check_components(components: list[Json], flags: int) -> None:
        seen: set[str] = set()
        for row_index, row in enumerate(components):
            if not flags & IS_COMPONENTS_V2:
                if row_index >= MAX_ACTION_ROWS:
                    raise _form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
                if len(row.get("components", [])) > MAX_ROW_COMPONENTS:
                    raise _form_error(
                        ["components", row_index, "components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                    )
        for component in _walk_components(components):
            custom_id = component.get("custom_id")
            if custom_id is None:
                continue
            if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
                raise _form_error(
                    ["components", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            if custom_id in seen:
                raise _form_error(
                    ["components", "custom_id"],
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                )
            seen.add(custom_id)

    def _apply(self, message: Message, payload: Json, uploads: dict[int, Upload], via: Via, *, created: bool) -> None:
        """Set the fields a create or edit payload carries, check Discord's limits, record a revision."""
        content = (payload["content"] if "content" in payload else message.content) or ""
        if len(content) > MAX_CONTENT_CHARS:
            raise _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        flags = message.flags
        if "flags" in payload and payload["flags"] is not None:
            # Ephemerality is fixed at creation; the others are the client's to choose.
            settable = CLIENT_FLAGS if created else SUPPRESS_EMBEDS | IS_COMPONENTS_V2
            flags = (flags & ~settable) | (int(payload["flags"]) & settable)
        components = (payload["components"] or []) if "components" in payload else message.components
        self._check_components(components, flags)
        embeds = (payload["embeds"] or []) if "embeds" in payload else message.embeds
        attachments = self._new_attachments(payload, uploads, message.attachments)
        if not (content or embeds or attachments or components or payload.get("sticker_ids") or payload.get("poll")):
            raise ApiError(400, "Cannot send an empty message", 50006)
        message.content, message.flags, message.components = content, flags & ~LOADING, components
        message.embeds = [{"type": "rich", **e} for e in embeds]
        message.attachments = attachments
        if not created:
            message.edited_at, message.edited_timestamp = time.monotonic(), datetime.now(UTC).isoformat()
        self._record_revision(message, via)

    def _record_revision(self, message: Message, via: Via) -> None:
        message.revisions.append(
            Revision(
                at=time.monotonic(),
                via=via,
                content=message.content,
                filenames=tuple(a.filename for a in message.attachments),
                custom_ids=tuple(message.custom_ids),
                flags=message.flags,
            )
        )

    def _new_message(
        self, channel_id: int, via: Via, *, kind: int = DEFAULT_MESSAGE, interaction: Interaction | None = None
    ) -> Message:
        return Message(
            id=self._snowflake(),
            channel_id=channel_id,
            guild_id=None if channel_id in self.dm_channels else self.guild_id,
            author=self.bot_user,
            via=via,
            type=kind,
            interaction_id=interaction.id if interaction else None,
        )

    async def _create(
        self,
        channel_id: int,
        payload: Json,
        uploads: dict[int, Upload],
        via: Via,
        *,
        interaction: Interaction | None = None,
        kind: int = DEFAULT_MESSAGE,
    ) -> Message:
        message = self._new_message(channel_id, via, kind=kind, interaction=interaction)
        if via == "bot":
            payload = {**payload, "flags": int(payload.get("flags") or 0) & ~EPHEMERAL}
        self._apply(message, payload, uploads, via, created=True)
        self._messages[message.id] = message
        await self._announce("MESSAGE_CREATE", message)
        return message

    async def _edit(self, message: Message, payload: Json, uploads: dict[int, Upload], via: Via) -> Message:
        self._apply(message, payload, uploads, via, created=False)
        await self._announce("MESSAGE_UPDATE", message)
        return message

    async def _delete(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            data = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            intent = INTENT_DIRECT_MESSAGES if message.guild_id is None else INTENT_GUILD_MESSAGES
            await self._dispatch_with_intent(intent, "MESSAGE_DELETE", data)

    async def _announce(self, event: str, message: Message) -> None:
        # Ephemeral messages and loading states never reach the gateway.
        if message.ephemeral or message.loading:
            return
        data = self._message_payload(message)
        if message.guild_id is None:  # a DM: no member, and another intent
            await self._dispatch_with_intent(INTENT_DIRECT_MESSAGES, event, data)
            return
        data["member"] = {k: v for k, v in self._member(message.author).items() if k != "user"}
        await self._dispatch_with_intent(INTENT_GUILD_MESSAGES, event, data)

    async def _dispatch_with_intent(self, intent: int, event: str, data: Json) -> None:
        for session in self.sessions:
            if session.ready and session.intents & intent:
                await self._send_dispatch(session, event, data)

    # --- HTTP plumbing -------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        api = API_PREFIX
        routes = [
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/applications/{application_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/commands", self._put_commands),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            ("GET", "/channels/{channel_id}/messages", self._get_channel_messages),
            ("POST", "/channels/{channel_id}/messages", self._post_channel_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_channel_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_channel_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_channel_message),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._put_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self._delete_reaction),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", "/webhooks/{application_id}/{token}", self._post_followup),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self._get_webhook_message),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self._patch_webhook_message),
            ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}", self._delete_webhook_message),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._get_attachment)
        app.router.add_post("/_standin/slash", self._control_slash)
        app.router.add_post("/_standin/click", self._control_click)
        app.router.add_post("/_standin/react", self._control_react)
        app.router.add_get("/_standin/messages", self._control_messages)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        record = Request(request.method, request.path[len(API_PREFIX) :], time.monotonic())
        request["received_at"] = record.received_at
        self.requests.append(record)
        try:
            response = await self._answer(request, handler, record)
        except ApiError as error:
            response = error.response()
        except web.HTTPException as error:  # aiohttp's own 404/405 for unknown routes
            response = ApiError(error.status, f"{error.status}: {error.reason}", 0).response()
        record.status = response.status
        response.headers.setdefault("Via", "1.1 google")  # discord.py treats a 429 without Via as a Cloudflare ban
        logger.debug("%s %s -> %s", record.method, record.path, record.status)
        self._changed()
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        record: Request,
    ) -> web.StreamResponse:
        faults = [f for f in self.faults if f.matches(record.method, record.path)]
        failure = next((f for f in faults if f.status is not None), None)
        delays = [f for f in faults if f.delay_s and f is not failure]
        for fault in [*delays, *([failure] if failure else [])]:
            fault.hits += 1  # counted before any await, so concurrent requests cannot both take a `times=1` fault
        for fault in delays:
            await asyncio.sleep(fault.delay_s)  # the injected slowness itself
        bucket, major = self._bucket(request)
        if failure is not None:
            record.fault = "injected"
            return self._failure(failure, bucket)
        if not self._is_public(record.path) and request.headers.get("Authorization") not in (
            f"Bot {self.token}",
            self.token,
        ):
            raise ApiError(401, "401: Unauthorized", 0)
        count, window_end = self._buckets.get(major, (0, 0.0))
        now = time.monotonic()
        if now >= window_end:
            count, window_end = 0, now + self.rate_window_s
        count += 1
        self._buckets[major] = (count, window_end)
        if count > self.rate_limit:
            record.fault = "rate_limit"
            return self._rate_limited(window_end - now, False, bucket)
        response = await handler(request)
        self._rate_headers(response, bucket, self.rate_limit, max(0, self.rate_limit - count), window_end - now)
        return response

    @staticmethod
    def _is_public(path: str) -> bool:
        # Interaction callbacks and webhooks are authorised by their token in the path.
        return path == "/gateway" or path.startswith(("/interactions/", "/webhooks/"))

    def _bucket(self, request: web.Request) -> tuple[str, str]:
        """(Discord's bucket hash for the route, the key it is counted under: route + major parameter)."""
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else request.path
        bucket = hashlib.sha1(f"{request.method} {route}".encode()).hexdigest()[:16]
        major = next((info[k] for k in ("channel_id", "guild_id", "token") if k in info), "")
        return bucket, f"{bucket}:{major}"

    @staticmethod
    def _rate_headers(
        response: web.StreamResponse, bucket: str, limit: int, remaining: int, reset_after: float
    ) -> None:
        reset_after = max(reset_after, 0.0)
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = f"{time.time() + reset_after:.3f}"
        response.headers["X-RateLimit-Reset-After"] = f"{reset_after:.3f}"
        response.headers["X-RateLimit-Bucket"] = bucket

    def _rate_limited(self, retry_after: float, is_global: bool, bucket: str) -> web.Response:
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3), "global": is_global}
        response = _json(body, status=429)
        response.headers["Retry-After"] = str(math.ceil(retry_after))
        response.headers["X-RateLimit-Scope"] = "global" if is_global else "user"
        if is_global:
            response.headers["X-RateLimit-Global"] = "true"
        self._rate_headers(response, bucket, self.rate_limit, 0, retry_after)
        return response

    def _failure(self, fault: Fault, bucket: str) -> web.Response:
        assert fault.status is not None
        if fault.status == 429:
            return self._rate_limited(fault.retry_after, fault.is_global, bucket)
        body = fault.body or {"message": f"{fault.status}: {http.HTTPStatus(fault.status).phrase}", "code": 0}
        return _json(body, status=fault.status)

    # --- REST handlers: users, application, gateway, commands ------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        me = {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None, "flags": 0}
        return _json({**me, "locale": "en-US", "bio": ""})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, "Unknown User", 10013)
        return _json(user.payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot": self.bot_user.payload(),
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": hashlib.sha256(str(self.application_id).encode()).hexdigest(),
                "owner": self.member.payload(),
                "team": None,
                "flags": 0,
                "hook": True,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000 - len(self.sessions), "reset_after": 86_400_000, "max_concurrency": 1}
        return _json({"url": self.gateway_url.rstrip("/"), "shards": 1, "session_start_limit": limit})

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.application_id:
            raise ApiError(403, "Missing Access", 50001)
        if "guild_id" not in request.match_info:
            return None
        guild_id = int(request.match_info["guild_id"])
        if guild_id != self.guild_id:
            raise ApiError(404, "Unknown Guild", 10004)
        return guild_id

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands(self._command_scope(request)))

    async def _put_commands(self, request: web.Request) -> web.Response:
        guild_id = self._command_scope(request)
        body = await request.json()
        if not isinstance(body, list):
            raise _form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
        old = self._commands.get(guild_id, {})
        new: dict[tuple[str, int], Json] = {}
        for index, command in enumerate(body):
            name, kind = command.get("name", ""), command.get("type", 1)
            if kind == 1 and (not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower()):
                raise _form_error([index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if kind == 1 and not 1 <= len(command.get("description", "")) <= 100:
                raise _form_error(
                    [index, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            previous = old.get((name, kind))
            stored: Json = {
                "id": previous["id"] if previous else str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": str(self._snowflake()),
                "type": kind,
                "name": name,
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": command.get("default_member_permissions"),
                "nsfw": command.get("nsfw", False),
                "integration_types": command.get("integration_types", [0]),
                "contexts": command.get("contexts"),
            }
            if command.get("options"):
                stored["options"] = command["options"]
            if guild_id is None:
                stored["dm_permission"] = command.get("dm_permission", True)
            else:
                stored["guild_id"] = str(guild_id)
            new[(name, kind)] = stored
        self._commands[guild_id] = new
        return _json(list(new.values()))

    async def _create_dm(self, request: web.Request) -> web.Response:
        """Open (or return the open) DM channel between the bot and `recipient_id`."""
        body = await request.json() if request.body_exists else {}
        try:
            recipient = self.users.get(int(body.get("recipient_id")))
        except (TypeError, ValueError):
            raise _form_error(["recipient_id"], "NUMBER_TYPE_COERCE", "Value is not snowflake.") from None
        if recipient is None or recipient.bot:
            raise ApiError(400, "Invalid Recipient(s)", 50033)
        channel_id = self.dm_channel_id(recipient)
        if channel_id is None:
            channel_id = self._snowflake()
            self.dm_channels[channel_id] = self._dm_channel(channel_id, recipient)
            self._changed()
        return _json(self.dm_channels[channel_id])

    async def _get_member(self, request: web.Request) -> web.Response:
        if int(request.match_info["guild_id"]) != self.guild_id:
            raise ApiError(404, "Unknown Guild", 10004)
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, "Unknown Member", 10007)
        return _json(self._member(user))

    # --- REST handlers: channels and messages ---------------------------------------------

    def _channel_of(self, request: web.Request) -> int:
        channel_id = int(request.match_info["channel_id"])
        if channel_id not in self.channels and channel_id not in self.dm_channels:
            raise ApiError(404, "Unknown Channel", 10003)
        return channel_id

    def _in_guild(self, channel_id: int) -> bool:
        """Guild permissions apply (a DM has none to check)."""
        return channel_id in self.channels

    def _channel_message(self, request: web.Request) -> Message:
        channel_id = self._channel_of(request)
        message = self._messages.get(int(request.match_info["message_id"]))
        if message is None or message.channel_id != channel_id or message.deleted or message.ephemeral:
            raise ApiError(404, "Unknown Message", 10008)
        return message

    def _require(self, permissions: int) -> None:
        if not self.bot_permissions & VIEW_CHANNEL:
            raise ApiError(403, "Missing Access", 50001)
        if self.bot_permissions & permissions != permissions:
            raise ApiError(403, "Missing Permissions", 50013)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        return _json(self.channels.get(channel_id) or self.dm_channels[channel_id])

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel_of(request)
        return web.Response(status=204)

    async def _get_channel_messages(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        if self._in_guild(channel_id):
            self._require(READ_MESSAGE_HISTORY)
        limit = int(request.query.get("limit", "50"))
        found = self.messages(channel_id, include_ephemeral=False)[::-1][:limit]  # newest first, as Discord
        return _json([self._message_payload(m) for m in found])

    async def _post_channel_message(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        payload, uploads = await _read_body(request)
        if self._in_guild(channel_id):
            self._require(SEND_MESSAGES | (ATTACH_FILES if uploads else 0))
        elif int(self.dm_channels[channel_id]["recipients"][0]["id"]) in self.dms_closed:
            raise ApiError(403, "Cannot send messages to this user", 50007)
        message = await self._create(channel_id, payload, uploads, "bot")
        return _json(self._message_payload(message))

    async def _get_channel_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.guild_id is not None:
            self._require(READ_MESSAGE_HISTORY)
        return _json(self._message_payload(message))

    async def _patch_channel_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        payload, uploads = await _read_body(request)
        if uploads:
            self._require(ATTACH_FILES)
        return _json(self._message_payload(await self._edit(message, payload, uploads, "bot")))

    async def _delete_channel_message(self, request: web.Request) -> web.Response:
        await self._delete(self._channel_message(request))
        return web.Response(status=204)

    async def _put_reaction(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.guild_id is not None:
            self._require(ADD_REACTIONS | READ_MESSAGE_HISTORY)
        message.reactions.setdefault(request.match_info["emoji"], set()).add(self.application_id)
        return web.Response(status=204)

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        users = message.reactions.get(request.match_info["emoji"], set())
        users.discard(self.application_id)
        if not users:
            message.reactions.pop(request.match_info["emoji"], None)
        return web.Response(status=204)

    async def _get_attachment(self, request: web.Request) -> web.Response:
        # The CDN: attachment URLs in message payloads point here.
        attachment_id = int(request.match_info["attachment_id"])
        for message in self._messages.values():
            for a in message.attachments:
                if a.id == attachment_id:
                    return web.Response(body=a.data, content_type=a.content_type or "application/octet-stream")
        raise web.HTTPNotFound()

    # --- REST handlers: interaction callbacks and the interaction webhook --------------------

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        received_at: float = request["received_at"]
        interaction = self._interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise ApiError(404, "Unknown interaction", 10062)
        payload, uploads = await _read_body(request)
        kind = int(payload.get("type", 0))
        data: Json = payload.get("data") or {}
        started = interaction.dispatched_at or interaction.created_at
        status = 200
        try:
            if self.ack_deadline_s is not None and received_at - started > self.ack_deadline_s:
                raise ApiError(404, "Unknown interaction", 10062)
            if interaction.acknowledged:
                raise ApiError(400, "Interaction has already been acknowledged.", 40060)
            message = await self._respond(interaction, kind, data, uploads)
        except ApiError as error:
            status = error.status
            raise
        finally:
            callback = Callback(kind, data, received_at, received_at - started, status)
            interaction.callbacks.append(callback)
        if request.query.get("with_response", "").lower() not in {"1", "true"}:
            return web.Response(status=204)
        answer: Json = {"interaction": {"id": str(interaction.id), "type": interaction.type}}
        if message is not None:
            answer["interaction"].update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            answer["resource"] = {"type": kind, "message": self._message_payload(message)}
        return _json(answer)

    async def _respond(self, it: Interaction, kind: int, data: Json, uploads: dict[int, Upload]) -> Message | None:
        """Carry out one callback; return the message it created or changed."""
        if kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and it.type not in (MESSAGE_COMPONENT, MODAL_SUBMIT):
            raise _form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid")
        if kind == CHANNEL_MESSAGE:
            msg_kind = CHAT_INPUT_COMMAND_MESSAGE if it.type == APPLICATION_COMMAND else DEFAULT_MESSAGE
            message = await self._create(it.channel_id, data, uploads, "interaction", interaction=it, kind=msg_kind)
            it.original_message_id = message.id
            return message
        if kind == DEFERRED_CHANNEL_MESSAGE:
            # The "thinking…" message: recorded, never broadcast; the first follow-up or edit answers it.
            msg_kind = CHAT_INPUT_COMMAND_MESSAGE if it.type == APPLICATION_COMMAND else DEFAULT_MESSAGE
            message = self._new_message(it.channel_id, "interaction", kind=msg_kind, interaction=it)
            message.flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            self._record_revision(message, "interaction")
            self._messages[message.id] = message
            it.original_message_id = message.id
            return message
        if kind == DEFERRED_UPDATE_MESSAGE:
            it.original_message_id = it.message_id
            return None
        if kind == UPDATE_MESSAGE:
            assert it.message_id is not None
            it.original_message_id = it.message_id
            return await self._edit(self._messages[it.message_id], data, uploads, "interaction")
        if kind in (AUTOCOMPLETE_RESULT, MODAL):
            return None
        raise _form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid")

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        if int(request.match_info["application_id"]) != self.application_id:
            raise ApiError(404, "Unknown Webhook", 10015)
        interaction = self._by_token.get(request.match_info["token"])
        if interaction is None or request["received_at"] > interaction.expires_at:
            raise ApiError(401, "Invalid Webhook Token", 50027)
        if not interaction.acknowledged:
            raise ApiError(404, "Unknown Webhook", 10015)  # the webhook exists once the interaction is answered
        return interaction

    def _webhook_message(self, request: web.Request) -> tuple[Interaction, Message]:
        interaction = self._webhook_interaction(request)
        raw = request.match_info["message_id"]
        message_id = interaction.original_message_id if raw == "@original" else int(raw)
        owned = {interaction.original_message_id, *interaction.followup_ids}
        message = self._messages.get(message_id) if message_id in owned and message_id is not None else None
        if message is None or message.deleted:
            raise ApiError(404, "Unknown Message", 10008)
        return interaction, message

    async def _post_followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        payload, uploads = await _read_body(request)
        original = self._messages.get(interaction.original_message_id or 0)
        if original is not None and original.loading:
            # Discord answers a deferred "thinking" message with the first follow-up,
            # keeping the ephemerality chosen when deferring.
            payload = {**payload, "flags": original.flags & EPHEMERAL}
            message = await self._edit(original, payload, uploads, "webhook")
        else:
            message = await self._create(interaction.channel_id, payload, uploads, "webhook", interaction=interaction)
        interaction.followup_ids.append(message.id)
        if request.query.get("wait", "").lower() in {"1", "true"}:
            return _json(self._message_payload(message))
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        return _json(self._message_payload(message))

    async def _patch_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        payload, uploads = await _read_body(request)
        payload.pop("flags", None)  # ephemerality cannot change on edit
        return _json(self._message_payload(await self._edit(message, payload, uploads, "webhook")))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        await self._delete(message)
        return web.Response(status=204)

    # --- the gateway ------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sock = GatewaySocket(ws, request.query.get("compress"))
        self._sockets.add(sock)
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=CLOSE_DECODE_ERROR, message=b"only encoding=json is supported")
                return ws
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["standin"]}
            await sock.send({"op": 10, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await ws.close(code=CLOSE_DECODE_ERROR, message=b"expected text frames")
                    break
                try:
                    frame = json.loads(msg.data)
                except json.JSONDecodeError:
                    await ws.close(code=CLOSE_DECODE_ERROR, message=b"invalid JSON")
                    break
                await self._on_frame(sock, frame)
        except (ConnectionResetError, RuntimeError) as error:
            logger.debug("gateway connection lost: %s", error)
        finally:
            self._sockets.discard(sock)
            if sock.session is not None and sock.session.socket is sock:
                sock.session.socket = None
            self._changed()
        return ws

    async def _on_frame(self, sock: GatewaySocket, frame: Json) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:  # HEARTBEAT (the first one comes before IDENTIFY)
            self.heartbeats += 1
            if sock.session is not None:
                sock.session.heartbeats += 1
            await sock.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # IDENTIFY
            await self._identify(sock, data or {})
        elif op == 6:  # RESUME
            await self._resume(sock, data or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            members = [self._member(u) for u in self.users.values()]
            chunk = {"guild_id": str(self.guild_id), "members": members, "chunk_index": 0, "chunk_count": 1}
            if data and data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            if sock.session is not None:
                await self._send_dispatch(sock.session, "GUILD_MEMBERS_CHUNK", chunk)
        elif op in (3, 4):  # presence and voice state updates: accepted, ignored
            pass
        else:
            await sock.ws.close(code=CLOSE_UNKNOWN_OPCODE, message=b"unknown opcode")

    def _token_ok(self, token: str | None) -> bool:
        return token in (self.token, f"Bot {self.token}")

    async def _identify(self, sock: GatewaySocket, data: Json) -> None:
        if sock.session is not None:
            await sock.ws.close(code=CLOSE_ALREADY_AUTHENTICATED, message=b"already authenticated")
            return
        if not self._token_ok(data.get("token")):
            await sock.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"authentication failed")
            return
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=int(data.get("intents", 0)),
            identified_at=time.monotonic(),
            compression=sock.compress,
        )
        sock.session, session.socket = session, sock
        self.sessions.append(session)
        ready: Json = {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None, "flags": 0},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "user_settings": {},
            "_trace": ["standin"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self._guild(session.intents))
        session.ready = True
        logger.info("gateway session %s identified (intents %d)", session.id, session.intents)
        self._changed()

    async def _resume(self, sock: GatewaySocket, data: Json) -> None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if session is None or session.invalidated or not self._token_ok(data.get("token")):
            await sock.send({"op": 9, "d": False, "s": None, "t": None})  # INVALID_SESSION, not resumable
            return
        previous = session.socket
        if previous is not None and previous is not sock and previous.open:
            await previous.ws.close(code=CLOSE_UNKNOWN_ERROR, message=b"session resumed elsewhere")
        seq = data.get("seq") or 0
        async with session.lock:
            sock.session, session.socket = session, sock
            for frame in list(session.buffer):
                if frame["s"] > seq:
                    await sock.send(frame)
                    self._mark_dispatched(frame)
        session.resumes += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["standin"]})
        logger.info("gateway session %s resumed from seq %s", session.id, seq)
        self._changed()

    async def _send_dispatch(self, session: GatewaySession, event: str, data: Json) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "s": session.seq, "t": event, "d": data}
            session.buffer.append(frame)
            sock = session.socket
            if sock is None or not sock.open:
                return  # kept for RESUME
            try:
                await sock.send(frame)
            except (ConnectionResetError, RuntimeError) as error:
                logger.debug("dispatch %s to session %s not sent: %s", event, session.id, error)
                return
            self._mark_dispatched(frame)

    def _mark_dispatched(self, frame: Json) -> None:
        if frame["t"] == "INTERACTION_CREATE":
            interaction = self._interactions.get(int(frame["d"]["id"]))
            if interaction is not None and interaction.dispatched_at is None:
                interaction.dispatched_at = time.monotonic()

    # --- control API for the standalone mode ------------------------------------------------

    def _control_user(self, body: Json) -> User | None:
        return self.users.get(int(body["user_id"])) if body.get("user_id") else None

    async def _control_slash(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            it = await self.slash_command(
                body["name"], body.get("options"), user=self._control_user(body), validate=body.get("validate", True)
            )
        except (LookupError, ValueError, TimeoutError) as error:
            return _json({"error": str(error)}, status=400)
        return _json({"interaction_id": str(it.id)})

    async def _control_click(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            it = await self.click(
                int(body["message_id"]),
                body["custom_id"],
                user=self._control_user(body),
                strict=body.get("strict", True),
            )
        except (LookupError, ValueError, TimeoutError) as error:
            return _json({"error": str(error)}, status=400)
        return _json({"interaction_id": str(it.id)})

    async def _control_react(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            event = await self.react(int(body["message_id"]), body["emoji"], user=self._control_user(body))
        except (LookupError, ValueError, TimeoutError) as error:
            return _json({"error": str(error)}, status=400)
        return _json(event)

    async def _control_messages(self, request: web.Request) -> web.Response:
        channel = request.query.get("channel_id")
        found = self.messages(int(channel) if channel else None, include_deleted=True)
        return _json([m.summary() for m in found])


async def _serve(args: argparse.Namespace) -> None:
    standin = Standin(
        host=args.host,
        port=args.port,
        token=args.token,
        token_lifetime_s=args.token_lifetime,
        ack_deadline_s=args.ack_deadline if args.ack_deadline > 0 else None,
    )
    async with standin:
        for key, value in standin.env().items():
            print(f"{key}={value}", flush=True)
        print(f"# member user id {standin.member.id}; POST {standin.url}/_standin/slash to run a command", flush=True)
        await asyncio.Event().wait()  # until interrupted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Discord stand-in on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--token", default=BOT_TOKEN, help="the bot token it accepts")
    parser.add_argument("--token-lifetime", type=float, default=TOKEN_LIFETIME_S, help="interaction token lifetime, s")
    parser.add_argument("--ack-deadline", type=float, default=ACK_DEADLINE_S, help="0: no deadline")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
