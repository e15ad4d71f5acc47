"""What the end-to-end scenarios share: the `Deployment` they drive, and how they
read what Discord (the stand-in) recorded and wait for it.

Every wait is on an event: something the stand-in records (`wait_for`), a
process's log line, a Redis keyspace notification."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from PIL import Image

from daydream.redis_server import RedisServer
from shared import keys
from shared.custom_id import Action, parse
from shared.job import JobRecord
from shared.store import JobStore

from .processes import BotProcess, DaydreamProcess, WorkerProcess
from .standin import Interaction, Message, Standin, User

ACK_DEADLINE_S = 3.0  # Discord's, for the first answer to an interaction
JOB_WAIT_S = 90.0  # a queued job on a busy 2-core machine
ANSWER_WAIT_S = 45.0  # the bot's answer; with Redis down, redis-py retries with backoff first
# The waiting line: its place, then an estimate once recent jobs give one (issue 16).
WAITING_LINE = re.compile(r"\(Waiting to start, #\d+ in queue(, ~\d+ (s|min))?\)$")
PROGRESS_LINE = re.compile(r"\(\d{1,3}%\)$")
# The rows under an upscale; a square one has no Make Square.
UPSCALE_LABELS = [
    ["Vary (Strong)", "Vary (Subtle)", "Vary (Region)"],
    ["Upscale (Subtle)", "Upscale (Creative)"],
    ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom"],
    ["\N{LEFTWARDS BLACK ARROW}", "\N{BLACK RIGHTWARDS ARROW}", "\N{UPWARDS BLACK ARROW}", "\N{DOWNWARDS BLACK ARROW}"],
]
MAKE_SQUARE = ["Make Square"]
UPSCALE_BUTTONS = [  # their actions, in order
    Action.VARY_STRONG, Action.VARY_SUBTLE, Action.VARY_REGION, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE,
    Action.ZOOM_2, Action.ZOOM_15, Action.ZOOM_CUSTOM, Action.PAN_LEFT, Action.PAN_RIGHT, Action.PAN_UP, Action.PAN_DOWN,
]  # fmt: skip
REROLL_EMOJI = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
GRID_LABELS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", REROLL_EMOJI]]


@dataclass
class Deployment:
    """Everything a scenario drives: Discord (the stand-in), Redis, the bot, a worker."""

    standin: Standin
    redis_server: RedisServer
    store: JobStore
    bot: BotProcess
    worker: WorkerProcess

    def redis_up(self) -> bool:
        try:
            self.store.redis.ping()
        except redis.RedisError:
            return False
        return True

    async def ensure_running(self) -> None:
        """Start whatever a previous test left down (all of it, the first time)."""
        if not self.redis_up():
            self.redis_server.start()
        starts = []
        if not self.worker.alive:
            starts.append(self.worker.start())
        if not self.bot.alive:
            starts.append(self.bot.start(self.standin))
        await asyncio.gather(*starts)


# -- reading what the stand-in recorded ------------------------------------------------


def grid_ids(job_id: str) -> list[str]:
    return [
        *(f"dd:u:{job_id}:{i}" for i in range(1, 5)),
        *(f"dd:v:{job_id}:{i}" for i in range(1, 5)),
        f"dd:r:{job_id}:0",
    ]


def job_of(message: Message) -> str:
    """The job whose buttons the message carries (all of them name the same one)."""
    jobs = {parse(custom_id).job_id for custom_id in message.custom_ids}
    assert len(jobs) == 1, f"message {message.id} has buttons of {len(jobs)} jobs: {message.custom_ids}"
    return jobs.pop()


def button_labels(message: Message) -> list[list[str]]:
    """Per row, each button's label (or emoji)."""
    return [
        [button.get("label") or button.get("emoji", {}).get("name", "") for button in row["components"]]
        for row in message.components
    ]


def image_size(message: Message) -> tuple[int, int]:
    """The size of the message's one attachment, decoded by Pillow."""
    assert len(message.attachments) == 1, [a.filename for a in message.attachments]
    with Image.open(io.BytesIO(message.attachments[0].data)) as image:
        image.load()  # decodes the whole file, not just its header
        return image.size


def job_count(store: JobStore) -> int:
    return sum(1 for _ in store.redis.scan_iter(match="daydream:job:*", count=1000))


def is_result(message: Message | None) -> bool:
    """A result: an image with its buttons — not a progress preview under the ❌ of a job in flight."""
    if message is None or message.deleted or not (message.attachments and message.custom_ids):
        return False
    return not any(c.startswith(f"dd:{Action.CANCEL.value}:") for c in message.custom_ids)


