"""Issue 5 end to end: the buttons under an upscale and the ✉️/❌ reactions,
with the real `daydream bot`, a real worker and a real redis-server, driven
through the Discord stand-in as a member would — clicks and reactions — and
judged by what Discord (the stand-in) recorded and by the job records in Redis.

Every wait is on an event: something the stand-in records (`wait_for`), a
process's log line, a Redis keyspace notification. Prompts use few sampling
steps to keep jobs short on a CPU."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio
from PIL import Image
from rq import Queue

from shared import keys
from shared.custom_id import Action, encode, parse
from shared.job import JobKind, JobRecord, JobState
from shared.store import JobStore

from .scenario_helpers import (
    ACK_DEADLINE_S,
    ANSWER_WAIT_S,
    GRID_LABELS,
    UPSCALE_BUTTONS,
    UPSCALE_LABELS,
    Deployment,
    button_labels,
    click_result,
    command_result,
    finished,
    grid_ids,
    image_size,
    imagine,
    job_of,
    redis_until,
    waiting_line_shown,
)
from .standin import DEFERRED_UPDATE_MESSAGE, DM, Interaction, Message, User

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.timeout(240),
]

TEXT = "a white moon over a dark sea"
PROMPT = f"{TEXT} --steps 4"  # every button under the upscale still samples ≥ 1 step (steps × strength)
QUICK = "--steps 2"  # for results whose pixels do not matter
ENVELOPE = "\N{ENVELOPE}\N{VARIATION SELECTOR-16}"  # ✉️ as Discord's clients send it
CROSS = "\N{CROSS MARK}"  # ❌
# Settings' defaults (VARY_STRONG, VARY_SUBTLE, UPSCALE_SUBTLE, UPSCALE_CREATIVE in the environment).
STRENGTHS = {
    Action.VARY_STRONG: 0.75,
    Action.VARY_SUBTLE: 0.4,
    Action.UPSCALE_SUBTLE: 0.25,
    Action.UPSCALE_CREATIVE: 0.5,
}
STANDBY_WORKER = "e2e-standby"  # a heartbeat without a worker: jobs are accepted and stay queued


# -- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    message: Message
    job_id: str
    record: JobRecord


def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        return rgb.size, rgb.tobytes()


def queue_key(store: JobStore, record: JobRecord) -> str:
    """The Redis list of RQ's queue that the job waits on: the queue of its (model, lane)."""
    name = store.dispatch.queue_name(record.model, record.lane)
    return Queue(name, connection=store.redis).key


def rq_job_ids(store: JobStore, record: JobRecord) -> list[str]:
    """The Daydream job ids on the job's RQ queue (RQ's ids are `<job id>-<attempt>`)."""
    return [raw.decode().split("-")[0] for raw in store.redis.lrange(queue_key(store, record), 0, -1)]


async def first_dm(deployment: Deployment, user: User) -> Message:
    """The first message the bot sent `user` by DM."""
    standin = deployment.standin

    def sent() -> Message | None:
        return next(iter(standin.dms(user)), None)

    return await deployment.bot.until(standin.wait_for(sent, ANSWER_WAIT_S), f"a DM to {user.username}")


async def redis_key_set(deployment: Deployment, key: str) -> bytes:
    """The value of `key` once something has set it (a keyspace notification, or already there)."""

    async def check(client: redis.asyncio.Redis) -> bytes | None:
        return await client.get(key)

    return await redis_until(deployment, key, check, f"Redis key {key}")


async def on_rq_queue(deployment: Deployment, store: JobStore, job_id: str) -> None:
    """Return once the job is on RQ's queue: the bot saves the record, then enqueues it."""
    key = queue_key(store, store.get(job_id))

    async def check(client: redis.asyncio.Redis) -> bool | None:
        ids = [raw.decode().split("-")[0] for raw in await client.lrange(key, 0, -1)]
        return True if job_id in ids else None

    await redis_until(deployment, key, check, f"job {job_id} on the RQ queue")


def add_standby_heartbeat(store: JobStore, models: list[str]) -> None:
    """Make Redis say a worker holding `models` is alive while none listens on their queues:
    the bot then accepts a job (it refuses one no live worker can serve) and it stays waiting."""
    info = {"name": STANDBY_WORKER, "device": "none", "job": None, "models": models}
    with store.redis.pipeline() as pipe:
        pipe.sadd(keys.WORKERS, STANDBY_WORKER)
        pipe.set(keys.worker_heartbeat(STANDBY_WORKER), json.dumps(info), ex=120)
        pipe.execute()


def acknowledged_silently(deployment: Deployment, click: Interaction) -> None:
    first = deployment.standin.interaction_responses(click.id)[0]
    assert first.type == DEFERRED_UPDATE_MESSAGE and first.accepted, first  # the upscale stays as it is
    assert first.latency_s < ACK_DEADLINE_S, first.latency_s


