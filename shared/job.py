"""The job record: one JSON document per job in Redis.

Read tolerantly (shared/record.py): a record written by a newer bot or worker
(more fields, at any level) or an older one (fewer) loads, and fields this
version does not know survive its rewrites. `JobRecord.public()` is the
documented, stable format that `daydream ... --json` prints (README, "The job
record"); fields are only ever added to it. The interaction token is never in it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared import record
from shared.edits import Edit
from shared.loras import LoraRef
from shared.params import Params, PromptPart


class JobKind(StrEnum):
    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"
    REGION = "region"  # Vary (Region): repaint some cells of one image
    ZOOM = "zoom"  # Zoom Out 2x / 1.5x / Custom: paint a border around it
    PAN = "pan"  # ⬅ ➡ ⬆ ⬇: paint a strip on one side
    SQUARE = "square"  # Make Square: outpaint to 1:1
    BLEND = "blend"  # /blend: four images mixing 2–5 input images
    DESCRIBE = "describe"  # /describe: four prompts for an input image


EDIT_KINDS = frozenset({JobKind.REGION, JobKind.ZOOM, JobKind.PAN, JobKind.SQUARE})


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # waited in the queue past its TTL and was dropped

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED})
DEFAULT_LANE = "fast"
LANES = ("turbo", "fast", "relax")  # priority order (shared/dispatch.py)


def is_finished(state: JobState | str) -> bool:
    """Also for a state this version does not know (kept as text): not finished."""
    return state in FINISHED


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
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py

    @property
    def is_discord(self) -> bool:
        """Command-line jobs have neither an interaction nor a channel."""
        return self.application_id is not None or self.channel_id is not None


@dataclass
class InputImage:
    """An image the job reads (a /describe or /blend input, an image prompt, a
    region mask), stored like results (ImageStore.put_input) under `name`."""

    name: str
    role: str = "image"  # image | mask
    width: int | None = None
    height: int | None = None
    job: str | None = None  # stored under this job's id (🔄 of /describe reads its parent's); None: the job's own
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


@dataclass
class Venue:
    """Where a job is judged by the moderation policy (shared/moderation.py): the server,
    the channel, whether Discord marks that channel NSFW (age-restricted), a DM.
    Kept apart from ReplyTarget: `daydream imagine --guild --channel` is judged like
    the bot's jobs there, yet posts nothing to Discord."""

    guild_id: int | None = None
    channel_id: int | None = None
    nsfw: bool = False
    dm: bool = False
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class JobRecord:
    id: str
    kind: JobKind
    prompt: str
    params: Params = field(default_factory=Params)
    seeds: list[int] = field(default_factory=list)
    user_id: int | None = None
    negative_prompt: str = ""
    parent_id: str | None = None
    index: int | None = None  # image index (1-4) in the parent for U/V
    model: str = ""  # the model's name; its queue is (model, lane)
    lane: str = DEFAULT_LANE
    state: JobState = JobState.QUEUED
    worker: str | None = None
    attempts: int = 0  # re-queues so far; also the fence of every worker write
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = 0.0
    error: str | None = None
    undelivered: str | None = None  # done, but Discord refused the result (why); `daydream job` has it
    width: int | None = None
    height: int | None = None
    images: int = 0  # how many images the result holds (4 for a grid, 1 for an upscale)
    inputs: list[InputImage] = field(default_factory=list)
    loras: list[LoraRef] = field(default_factory=list)  # applied, in order (shared/loras.py)
    reply: ReplyTarget = field(default_factory=ReplyTarget)
    edit: Edit | None = None  # what a region / zoom / pan / square job changes (shared/edits.py)
    described: list[str] = field(default_factory=list)  # what /describe found: its four prompts
    venue: Venue = field(default_factory=Venue)  # where the moderation policy judges it
    # The weighted parts (`a::2 b::-0.5`, each `--no` thing at -0.5); empty in records of
    # earlier versions: `prompt` at weight 1 and `negative_prompt` then (weighted_prompts).
    prompts: list[PromptPart] = field(default_factory=list)
    remix: str | None = None  # "strong" / "subtle": the Remix modal edited this child's prompt
    # What the model read in the prompt and drew ("a red circle, top left, on blue"),
    # for engines that can say (the embedded one); None: not said.
    understood: str | None = None
    out_of_world: bool = False  # the prompt asked for nothing the model can draw
    unread: list[str] = field(default_factory=list)  # words of the prompt it could not place
    drawn: str | None = None  # the words the model was conditioned on, where not the prompt as typed
    # The seed each image of the result came from, in order, when the engine kept
    # the best four of more candidates (regenerating uses these, without re-ranking).
    kept_seeds: list[int] = field(default_factory=list)
    candidates: int = 0  # how many candidates they were the best of (0: not ranked)
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py

    def weighted_prompts(self) -> list[PromptPart]:
        if self.prompts:
            return list(self.prompts)
        parts = [PromptPart(self.prompt, 1.0)]
        return parts + ([PromptPart(self.negative_prompt, -1.0)] if self.negative_prompt else [])

    # -- serialisation -------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(record.dump(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        return record.load(cls, json.loads(raw))

    @property
    def finished(self) -> bool:
        return is_finished(self.state)

    def public(self) -> dict[str, Any]:
        """The stable record format for `--json`, without secrets."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "state": str(self.state),
            "user_id": self.user_id,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "params": record.dump(self.params),
            "seeds": list(self.seeds),
            "parent_id": self.parent_id,
            "index": self.index,
            "model": self.model,
            "lane": self.lane,
            "worker": self.worker,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress,
            "width": self.width,
            "height": self.height,
            "images": self.images,
            "inputs": [record.dump(i) for i in self.inputs],
            "loras": [{"name": r.name, "weight": r.weight} for r in self.loras],
            "error": self.error,
            "undelivered": self.undelivered,
            "guild_id": self.reply.guild_id,
            "channel_id": self.reply.channel_id,
            "message_id": self.reply.message_id,
            "prompts": [{"text": p.text, "weight": p.weight} for p in self.weighted_prompts()],
            "remix": self.remix,
            "edit": record.dump(self.edit) if self.edit is not None else None,
            "described": list(self.described),
            "understood": self.understood,
            "out_of_world": self.out_of_world,
            "unread": list(self.unread),
            "drawn": self.drawn,
            "kept_seeds": list(self.kept_seeds),
            "candidates": self.candidates,
        }
