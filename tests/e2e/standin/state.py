"""What the stand-in records: users, messages and their revisions, uploads,
interactions and their callbacks, gateway sessions, requests and injected faults."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .constants import EPHEMERAL, LOADING, RESUME_BUFFER_FRAMES

if TYPE_CHECKING:
    from .gateway import GatewaySocket

Json = dict[str, Any]
Via = Literal["bot", "interaction", "webhook", "member"]  # who made a message, or a revision of it


def walk_components(components: list[Json]) -> Iterator[Json]:
    """Every component, nested ones included (rows, sections' accessories)."""
    for c in components:
        yield c
        yield from walk_components(c.get("components", []))
        if isinstance(c.get("accessory"), dict):
            yield c["accessory"]


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
class Upload:
    """A `files[n]` part of a multipart request, before it becomes an attachment."""

    filename: str
    data: bytes


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
    via: Via  # who created it: the bot token, an interaction callback, the interaction webhook, a member
    type: int
    content: str = ""
    flags: int = 0
    mentions: list[int] = field(default_factory=list)  # users pinged: in the content and allowed_mentions
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    nonce: int | str | None = None
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
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

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
    guild_id: int | None  # None in the bot's DM
    payload: Json  # exactly what INTERACTION_CREATE carried
    created_at: float
    expires_at: float
    message_id: int | None = None  # the clicked message, for components
    session_id: str | None = None
    dispatched_at: float | None = None
    callbacks: list[Callback] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: Json | None = None  # the modal this interaction was answered with (callback type 9)

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


@dataclass
class Request:
    method: str
    path: str  # below the API prefix, e.g. /channels/1/messages
    received_at: float
    status: int | None = None
    fault: str | None = None  # "injected", "rate_limit" when the stand-in refused it
    query: dict[str, str] = field(default_factory=dict)
    user_agent: str = ""
    content_type: str = ""  # without its parameters: "application/json", "multipart/form-data"
    body: Any = None  # the JSON body, or a multipart body's `payload_json`; None when there was none
    files: tuple[int, ...] = ()  # the n of each `files[n]` part
    rate_limit_scope: str | None = None  # X-RateLimit-Scope of a 429: "user", "global" or "shared"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def invalid(self) -> bool:
        """What Discord counts toward its ban of an IP that makes too many invalid requests:
        401, 403 and 429 answers, except 429s of a shared rate limit."""
        return self.status in (401, 403) or (self.status == 429 and self.rate_limit_scope != "shared")


@dataclass
class Fault:
    """An injected failure or delay for requests whose `METHOD /path` matches `pattern` (fnmatch)."""

    pattern: str
    status: int | None = None
    retry_after: float = 0.0
    is_global: bool = False
    shared: bool = False  # a 429 of a shared resource's limit (X-RateLimit-Scope: shared)
    delay_s: float = 0.0
    times: int | None = 1  # None: until cleared
    body: Json | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        target = f"{method} {path}" if " " in self.pattern else path
        return fnmatch.fnmatchcase(target, self.pattern)
