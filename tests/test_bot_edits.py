"""The edits under an upscale through real discord.py interactions against the
real Redis: Zoom Out 2x / 1.5x, Pan and Make Square (a click queues the
edit), Vary (Region) (a private picker with the numbered cells and a select,
then a modal for the prompt) and Custom Zoom (a modal), each refusal privately."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from shared import keys
from shared.components import upscale_components
from shared.custom_id import Action, encode
from shared.grid import encode_png
from shared.job import JobKind, JobRecord, JobState, ReplyTarget, new_job_id
from shared.params import Params
from shared.settings import Settings
from tests.support.discord_api import (
    CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    Harness,
    interaction_payload,
    message_payload,
    start_bot,
    worker_alive,
)

MODAL = 9  # the interaction callback that opens a modal
MODAL_SUBMIT = 5  # the interaction type of its submission
SELECT = 3


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        worker_alive(h.store)
        yield h


def upscaled(h: Harness, width: int = 192, height: int = 128, user_id: int = USER_ID) -> JobRecord:
    """A finished upscale as a worker leaves it: its image stored, its buttons posted."""
    record = JobRecord(
        id=new_job_id(),
        kind=JobKind.UPSCALE,
        prompt="a red star on a blue background",
        params=Params(aspect="3:2"),
        seeds=[7],
        user_id=user_id,
        model="embedded",
        state=JobState.DONE,
        images=1,
        width=width,
        height=height,
        index=2,
        reply=ReplyTarget(guild_id=GUILD_ID, channel_id=CHANNEL_ID, message_id=123),
    )
    h.store.save(record)
    h.store.images.put(record.id, [encode_png(Image.new("RGB", (width, height), (30, 40, 200)))], None)
    return record


def queued(h: Harness) -> list[JobRecord]:
    ids = [raw.decode() for raw in h.store.redis.lrange(keys.RECENT, 0, -1)]
    return [h.store.get(i) for i in reversed(ids)]


async def click(h: Harness, parent: JobRecord, action: Action, **kw: Any) -> None:
    rows = upscale_components(parent.id, parent.width, parent.height)
    await h.click(encode(action, parent.id, 0), rows, **kw)


def last_answer(h: Harness) -> dict[str, Any]:
    return h.discord.answers[-1].payload


async def submit_modal(h: Harness, modal: dict[str, Any], values: list[str], user_id: int = USER_ID) -> None:
    """The member fills the modal's text inputs in order and submits it."""
    inputs = [c for row in modal["components"] for c in _inputs(row)]
    rows = [
        {"type": 1, "components": [{"type": 4, "custom_id": i["custom_id"], "value": v}]}
        for i, v in zip(inputs, values, strict=True)
    ]
    data = {"custom_id": modal["custom_id"], "components": rows}
    await h.deliver(interaction_payload(MODAL_SUBMIT, data, user_id=user_id, message=message_payload(1, "picker")))


def _inputs(component: dict[str, Any]) -> list[dict[str, Any]]:
    if component.get("type") == 4:
        return [component]
    children = component.get("components") or ([component["component"]] if "component" in component else [])
    return [i for c in children for i in _inputs(c)]


@pytest.mark.parametrize(
    ("action", "kind", "check"),
    [
        (Action.ZOOM_2, JobKind.ZOOM, lambda e: e.factor == 2.0 and e.aspect is None),
        (Action.ZOOM_15, JobKind.ZOOM, lambda e: e.factor == 1.5),
        (Action.PAN_LEFT, JobKind.PAN, lambda e: e.direction == "left"),
        (Action.PAN_DOWN, JobKind.PAN, lambda e: e.direction == "down"),
        (Action.SQUARE, JobKind.SQUARE, lambda e: True),
    ],
)
async def test_a_click_queues_the_edit_of_the_upscale(harness: Harness, action, kind, check) -> None:
    parent = upscaled(harness)
    await click(harness, parent, action)
    [job] = queued(harness)
    assert job.kind == kind and job.parent_id == parent.id and job.index == 1 and check(job.edit)
    assert job.prompt == parent.prompt and job.seeds != parent.seeds and len(job.seeds) == 4
    assert harness.discord.followups[-1].content.startswith("**a red star")  # the public waiting line


async def test_make_square_of_a_square_image_is_refused_privately(harness: Harness) -> None:
    parent = upscaled(harness, 128, 128)
    await harness.click(encode(Action.SQUARE, parent.id, 0))  # under a square image the button is not shown
    assert queued(harness) == []
    assert any("square already" in t for t in harness.discord.ephemeral_texts())


