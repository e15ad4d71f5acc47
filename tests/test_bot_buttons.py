"""Clicks on the buttons under a result, through discord.py's real dynamic-item
dispatch, against a real Redis and JobStore.

Every test starts a fresh bot and clicks on a message whose components come
from shared/components.py, as a worker posts them: nothing about the parent
lives in the bot's memory, which is what makes buttons survive a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import discord
import pytest

from shared import keys
from shared.claims import CLAIM_TTL_S
from shared.components import grid_components, upscale_components
from shared.custom_id import Action, encode
from shared.job import JobKind, JobRecord, JobState, ReplyTarget, new_job_id
from shared.params import Params
from shared.settings import RECORD_TTL_S, Settings
from tests.support.discord_api import (
    CHANNEL_ID,
    DEFERRED_UPDATE,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    Harness,
    start_bot,
    worker_alive,
)
from tests.support.jobs import empty_queue

ADMIN_ID = 700000000000000099


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


PARENT_SEEDS = [11, 22, 33, 44]


def saved_parent(h: Harness, *, kind: JobKind = JobKind.IMAGINE, user_id: int = USER_ID) -> JobRecord:
    """A finished job as a worker leaves it: its images delivered, its buttons posted."""
    upscale = kind == JobKind.UPSCALE
    record = JobRecord(
        id=new_job_id(),
        kind=kind,
        prompt="a red circle on a blue background",
        negative_prompt="text",
        params=Params(aspect="3:2", steps=12),
        seeds=PARENT_SEEDS[:1] if upscale else list(PARENT_SEEDS),
        user_id=user_id,
        model="embedded",
        state=JobState.DONE,
        images=1 if upscale else 4,
        reply=ReplyTarget(guild_id=GUILD_ID, channel_id=CHANNEL_ID, message_id=123),
    )
    h.store.save(record)
    return record


def queued_jobs(h: Harness) -> list[JobRecord]:
    """Jobs submitted during the test, oldest first (parents are saved, not submitted)."""
    ids = [raw.decode() for raw in h.store.redis.lrange(keys.RECENT, 0, -1)]
    return [h.store.get(i) for i in reversed(ids)]


def only_child(h: Harness) -> JobRecord:
    [child] = queued_jobs(h)
    assert h.store.dispatch.depth("embedded") == 1
    return child


def ephemeral_followup(h: Harness) -> str:
    """A click answered privately after its silent defer."""
    assert h.discord.answers[0].payload == {"type": DEFERRED_UPDATE}
    [followup] = h.discord.followups
    assert followup.ephemeral
    return followup.content


async def click(h: Harness, parent: JobRecord, action: Action, index: int, **kwargs: object) -> None:
    components = upscale_components(parent.id) if parent.kind == JobKind.UPSCALE else grid_components(parent.id)
    await h.click(encode(action, parent.id, index), components, **kwargs)


# -- U1–U4 -----------------------------------------------------------------


async def test_u2_defers_silently_and_queues_an_upscale_owned_by_the_clicker(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    payload = h.click_payload(encode(Action.UPSCALE, parent.id, 2), grid_components(parent.id), user_id=OTHER_USER_ID)
    await h.deliver(payload)

    # 1. The silent kind of defer, first: the grid's message stays as it is.
    assert h.discord.calls[0].payload == {"type": DEFERRED_UPDATE}
    # 2. A public waiting line, as a follow-up, pinging only the clicker.
    [waiting] = h.discord.followups
    assert not waiting.ephemeral
    assert waiting.content == f"**{parent.prompt}** - <@{OTHER_USER_ID}> (Waiting to start, #1 in queue)"
    assert waiting.payload["allowed_mentions"] == {"parse": [], "users": [OTHER_USER_ID]}
    # 3. The child job: image 2 of the parent, its seed, the clicker's interaction and the follow-up to edit.
    child = only_child(h)
    assert (child.kind, child.parent_id, child.index) == (JobKind.UPSCALE, parent.id, 2)
    assert child.seeds == [PARENT_SEEDS[1]]
    assert (child.prompt, child.negative_prompt, child.model) == (parent.prompt, "text", "embedded")
    assert child.params.aspect == "3:2" and child.params.steps == 12
    assert child.user_id == OTHER_USER_ID
    assert child.reply.interaction_token == payload["token"]
    assert (child.reply.guild_id, child.reply.channel_id) == (GUILD_ID, CHANNEL_ID)
    assert child.reply.message_id == waiting.message_id
    # 4. The claim on "U2 of this grid" now lives as long as job records.
    claim = keys.child(parent.id, Action.UPSCALE.value, 2)
    assert h.store.redis.get(claim) == child.id.encode()
    assert h.store.redis.ttl(claim) > CLAIM_TTL_S


async def test_a_second_u2_links_to_the_first_instead_of_recomputing(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    await click(h, parent, Action.UPSCALE, 2)
    child = only_child(h)
    h.discord.calls.clear()

    await click(h, parent, Action.UPSCALE, 2, user_id=OTHER_USER_ID)
    text = ephemeral_followup(h)
    link = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{child.reply.message_id}"
    assert text == f"Image #2 is already being upscaled: {link}"
    assert len(queued_jobs(h)) == 1 and h.store.dispatch.depth("embedded") == 1

    # Once delivered, the link is the worker's message.
    url = f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/555"
    h.store.update(child.id, state=JobState.DONE, reply=replace(child.reply, message_id=555, message_url=url))
    h.discord.calls.clear()
    await click(h, parent, Action.UPSCALE, 2)
    assert ephemeral_followup(h) == f"Image #2 was already upscaled: {url}"
    assert len(queued_jobs(h)) == 1

    # Another image is another upscale.
    h.discord.calls.clear()
    await click(h, parent, Action.UPSCALE, 3)
    assert [j.index for j in queued_jobs(h)] == [2, 3]


async def test_two_simultaneous_u2_clicks_make_one_job(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    custom_id = encode(Action.UPSCALE, parent.id, 2)
    components = grid_components(parent.id)
    await h.deliver(
        h.click_payload(custom_id, components), h.click_payload(custom_id, components, user_id=OTHER_USER_ID)
    )
    assert len(queued_jobs(h)) == 1
    assert [c.payload for c in h.discord.answers] == [{"type": DEFERRED_UPDATE}] * 2
    public = [c for c in h.discord.followups if not c.ephemeral]
    private = [c for c in h.discord.followups if c.ephemeral]
    assert len(public) == 1 and len(private) == 1
    assert private[0].content.startswith("Image #2 is already being upscaled")


async def test_a_failed_upscale_is_made_again(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    await click(h, parent, Action.UPSCALE, 1)
    first = only_child(h)
    empty_queue(h.store)
    h.store.update(first.id, state=JobState.FAILED, error="out of memory")
    h.discord.calls.clear()

    await click(h, parent, Action.UPSCALE, 1)
    second = queued_jobs(h)[-1]
    assert second.id != first.id and second.index == 1
    assert h.store.redis.get(keys.child(parent.id, "u", 1)) == second.id.encode()
    assert not any(c.ephemeral for c in h.discord.calls)


# -- V1–V4, 🔄, and the buttons under an upscale ----------------------------


async def test_v3_queues_four_new_variations_of_image_3(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    await click(h, parent, Action.VARY, 3)
    child = only_child(h)
    assert (child.kind, child.parent_id, child.index) == (JobKind.VARIATION, parent.id, 3)
    assert child.params.strength == 0.75
    assert len(child.seeds) == 4 and child.seeds != PARENT_SEEDS
    assert child.reply.message_id == h.discord.followups[0].message_id
    # V buttons may be clicked again: each click is a new set of variations.
    await click(h, parent, Action.VARY, 3)
    assert len(queued_jobs(h)) == 2


async def test_a_button_and_a_parent_of_an_earlier_version_still_work(harness: Harness) -> None:
    """A grid posted before this version: its custom_id typed out as it was minted,
    its record as that version wrote it (its MODEL source, no lane)."""
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    raw = json.loads(h.store.redis.get(keys.job(parent.id)))
    del raw["lane"], raw["inputs"]
    h.store.redis.set(keys.job(parent.id), json.dumps({**raw, "model": "embedded"}))
    await h.click(f"dd:v:{parent.id}:3", grid_components(parent.id))
    child = only_child(h)
    assert (child.kind, child.parent_id, child.index, child.model, child.lane) == (
        JobKind.VARIATION,
        parent.id,
        3,
        "embedded",
        "fast",
    )


async def test_reroll_queues_the_same_prompt_with_new_seeds(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    await click(h, parent, Action.REROLL, 0)
    child = only_child(h)
    assert (child.kind, child.parent_id, child.index) == (JobKind.REROLL, parent.id, None)
    assert (child.prompt, child.negative_prompt) == (parent.prompt, parent.negative_prompt)
    assert child.params.aspect == "3:2" and child.params.steps == 12
    assert len(child.seeds) == 4 and child.seeds != PARENT_SEEDS


@pytest.mark.parametrize(
    ("action", "kind", "strength", "seeds"),
    [
        (Action.VARY_STRONG, JobKind.VARIATION, 0.75, 4),
        (Action.VARY_SUBTLE, JobKind.VARIATION, 0.4, 4),
        (Action.UPSCALE_SUBTLE, JobKind.UPSCALE, 0.25, 1),
        (Action.UPSCALE_CREATIVE, JobKind.UPSCALE, 0.5, 1),
    ],
)
async def test_buttons_under_an_upscale(
    harness: Harness, action: Action, kind: JobKind, strength: float, seeds: int
) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h, kind=JobKind.UPSCALE)
    await click(h, parent, action, 0)
    child = only_child(h)
    assert (child.kind, child.parent_id, child.index) == (kind, parent.id, 1)
    assert child.params.strength == strength
    assert len(child.seeds) == seeds
    if kind == JobKind.UPSCALE:
        assert child.seeds == parent.seeds  # the image it enlarges keeps its seed


# -- clicks that are refused ------------------------------------------------


@pytest.mark.parametrize(
    ("custom_id", "text"),
    [
        ("dd:zz:" + "a" * 32 + ":1", "This button is not one Daydream knows"),
        ("dd:u:not-a-job-id:1", "malformed job id"),
        ("dd:u:" + "a" * 32 + ":9", "a grid has images 1 to 4"),
        ("dd:v:" + "a" * 32 + ":0", "U and V buttons name images 1 to 4"),
    ],
)
async def test_a_forged_custom_id_is_answered_privately(harness: Harness, custom_id: str, text: str) -> None:
    h = harness
    worker_alive(h.store)
    await h.click(custom_id)
    [answer] = h.discord.calls
    assert answer.payload["type"] == 4 and answer.ephemeral
    assert text in answer.content
    assert h.store.dispatch.depth("embedded") == 0


async def test_an_unknown_job_is_answered_privately(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.click(encode(Action.UPSCALE, new_job_id(), 1))
    assert "no longer exists" in ephemeral_followup(h)
    assert h.store.dispatch.depth("embedded") == 0


async def test_an_image_the_parent_does_not_have_is_refused(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h, kind=JobKind.UPSCALE)  # an upscale has one image
    await h.click(encode(Action.UPSCALE, parent.id, 2))
    assert "Image 2 does not exist" in ephemeral_followup(h)
    assert h.store.dispatch.depth("embedded") == 0
    assert h.store.redis.get(keys.child(parent.id, "u", 2)) is None


async def test_missing_channel_permissions_are_named(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    await click(h, parent, Action.VARY, 1, app_permissions=discord.Permissions(view_channel=True, send_messages=True))
    [answer] = h.discord.calls
    assert answer.ephemeral and "**Attach Files**" in answer.content
    assert h.store.dispatch.depth("embedded") == 0


async def test_no_worker_alive_releases_the_claim(harness: Harness) -> None:
    h = harness
    parent = saved_parent(h)
    await click(h, parent, Action.UPSCALE, 4)
    assert "No image worker is running" in ephemeral_followup(h)
    assert h.store.redis.get(keys.child(parent.id, "u", 4)) is None
    h.discord.calls.clear()

    worker_alive(h.store)
    await click(h, parent, Action.UPSCALE, 4)
    assert only_child(h).index == 4


async def test_queue_full_takes_the_waiting_line_down(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    limit = h.bot.settings.max_queued_per_user
    for _ in range(limit):
        await click(h, parent, Action.VARY, 1)
    h.discord.calls.clear()

    await click(h, parent, Action.UPSCALE, 1)
    public = [c for c in h.discord.followups if not c.ephemeral]
    private = [c for c in h.discord.followups if c.ephemeral]
    assert len(public) == 1 and len(private) == 1
    assert f"Queue full: you already have {limit} jobs waiting" in private[0].content
    [deleted] = h.discord.find("DELETE", "/messages/{message_id}")
    assert deleted.url.endswith(f"/messages/{public[0].message_id}")
    assert h.store.dispatch.depth("embedded") == limit
    assert h.store.redis.get(keys.child(parent.id, "u", 1)) is None


@pytest.fixture
async def requester_only(settings: Settings) -> AsyncIterator[Harness]:
    restricted = replace(settings, clicks_by_requester_only=True, admin_user_ids=frozenset({ADMIN_ID}))
    async for h in start_bot(restricted):
        yield h


async def test_requester_only_refuses_others(requester_only: Harness) -> None:
    h = requester_only
    worker_alive(h.store)
    parent = saved_parent(h, user_id=USER_ID)
    await click(h, parent, Action.VARY, 2, user_id=OTHER_USER_ID)
    text = ephemeral_followup(h)
    assert "only the person who asked for these images" in text and f"<@{USER_ID}>" in text
    assert h.discord.followups[0].payload["allowed_mentions"] == {"parse": []}  # named, not pinged
    assert h.store.dispatch.depth("embedded") == 0


@pytest.mark.parametrize(
    ("clicker", "member_permissions"),
    [
        (USER_ID, None),  # the requester
        (ADMIN_ID, None),  # a Daydream admin (DAYDREAM_ADMIN_IDS)
        (OTHER_USER_ID, discord.Permissions(administrator=True)),  # a server administrator
        (OTHER_USER_ID, discord.Permissions(manage_guild=True)),  # a member with Manage Server
    ],
)
async def test_requester_only_lets_the_requester_and_admins_click(
    requester_only: Harness, clicker: int, member_permissions: discord.Permissions | None
) -> None:
    h = requester_only
    worker_alive(h.store)
    parent = saved_parent(h, user_id=USER_ID)
    await click(h, parent, Action.VARY, 2, user_id=clicker, member_permissions=member_permissions)
    assert only_child(h).user_id == clicker


async def test_claims_are_short_lived_until_queued(harness: Harness) -> None:
    """A click that died between claiming and queueing blocks its button only briefly."""
    h = harness
    worker_alive(h.store)
    parent = saved_parent(h)
    claim = keys.child(parent.id, "u", 2)
    h.store.redis.set(claim, new_job_id(), ex=CLAIM_TTL_S)  # claimed, never queued
    await click(h, parent, Action.UPSCALE, 2)
    assert ephemeral_followup(h) == "Image #2 is already being upscaled; it will appear in this channel shortly."
    assert h.store.dispatch.depth("embedded") == 0

    h.store.redis.expire(claim, RECORD_TTL_S)  # an old claim whose record has expired
    h.discord.calls.clear()
    await click(h, parent, Action.UPSCALE, 2)
    assert only_child(h).index == 2