# -- a grid, and its image #1 upscaled: scenarios 1 and 2 act on them ----------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def grid(daydream: Deployment) -> Result:
    await daydream.ensure_running()
    it = await imagine(daydream, PROMPT)
    message = await command_result(daydream, it)
    job_id = job_of(message)
    return Result(message, job_id, await finished(daydream, job_id))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upscale(daydream: Deployment, grid: Result) -> Result:
    await daydream.ensure_running()
    click = await daydream.standin.click(grid.message.id, f"dd:u:{grid.job_id}:1")
    message = await click_result(daydream, click)
    job_id = job_of(message)
    record = await finished(daydream, job_id)
    assert (record.kind, record.parent_id, record.index, record.state) == (
        JobKind.UPSCALE,
        grid.job_id,
        1,
        JobState.DONE,
    )
    assert button_labels(message) == UPSCALE_LABELS  # square: no Make Square
    return Result(message, job_id, record)


# -- 1. Vary (Strong/Subtle) and Upscale (Subtle/Creative) under an upscale -----------------


async def test_buttons_under_an_upscale(deployment: Deployment, upscale: Result) -> None:
    standin = deployment.standin
    member = standin.member
    other = standin.add_member("creative-clicker")  # anyone may click; the new job is theirs
    up, up_size = upscale.message, image_size(upscale.message)
    up_edits, up_ids = up.edits, list(up.custom_ids)
    assert up.custom_ids == [f"dd:{action.value}:{upscale.job_id}:0" for action in UPSCALE_BUTTONS]

    clickers = {
        Action.VARY_STRONG: member,
        Action.VARY_SUBTLE: member,
        Action.UPSCALE_SUBTLE: member,
        Action.UPSCALE_CREATIVE: other,
    }
    clicks = {
        action: await standin.click(up.id, f"dd:{action.value}:{upscale.job_id}:0", user=user)
        for action, user in clickers.items()
    }
    results = dict(
        zip(clicks, await asyncio.gather(*(click_result(deployment, c) for c in clicks.values())), strict=True)
    )
    for click in clicks.values():
        acknowledged_silently(deployment, click)
    assert up.edits == up_edits and up.custom_ids == up_ids and not up.deleted

    jobs = {action: job_of(message) for action, message in results.items()}
    assert len({upscale.job_id, *jobs.values()}) == 5, jobs
    for action, message in results.items():
        clicker, job_id = clickers[action], jobs[action]
        record = await finished(deployment, job_id)
        assert record.state == JobState.DONE, (action, record.state, record.error)
        assert (record.parent_id, record.user_id) == (upscale.job_id, clicker.id), (action, record)
        assert record.params.strength == pytest.approx(STRENGTHS[action]), (action, record.params)
        assert not message.ephemeral and message.mentions == [clicker.id], (action, message.content)
        if action in (Action.VARY_STRONG, Action.VARY_SUBTLE):
            # A new grid of variations of the upscale, with its own nine buttons.
            assert record.kind == JobKind.VARIATION, (action, record.kind)
            assert message.content == f"**{TEXT}** - Variations by <@{clicker.id}> (fast)", (action, message.content)
            assert message.custom_ids == grid_ids(job_id), (action, message.custom_ids)
            assert button_labels(message) == GRID_LABELS, (action, button_labels(message))
            assert record.width and record.height, record
            assert image_size(message) == (2 * record.width, 2 * record.height), (action, image_size(message))
        else:
            # The upscale's one image, enlarged 2× again, with the four buttons of an upscale.
            assert record.kind == JobKind.UPSCALE, (action, record.kind)
            assert message.content == f"**{TEXT}** - Image #1 <@{clicker.id}> (fast)", (action, message.content)
            assert image_size(message) == (2 * up_size[0], 2 * up_size[1]), (action, image_size(message), up_size)
            assert button_labels(message) == UPSCALE_LABELS, (action, button_labels(message))
            assert [parse(c).action for c in message.custom_ids] == UPSCALE_BUTTONS
            assert message.custom_ids == [f"dd:{a.value}:{job_id}:0" for a in UPSCALE_BUTTONS]


# -- 2. ✉️ by another member: a DM with the image, the job id and the seeds ----------------


async def test_envelope_sends_the_result_by_dm(deployment: Deployment, grid: Result) -> None:
    standin = deployment.standin
    reader = standin.add_member("dm-reader")
    edits = grid.message.edits

    event = await standin.react(grid.message.id, ENVELOPE, user=reader)
    assert event["message_author_id"] == str(standin.bot_user.id)
    dm = await first_dm(deployment, reader)

    channel = standin.dm_channels[dm.channel_id]
    assert channel["type"] == DM and [u["id"] for u in channel["recipients"]] == [str(reader.id)]
    assert standin.requests_to("POST /users/@me/channels"), "the DM channel was never opened"
    assert dm.guild_id is None and dm.via == "bot" and not dm.ephemeral
    assert grid.job_id in dm.content, dm.content
    assert grid.record.seeds and all(str(seed) in dm.content for seed in grid.record.seeds), dm.content
    # The grid itself, pixel for pixel.
    assert len(dm.attachments) == 1, [a.filename for a in dm.attachments]
    assert pixels(dm.attachments[0].data) == pixels(grid.message.attachments[0].data)

    # Only the reacting member got a DM; the grid is as it was.
    assert standin.dms(standin.member) == []
    assert len(standin.dms(reader)) == 1
    assert not grid.message.deleted and grid.message.edits == edits


