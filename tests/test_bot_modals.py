"""Modals survive a bot restart (bot/modals.py): Remix, Vary (Region) and Custom
Zoom are opened by one bot process and submitted to a fresh one, which knows
nothing of them but their custom_id — as after a restart between a member's
click and their Submit. Through discord.py's real dispatch and real Redis."""

from __future__ import annotations

from typing import Any

from shared.custom_id import Action, encode
from shared.job import JobKind
from shared.settings import Settings
from tests import test_bot_edits as edits_t
from tests import test_bot_remix as remix_t
from tests.support.discord_api import USER_ID, interaction_payload, message_payload, start_bot, worker_alive


async def opened_by_one_bot(settings: Settings, open_it) -> tuple[dict[str, Any], Any]:
    """Run `open_it(harness)` in a bot that then shuts down; the modal it answered with."""
    async for h in start_bot(settings):
        worker_alive(h.store)
        parent = await open_it(h)
        modal = edits_t.last_answer(h)
        assert modal["type"] == edits_t.MODAL
        # discord.py keeps none of Daydream's modals: the submit is routed by custom_id alone.
        assert h.bot._connection._view_store._modals == {}
        return modal["data"], parent
    raise AssertionError("the bot did not start")


async def test_a_remix_opened_before_a_restart_is_queued_after_it(settings: Settings) -> None:
    async def open_it(h):
        parent = remix_t.parent_of(h)
        h.store.preferences.set(USER_ID, "remix", "on")
        await h.click(encode(Action.VARY, parent.id, 3))
        return parent

    modal, parent = await opened_by_one_bot(settings, open_it)
    async for h in start_bot(settings):
        worker_alive(h.store)
        await edits_t.submit_modal(h, modal, ["a green star on a white background --ar 1:1"])
        [child] = remix_t.children(h, parent)
        assert (child.kind, child.index, child.prompt, child.params.aspect) == (
            JobKind.VARIATION,
            3,
            "a green star on a white background",
            "1:1",
        )
        assert child.remix == "strong"


async def test_a_region_prompt_and_a_custom_zoom_opened_before_a_restart_are_queued_after_it(
    settings: Settings,
) -> None:
    async def open_region(h):
        parent = edits_t.upscaled(h)
        select = encode(Action.REGION_SELECT, parent.id, 0)
        data = {"custom_id": select, "component_type": edits_t.SELECT, "values": ["1", "2", "5"]}
        rows = [{"type": 1, "components": [{**data, "type": edits_t.SELECT, "options": []}]}]
        await h.deliver(interaction_payload(3, data, message=message_payload(1, "picker", rows)))
        return parent

    async def open_zoom(h):
        parent = edits_t.upscaled(h)
        await edits_t.click(h, parent, Action.ZOOM_CUSTOM)
        return parent

    region, _ = await opened_by_one_bot(settings, open_region)
    zoom, _ = await opened_by_one_bot(settings, open_zoom)
    async for h in start_bot(settings):
        worker_alive(h.store)
        await edits_t.submit_modal(h, region, ["a green circle"])
        await edits_t.submit_modal(h, zoom, ["1.25", "--ar 3:2"])
        region_job, zoom_job = edits_t.queued(h)
        assert region_job.kind == JobKind.REGION and region_job.edit.cells == (1, 2, 5)
        assert region_job.prompt == "a green circle"
        assert zoom_job.kind == JobKind.ZOOM and zoom_job.edit.factor == 1.25 and zoom_job.edit.aspect == "3:2"


async def test_a_forged_modal_submit_is_answered_privately(settings: Settings) -> None:
    async for h in start_bot(settings):
        worker_alive(h.store)
        data = {"custom_id": "ddm:v:nothex:2", "components": []}
        await h.deliver(interaction_payload(edits_t.MODAL_SUBMIT, data))
        assert any("malformed job id" in t for t in h.discord.ephemeral_texts())
        # A region modal whose cells were tampered with names the cells it accepts.
        job = "0" * 32
        data = {"custom_id": f"ddm:rs:{job}:0:1.99", "components": []}
        await h.deliver(interaction_payload(edits_t.MODAL_SUBMIT, data))
        assert any("is not a cell" in t for t in h.discord.ephemeral_texts())
