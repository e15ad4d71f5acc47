"""The job record: one JSON document per job in Redis.

`JobRecord.public()` is the documented, stable format that `daydream ... --json`
prints (README, "The job record"). The interaction token is never in it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from shared.params import Params


class JobKind(StrEnum):
    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # waited in the queue past its TTL and was dropped

    @property
    def finished(self) -> bool:
        return self in {JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}


@dataclass
class ReplyTarget:
    """Where the result goes in Discord. Empty for command-line jobs."""

    application_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None  # the message that shows the result, once posted
    message_url: str | None = None


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class JobRecord:
    id: str
    kind: JobKind
    prompt: str
    params: Params
    seeds: list[int]
    user_id: int | None = None
    negative_prompt: str = ""
    parent_id: str | None = None
    index: int | None = None  # image index (1-4) in the parent for U/V
    model: str = ""
    state: JobState = JobState.QUEUED
    worker: str | None = None
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = 0.0
    error: str | None = None
    width: int | None = None
    height: int | None = None
    images: int = 0  # how many images the result holds (4 for a grid, 1 for an upscale)
    reply: ReplyTarget = field(default_factory=ReplyTarget)

    # -- serialisation -------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        data = json.loads(raw)
        data["kind"] = JobKind(data["kind"])
        data["state"] = JobState(data["state"])
        data["params"] = Params(**data["params"])
        data["reply"] = ReplyTarget(**data.get("reply") or {})
        return cls(**data)

    def public(self) -> dict[str, Any]:
        """The stable record format for `--json`, without secrets."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "state": str(self.state),
            "user_id": self.user_id,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "params": asdict(self.params),
            "seeds": list(self.seeds),
            "parent_id": self.parent_id,
            "index": self.index,
            "model": self.model,
            "worker": self.worker,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress,
            "width": self.width,
            "height": self.height,
            "images": self.images,
            "error": self.error,
            "guild_id": self.reply.guild_id,
            "channel_id": self.reply.channel_id,
            "message_id": self.reply.message_id,
        }

    @property
    def title(self) -> str:
        """How Discord messages name the job: `**prompt**`."""
        return f"**{self.prompt}**"

    def mention(self) -> str:
        return f"<@{self.user_id}>" if self.user_id else "(command line)"
