"""Personal settings through the Discord stand-in, with the real bot and a real
worker: the /settings panel (its components pass the stand-in's checks of what
Discord accepts) saves a click and redraws itself; /prefer option macros reach
the next /imagine; /info lists the job; with Remix on, V1 answers with a modal, which still works after a bot restart."""

from __future__ import annotations

import pytest

from tests.e2e.scenario_helpers import (
    ANSWER_WAIT_S,
    Deployment,
    click_result,
    command_result,
    finished,
    imagine,
    job_of,
    private_answer,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.timeout(240)]

MODAL = 9


async def test_settings_prefer_info_and_remix(deployment: Deployment) -> None:
    standin, store = deployment.standin, deployment.store
    member = standin.member

    # /settings: a private panel; the Remix button turns Remix on and the panel says so.
    it = await standin.slash_command("settings")
    panel = await private_answer(deployment, it)
    assert panel.custom_ids == ["dds:model", "dds:stylize", "dds:quality", "dds:lane", "dds:remix", "dds:raw"]
    await standin.click(panel.id, "dds:remix")
    await deployment.bot.until(standin.wait_for(lambda: "Remix mode: on" in panel.content, ANSWER_WAIT_S), "redraw")
    assert store.preferences.user(member.id).remix

    # /prefer option set: --tiny stands for flags, and the next prompt uses them.
    it = await standin.slash_command("prefer option set", {"name": "tiny", "value": "--steps 3 --ar 2:1"})
    assert "`--tiny` now stands for `--steps 3 --ar 2:1`" in (await private_answer(deployment, it)).content
    job = await imagine(deployment, "a red circle on a blue background --tiny")
    result = await command_result(deployment, job)
    record = await finished(deployment, job_of(result))
    assert (record.params.steps, record.params.aspect, record.width, record.height) == (3, "2:1", 96, 48)

    # /info: the settings and today's usage.
    it = await standin.slash_command("info")
    info = (await private_answer(deployment, it)).content
    assert "Remix mode: on" in info and "GPU time today" in info

    # Remix on: V1 answers with a modal holding the prompt (nothing queued until it is sent).
    click = await standin.click(result.id, f"dd:v:{record.id}:1")
    await deployment.bot.until(standin.wait_for(lambda: click.callbacks, ANSWER_WAIT_S), "the modal")
    [callback] = click.callbacks
    assert callback.accepted and callback.type == MODAL
    [row] = callback.data["components"]
    assert row["components"][0]["value"].startswith("a red circle on a blue background --ar 2:1 --steps 3")

    # The bot restarts before the member presses Submit: the modal still works (bot/modals.py).
    await deployment.bot.kill()
    await deployment.bot.start(standin)
    submitted = await standin.submit_modal(click, ["a blue circle on a red background --ar 2:1 --steps 3"])
    remixed = await click_result(deployment, submitted)
    assert remixed.content.startswith(f"**a blue circle on a red background** - Remix (Strong) by <@{member.id}>")
    child = await finished(deployment, job_of(remixed))
    assert child.parent_id == record.id and child.remix == "strong"