# -- 3. ❌ by the requester on a waiting job: cancelled and off the queue ------------------


async def test_cross_on_a_waiting_job_cancels_it(deployment: Deployment) -> None:
    standin, store, worker = deployment.standin, deployment.store, deployment.worker
    member = standin.member
    prompt = "a purple cone on a green table"

    [live] = store.dispatch.live_workers()
    await worker.stop()  # nobody takes the job off the queue...
    add_standby_heartbeat(store, live["models"])  # ...yet the bot accepts it
    try:
        it = await imagine(deployment, f"{prompt} {QUICK}")
        await waiting_line_shown(deployment, it)
        waiting = standin.message(it.original_message_id or 0)
        # The bot notes which job the waiting line shows once the job is queued: that is what ❌ reads.
        job_id = (await redis_key_set(deployment, f"{keys.PREFIX}:message:{waiting.id}")).decode()
        await on_rq_queue(deployment, store, job_id)  # the link is written just before the job is queued
        queued = store.get(job_id)
        assert queued.state == JobState.QUEUED and job_id in rq_job_ids(store, queued)
        assert waiting.custom_ids == [encode(Action.CANCEL, job_id, 0)] and not waiting.attachments  # its ❌ button

        await standin.react(waiting.id, CROSS)

        def says_cancelled() -> bool:
            return "cancelled" in waiting.content.lower()

        await deployment.bot.until(standin.wait_for(says_cancelled, ANSWER_WAIT_S), "the cancelled line")
        assert waiting.content.startswith(f"**{prompt}** - <@{member.id}>"), waiting.content
        assert not waiting.deleted and not waiting.custom_ids and not waiting.attachments
        record = store.get(job_id)
        assert record.state == JobState.CANCELLED, (record.state, record.error)
        assert job_id not in rq_job_ids(store, record) and store.position(job_id) is None
        assert job_id not in {m.decode() for m in store.redis.zrange(keys.QUEUED, 0, -1)}
    finally:
        store.dispatch.worker_gone(STANDBY_WORKER)
        await worker.start()
    # Still cancelled with a worker on the queue again.
    assert store.get(job_id).state == JobState.CANCELLED


# -- 4. ❌ by the requester deletes a finished result; by a stranger it does nothing -------


async def test_cross_deletes_a_result_for_its_requester_only(deployment: Deployment) -> None:
    standin, store = deployment.standin, deployment.store
    requester = standin.add_member("requester")  # not the server's owner: no admin powers
    stranger = standin.add_member("stranger")

    asked = [
        await imagine(deployment, f"{text} {QUICK}", user=requester)
        for text in ("an orange kite in a grey sky", "a black cat on a red roof")
    ]
    mine, theirs = await asyncio.gather(*(command_result(deployment, it) for it in asked))
    # Finished in Redis too: the worker records DONE just after it posts the result, and until then
    # the bot takes a ❌ for cancelling a running job (bot/reactions.py reads the record, not the message).
    for result in (mine, theirs):
        assert (await finished(deployment, job_of(result))).state == JobState.DONE
    kept_edits = theirs.edits

    await standin.react(theirs.id, CROSS, user=stranger)  # not theirs to delete
    await standin.react(mine.id, CROSS, user=requester)
    await deployment.bot.until(standin.wait_for(lambda: mine.deleted, ANSWER_WAIT_S), "the result's deletion")
    assert [r.status for r in standin.requests_to(f"DELETE /channels/{mine.channel_id}/messages/{mine.id}")] == [204]
    assert store.get(job_of(mine)).state == JobState.DONE  # the message goes; the job stays done

    assert not theirs.deleted, "a stranger's ❌ deleted someone else's result"
    # A later reaction by the stranger is handled: the ❌ before it was seen, and ignored.
    await standin.react(theirs.id, ENVELOPE, user=stranger)
    dm = await first_dm(deployment, stranger)
    assert job_of(theirs) in dm.content, dm.content
    assert not theirs.deleted and theirs.edits == kept_edits
    assert standin.requests_to(f"DELETE /channels/*/messages/{theirs.id}") == []
    assert standin.requests_to(f"DELETE /webhooks/*/messages/{theirs.id}") == []
    assert store.get(job_of(theirs)).state == JobState.DONE
