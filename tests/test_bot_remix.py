"""Remix mode through discord.py's real dispatch: with it on, V and 🔄 answer
with a modal holding the parent's prompt as text; the edit becomes the child's
prompt and its result reads `- Remix (Strong) by @user`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared import keys, messages
from shared.components import grid_components
from shared.custom_id import Action, encode
from shared.job import JobKind, JobRecord, JobState, new_job_id
from shared.params import Params
from shared.settings import Settings
from tests.support.discord_api import USER_ID, Harness, interaction_payload, start_bot, worker_alive

MODAL = 9  # the interaction callback type that opens a modal


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


def parent_of(h: Harness) -> JobRecord:
    record = JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt="a red circle on a blue background",
        params=Params(aspect="3:2", chaos=20),
        seeds=[1, 2, 3, 4],
        user_id=USER_ID,
        model="embedded",
        state=JobState.DONE,
        images=4,
    )
    h.store.save(record)
    return record


def children(h: Harness, parent: JobRecord) -> list[JobRecord]:
    ids = [raw.decode() for raw in h.store.redis.lrange(keys.RECENT, 0, -1)]
    return [j for j in (h.store.get(i) for i in ids) if j.parent_id == parent.id]


async def submit_modal(h: Harness, custom_id: str, input_id: str, value: str) -> None:
    row = {"type": 1, "components": [{"type": 4, "custom_id": input_id, "value": value}]}
    await h.deliver(interaction_payload(5, {"custom_id": custom_id, "components": [row]}))


async def test_remix_opens_the_prompt_to_edit_and_the_edit_is_queued(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = parent_of(h)
    h.store.preferences.set(USER_ID, "remix", "on")
    await h.click(encode(Action.VARY, parent.id, 2), grid_components(parent.id))
    [answer] = h.discord.answers
    assert answer.payload["type"] == MODAL
    modal = answer.payload["data"]
    [text_input] = modal["components"][0]["components"]
    assert text_input["value"] == "a red circle on a blue background --ar 3:2 --chaos 20"
    assert children(h, parent) == []  # nothing queued before the edit

    await submit_modal(h, modal["custom_id"], text_input["custom_id"], "a blue circle on a red background --ar 2:3")
    [child] = children(h, parent)
    assert (child.kind, child.index, child.prompt, child.params.aspect) == (
        JobKind.VARIATION,
        2,
        "a blue circle on a red background",
        "2:3",
    )
    assert child.remix == "strong" and child.params.strength == 0.75 and child.params.chaos is None
    assert "**a blue circle on a red background** - Remix (Strong) by <@" in messages.result(child)


async def test_a_bad_edit_is_answered_privately_and_nothing_is_queued(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = parent_of(h)
    h.store.preferences.set(USER_ID, "remix", "on")
    await h.click(encode(Action.REROLL, parent.id, 0), grid_components(parent.id))
    modal = h.discord.answers[0].payload["data"]
    input_id = modal["components"][0]["components"][0]["custom_id"]
    await submit_modal(h, modal["custom_id"], input_id, "a cat --sede 3")
    assert "Unknown parameter `--sede`. Did you mean `--seed`?" in h.discord.followups[-1].content
    assert h.discord.followups[-1].ephemeral
    assert children(h, parent) == []


async def test_without_remix_a_click_queues_at_once(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    parent = parent_of(h)
    await h.click(encode(Action.VARY, parent.id, 2), grid_components(parent.id))
    assert h.discord.answers[0].payload["type"] != MODAL
    [child] = children(h, parent)
    assert child.remix is None and "Variations by" in messages.result(child)
