"""Issue 19 end to end: the real `daydream bot` and `daydream worker` processes and a
real redis-server, driven through the Discord stand-in as a member does it — the
buttons under an upscale (Zoom Out, Pan), Vary (Region)'s select and modal, Custom
Zoom's modal, and files given to /describe, /blend and /imagine — judged by what the
stand-in recorded. The stand-in refuses what Discord refuses: a bad modal or select
from the bot, and (as Discord's client) a member's file over the upload limit."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import pytest
import pytest_asyncio

from shared import keys
from shared.custom_id import Action, encode
from shared.job import JobKind, JobRecord, JobState
from worker.embedded import scenes

from .scenario_helpers import (
    GRID_LABELS,
    MAKE_SQUARE,
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
    private_answer,
    redis_until,
)
from .standin import Message, Upload

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

TEXT = "a red star on a blue background"
PROMPT = f"{TEXT} --ar 3:2 --steps 2"
SELECT = 3


@dataclass(frozen=True)
class Upscaled:
    message: Message
    job_id: str
    record: JobRecord


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upscaled(daydream: Deployment) -> Upscaled:
    await daydream.ensure_running()
    grid = await command_result(daydream, await imagine(daydream, PROMPT))
    message = await click_result(daydream, await daydream.standin.click(grid.id, f"dd:u:{job_of(grid)}:1"))
    job_id = job_of(message)
    return Upscaled(message, job_id, await finished(daydream, job_id))


def png_of(scene: scenes.Scene, size: int = 128) -> bytes:
    buf = io.BytesIO()
    scenes.render(scene, size).save(buf, format="PNG")
    return buf.getvalue()


async def test_zoom_out_and_pan_make_new_grids_under_their_titles(deployment: Deployment, upscaled: Upscaled) -> None:
    standin, member = deployment.standin, deployment.standin.member
    assert button_labels(upscaled.message) == [*UPSCALE_LABELS, MAKE_SQUARE]
    up = upscaled.record
    zoom = await standin.click(upscaled.message.id, encode(Action.ZOOM_2, upscaled.job_id, 0))
    pan = await standin.click(upscaled.message.id, encode(Action.PAN_LEFT, upscaled.job_id, 0))
    zoomed, panned = await asyncio.gather(click_result(deployment, zoom), click_result(deployment, pan))
    assert zoomed.content == f"**{TEXT}** - Zoom Out by <@{member.id}> (fast)"
    assert panned.content == f"**{TEXT}** - Pan Left by <@{member.id}> (fast)"
    for message, (w, h) in ((zoomed, (up.width, up.height)), (panned, (up.width * 3 // 2, up.height))):
        assert image_size(message) == (2 * w, 2 * h), message.content  # a 2×2 grid of the new canvas
        assert message.custom_ids == grid_ids(job_of(message)) and button_labels(message) == GRID_LABELS


async def test_vary_region_goes_through_the_select_and_the_modal(deployment: Deployment, upscaled: Upscaled) -> None:
    standin, member = deployment.standin, deployment.standin.member
    click = await standin.click(upscaled.message.id, encode(Action.VARY_REGION, upscaled.job_id, 0))
    picker = await private_answer(deployment, click)
    assert picker.ephemeral and [a.filename for a in picker.attachments] == ["daydream_cells.png"]
    [[select]] = [row["components"] for row in picker.components]
    assert select["type"] == SELECT and len(select["options"]) == 16
    chosen = await standin.click(picker.id, select["custom_id"], values=["1", "2", "5", "6"])
    await deployment.bot.until(standin.wait_for(lambda: chosen.modal, 20), "the prompt modal")
    assert chosen.modal["title"] == "Vary (Region)"
    submitted = await standin.submit_modal(chosen, ["a green circle"])
    result = await click_result(deployment, submitted)
    record = await finished(deployment, job_of(result))
    assert result.content == f"**a green circle** - Variations (Region) by <@{member.id}> (fast)"
    assert record.kind == JobKind.REGION and record.edit.cells == (1, 2, 5, 6) and record.state == JobState.DONE
    assert image_size(result) == (2 * upscaled.record.width, 2 * upscaled.record.height)
    with pytest.raises(ValueError, match="not among the select's options"):
        await standin.click(picker.id, select["custom_id"], values=["17"])  # Discord's client offers 1–16


async def test_custom_zoom_takes_its_modal_and_refuses_a_bad_factor(deployment: Deployment, upscaled: Upscaled) -> None:
    standin = deployment.standin
    bad = await standin.click(upscaled.message.id, encode(Action.ZOOM_CUSTOM, upscaled.job_id, 0))
    await deployment.bot.until(standin.wait_for(lambda: bad.modal, 20), "the zoom modal")
    refused = await standin.submit_modal(bad, ["3", ""])
    answer = await private_answer(deployment, refused)
    assert "from 1 to 2" in answer.content
    good = await standin.click(upscaled.message.id, encode(Action.ZOOM_CUSTOM, upscaled.job_id, 0))
    await deployment.bot.until(standin.wait_for(lambda: good.modal, 20), "the zoom modal")
    result = await click_result(deployment, await standin.submit_modal(good, ["1.5", "--ar 1:1"]))
    record = await finished(deployment, job_of(result))
    assert record.kind == JobKind.ZOOM and record.edit.factor == 1.5 and record.width == record.height


async def test_describe_blend_and_an_image_prompt_take_attachments(deployment: Deployment) -> None:
    await deployment.ensure_running()
    standin, member = deployment.standin, deployment.standin.member
    star = scenes.Scene("blue", (scenes.SceneObject("red", "star", "centre", "large"),))
    square = scenes.Scene("white", (scenes.SceneObject("green", "square", "centre", "medium"),))
    described = await standin.slash_command("describe", {"image": Upload("star.png", png_of(star))})
    blended = await standin.slash_command(
        "blend", {"image1": Upload("a.png", png_of(star)), "image2": Upload("b.png", png_of(square))}
    )
    prompted = await imagine(deployment, f"{TEXT} --steps 2 --iw 2")  # refused: --iw, no image
    answer = await private_answer(deployment, prompted)
    assert "`--iw` weighs image prompts" in answer.content
    with_image = await standin.slash_command(
        "imagine", {"prompt": f"{TEXT} --steps 2 --iw 2", "image": Upload("sq.png", png_of(square))}
    )
    description, blend, image_prompt = await asyncio.gather(
        command_result(deployment, described),
        command_result(deployment, blended),
        command_result(deployment, with_image),
    )
    # /describe: the image, four numbered prompts naming what is in it, buttons 1–4 and 🔄.
    assert description.content.startswith(f"1\N{COMBINING ENCLOSING KEYCAP} {scenes.plain_caption(star)}")
    assert description.content.endswith(f"— described for <@{member.id}>")
    assert button_labels(description) == [["1", "2", "3", "4", GRID_LABELS[1][-1]]]
    assert blend.content == f"**/blend** (2 images) - <@{member.id}> (fast)"
    record = await finished(deployment, job_of(image_prompt))
    assert record.params.image_weight == 2 and len(record.inputs) == 1
    # Button 1 under /describe queues an /imagine of its prompt (its waiting line, with ❌, is enough here).
    pick = await standin.click(description.id, f"dd:dp:{job_of(description)}:1")
    line = await deployment.bot.until(
        standin.wait_for(lambda: next(map(standin.message, pick.followup_ids), None), 20), "the waiting line"
    )
    picked = job_of(line)  # the line is shown before its job is queued: wait for the job

    async def stored(client):
        return True if await client.exists(keys.job(picked)) else None

    await redis_until(deployment, keys.job(picked), stored, "the picked prompt's job to be queued")
    queued = await asyncio.to_thread(deployment.store.get, picked)
    assert queued.kind == JobKind.IMAGINE and queued.prompt == scenes.plain_caption(star)
    assert line.content.startswith(f"**{scenes.plain_caption(star)}** - <@{member.id}>")
    await standin.click(line.id, line.custom_ids[0])  # ❌: no need to draw it


async def test_bad_files_and_links_are_refused_privately(deployment: Deployment) -> None:
    await deployment.ensure_running()
    standin = deployment.standin
    not_image = await standin.slash_command("describe", {"image": Upload("notes.png", b"these are notes")})
    elsewhere = await imagine(deployment, "https://example.com/cat.png a red star")
    answers = await asyncio.gather(private_answer(deployment, not_image), private_answer(deployment, elsewhere))
    assert "not an image Daydream reads" in answers[0].content
    assert "fetches images only from Discord" in answers[1].content
    with pytest.raises(ValueError, match="refuses files this large"):  # Discord's client: over the upload limit
        await standin.slash_command("describe", {"image": Upload("huge.png", b"\0" * (11 * 1024 * 1024))})