def answers_to(deployment: Deployment, it: Interaction) -> list[Message]:
    """The ephemeral messages that answered interaction `it`."""
    return [m for m in deployment.standin.messages() if m.interaction_id == it.id and m.ephemeral]


# -- acting and waiting ------------------------------------------------------------------


async def finished(deployment: Deployment, job_id: str) -> JobRecord:
    """The job's record once it reached a final state (the worker records it right after posting)."""
    return await asyncio.to_thread(deployment.store.wait, job_id, JOB_WAIT_S)


async def imagine(deployment: Deployment, prompt: str, user: User | None = None, **options: Any) -> Interaction:
    return await deployment.standin.slash_command("imagine", {"prompt": prompt}, user=user, **options)


async def command_result(deployment: Deployment, it: Interaction) -> Message:
    """The /imagine answer once it shows the finished grid (the worker edits it in place)."""
    standin = deployment.standin

    def done() -> Message | None:
        message = standin.message(it.original_message_id) if it.original_message_id else None
        return message if is_result(message) else None

    return await deployment.worker.until(standin.wait_for(done, JOB_WAIT_S), "a result")


async def click_result(deployment: Deployment, click: Interaction) -> Message:
    """The follow-up a click made, once the worker has put its result in it."""
    standin = deployment.standin

    def done() -> Message | None:
        return next((m for m in map(standin.message, click.followup_ids) if is_result(m)), None)

    return await deployment.worker.until(standin.wait_for(done, JOB_WAIT_S), "a click's result")


async def private_answer(deployment: Deployment, it: Interaction) -> Message:
    def answered() -> Message | None:
        return next(iter(answers_to(deployment, it)), None)

    return await deployment.bot.until(deployment.standin.wait_for(answered, ANSWER_WAIT_S), "an ephemeral answer")


async def first_progress(deployment: Deployment, it: Interaction) -> None:
    """Until the worker has edited the job's message with a percentage: the job is running."""
    standin = deployment.standin

    def running() -> bool:
        message = standin.message(it.original_message_id) if it.original_message_id else None
        return message is not None and any(PROGRESS_LINE.search(r.content) for r in message.revisions)

    await deployment.worker.until(standin.wait_for(running, JOB_WAIT_S), "a progress edit")


async def waiting_line_shown(deployment: Deployment, it: Interaction) -> None:
    """Until the bot has shown `(Waiting to start, #N in queue)`. The bot enqueues only after
    that edit, so what the test does right here happens before any worker sees the job."""
    standin = deployment.standin

    def shown() -> bool:
        message = standin.message(it.original_message_id) if it.original_message_id else None
        return message is not None and any(WAITING_LINE.search(r.content) for r in message.revisions)

    await deployment.bot.until(standin.wait_for(shown, ANSWER_WAIT_S), "the waiting line")


async def channel_post_of(
    deployment: Deployment, prompt: str, user: User, since: int, channel_id: int | None = None
) -> Message:
    """The one result message the worker posted with the bot token in the channel (the main one
    by default), after message `since`."""
    standin = deployment.standin

    def posted() -> Message | None:
        return next(
            (
                m
                for m in standin.messages(channel_id or standin.channel_id)
                if m.id > since
                and m.via == "bot"
                and is_result(m)
                and m.content.startswith(f"**{prompt}**")
                and user.id in m.mentions
            ),
            None,
        )

    return await deployment.worker.until(standin.wait_for(posted, JOB_WAIT_S), "a channel post")


async def redis_until(
    deployment: Deployment,
    key: str,
    check: Callable[[redis.asyncio.Redis], Awaitable[Any]],
    what: str,
    process: DaydreamProcess | None = None,
    timeout: float = ANSWER_WAIT_S,
) -> Any:
    """`check(client)` once it is not None, re-read on every keyspace notification for `key`;
    given up on (with its log) if `process` (the bot, by default) exits meanwhile."""
    client = redis.asyncio.Redis.from_url(deployment.redis_server.url)
    try:
        await client.config_set("notify-keyspace-events", "K$l")
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(f"__keyspace@0__:{key}")

            async def value() -> Any:
                while (found := await check(client)) is None:
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            break
                return found

            return await (process or deployment.bot).until(asyncio.wait_for(value(), timeout), what)
    finally:
        await client.aclose()


async def worker_heartbeat(deployment: Deployment) -> None:
    """Until the worker's heartbeat is in Redis (a keyspace notification, or already there)."""
    key = keys.worker_heartbeat(deployment.worker.name)

    async def beating(client: redis.asyncio.Redis) -> bool | None:
        return True if await client.exists(key) else None

    await redis_until(deployment, key, beating, "its heartbeat", deployment.worker, JOB_WAIT_S)