async def test_vary_region_picks_cells_then_takes_a_prompt(harness: Harness) -> None:
    parent = upscaled(harness)
    # 1. The click: a private picker, the image with its cells numbered, and a select.
    await click(harness, parent, Action.VARY_REGION)
    answer = last_answer(harness)
    assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL
    [row] = answer["data"]["components"]
    [select] = row["components"]
    assert select["type"] == SELECT and select["custom_id"] == encode(Action.REGION_SELECT, parent.id, 0)
    assert [o["value"] for o in select["options"]] == [str(i) for i in range(1, 17)]
    assert select["max_values"] == 15
    assert answer["data"]["attachments"][0]["filename"] == "daydream_cells.png"
    assert queued(harness) == []
    # 2. Cells 1, 2 and 5 picked: a modal asks for a prompt.
    picker = message_payload(555, "picker", answer["data"]["components"])
    data = {"custom_id": select["custom_id"], "component_type": SELECT, "values": ["5", "1", "2"]}
    await harness.deliver(interaction_payload(3, data, message=picker))
    modal = last_answer(harness)
    assert modal["type"] == MODAL and modal["data"]["title"] == "Vary (Region)"
    # 3. Submitted with a new prompt: the region job is queued, public waiting line and all.
    await submit_modal(harness, modal["data"], ["a green circle"])
    [job] = queued(harness)
    assert job.kind == JobKind.REGION and job.edit.cells == (1, 2, 5) and job.prompt == "a green circle"
    assert job.parent_id == parent.id and job.user_id == USER_ID


async def test_vary_region_with_an_empty_prompt_keeps_the_old_one(harness: Harness) -> None:
    parent = upscaled(harness)
    data = {"custom_id": encode(Action.REGION_SELECT, parent.id, 0), "component_type": SELECT, "values": ["16"]}
    picker = message_payload(556, "picker", [{"type": 1, "components": [{**data, "type": SELECT, "options": []}]}])
    await harness.deliver(interaction_payload(3, data, message=picker))
    await submit_modal(harness, last_answer(harness)["data"], [""])
    [job] = queued(harness)
    assert job.edit.cells == (16,) and job.prompt == parent.prompt


async def test_custom_zoom_takes_a_factor_and_an_aspect_ratio(harness: Harness) -> None:
    parent = upscaled(harness)
    await click(harness, parent, Action.ZOOM_CUSTOM)
    modal = last_answer(harness)
    assert modal["type"] == MODAL and modal["data"]["title"] == "Custom Zoom"
    await submit_modal(harness, modal["data"], ["1.25", "--ar 3:2"])
    [job] = queued(harness)
    assert job.kind == JobKind.ZOOM and job.edit.factor == 1.25 and job.edit.aspect == "3:2"


@pytest.mark.parametrize(
    ("values", "text"),
    [(["3", ""], "from 1 to 2"), (["x", ""], "must be a number"), (["2", "5:1"], "is not an aspect")],
)
async def test_custom_zoom_refuses_bad_values_privately(harness: Harness, values, text) -> None:
    parent = upscaled(harness)
    await click(harness, parent, Action.ZOOM_CUSTOM)
    await submit_modal(harness, last_answer(harness)["data"], values)
    assert queued(harness) == []
    answer = last_answer(harness)
    assert answer["type"] == 4 and answer["data"]["flags"] & EPHEMERAL and text in answer["data"]["content"]


async def test_another_member_cannot_open_the_region_picker_when_clicks_are_the_requesters(
    settings: Settings,
) -> None:
    from dataclasses import replace

    async for h in start_bot(replace(settings, clicks_by_requester_only=True)):
        worker_alive(h.store)
        parent = upscaled(h)
        await click(h, parent, Action.VARY_REGION, user_id=OTHER_USER_ID)
        answer = last_answer(h)
        assert answer["data"]["flags"] & EPHEMERAL and "components" not in answer["data"]
        assert queued(h) == []


async def test_an_expired_image_still_gets_a_picker_without_a_preview(harness: Harness) -> None:
    parent = upscaled(harness)
    harness.store.images.forget(parent.id, 1)
    await click(harness, parent, Action.VARY_REGION)
    answer = last_answer(harness)["data"]
    assert "expired" in answer["content"] and answer["components"][0]["components"][0]["type"] == SELECT
    assert not answer.get("attachments")


def test_the_preview_numbers_sixteen_cells() -> None:
    from shared.canvas import cell_preview

    preview = cell_preview(Image.new("RGB", (192, 128), (30, 40, 200)))
    assert max(preview.size) == 512
    # White grid lines and labels were drawn on the flat blue image.
    assert (255, 255, 255) in {preview.getpixel((x, y)) for x in range(0, 512, 3) for y in (0, 1, 170)}
    buf = io.BytesIO()
    preview.save(buf, format="PNG")
    assert buf.tell() > 0
