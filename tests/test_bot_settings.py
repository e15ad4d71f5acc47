"""/settings, /prefer, /info and /show through discord.py's real dispatch,
against the real redis-server: the panel's selects and buttons save the
setting and redraw it, macros and the suffix reach the next /imagine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from shared import messages
from shared.job import JobState
from shared.settings import Settings
from tests.support.discord_api import (
    CHANNEL_ID,
    USER_ID,
    Harness,
    interaction_payload,
    message_payload,
    start_bot,
    worker_alive,
)
from tests.support.jobs import make_job


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


async def option_command(h: Harness, sub: str, **options: str) -> None:
    """/prefer option <sub> name:… value:… (a subcommand of a subgroup)."""
    opts = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    data = {
        "id": "1",
        "name": "prefer",
        "type": 1,
        "options": [{"name": "option", "type": 2, "options": [{"name": sub, "type": 1, "options": opts}]}],
    }
    await h.deliver(interaction_payload(2, data))


async def pick(h: Harness, components: list[dict[str, Any]], custom_id: str, value: str | None = None) -> None:
    """A choice in the panel (a select's value, or a button's click) on the message that shows it."""
    message = message_payload(99, "panel", components)
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": 3 if value is not None else 2}
    if value is not None:
        data["values"] = [value]
    await h.deliver(interaction_payload(3, data, message=message))


async def test_the_settings_panel_saves_each_choice_and_redraws(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.command("settings")
    [answer] = h.discord.answers
    assert answer.ephemeral and "Your Daydream settings" in answer.content
    components = answer.payload["data"]["components"]
    ids = [c["custom_id"] for row in components for c in row["components"]]
    assert ids == ["dds:model", "dds:stylize", "dds:quality", "dds:lane", "dds:remix", "dds:raw"]
    assert len(components) <= 5 and all(len(row["components"]) <= 5 for row in components)

    await pick(h, components, "dds:stylize", "250")
    await pick(h, components, "dds:quality", "2")
    await pick(h, components, "dds:model", "embedded")
    await pick(h, components, "dds:lane", "relax")
    await pick(h, components, "dds:remix")
    prefs = h.store.preferences.user(USER_ID)
    assert (prefs.stylize, prefs.quality, prefs.model, prefs.remix) == (250, 2.0, "embedded", True)
    assert h.store.policy.default_lane(USER_ID) == "relax"
    redraw = h.discord.answers[-1]
    assert redraw.payload["type"] == 7  # the panel itself, updated
    assert "Stylize: 250" in redraw.content and "Remix mode: on" in redraw.content

    await pick(h, components, "dds:lane", "turbo")  # not granted: said privately, nothing changes
    assert "turbo lane is for members an admin granted it to" in h.discord.answers[-1].content
    assert h.store.policy.default_lane(USER_ID) == "relax"

    await h.imagine("a lighthouse")
    job = h.store.recent(1)[0]
    assert (job.params.stylize, job.params.quality, job.lane) == (250, 2.0, "relax")


async def test_prefer_suffix_and_options(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.command("prefer", {"text": "at dusk --ar 3:2"}, sub="suffix")
    assert "Your suffix is now `at dusk --ar 3:2`" in h.discord.answers[-1].content
    await option_command(h, "set", name="poster", value="--ar 2:3 --s 250")
    assert "`--poster` now stands for `--ar 2:3 --s 250`" in h.discord.answers[-1].content
    await option_command(h, "set", name="bad", value="--sede 2")
    assert "Did you mean `--seed`?" in h.discord.answers[-1].content
    await option_command(h, "list")
    assert "`--poster` → `--ar 2:3 --s 250`" in h.discord.answers[-1].content

    await h.imagine("a lighthouse --poster")
    job = h.store.recent(1)[0]
    assert (job.prompt, job.params.aspect, job.params.stylize) == ("a lighthouse at dusk", "2:3", 250)

    await option_command(h, "delete", name="poster")
    assert "Deleted `--poster`" in h.discord.answers[-1].content
    await h.imagine("a lighthouse --poster")
    assert "Unknown parameter `--poster`" in h.discord.answers[-1].content


async def test_info_lists_jobs_settings_and_usage(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    h.store.preferences.set(USER_ID, "stylize", "500")
    await h.imagine("a red lighthouse --relax")
    await h.command("info")
    text = h.discord.answers[-1].content
    assert "a red lighthouse" in text and "#1 in queue" in text and "relaxed" in text
    assert "Stylize: 500" in text and "GPU time today" in text


async def test_show_reposts_a_result_with_its_buttons_for_its_requester(harness: Harness) -> None:
    h = harness
    job = make_job(user=USER_ID, images=4, state=JobState.DONE)
    h.store.save(job)
    h.store.images.put(job.id, [b"png"] * 4, _tiny_png())
    await h.command("show", {"job_id": job.id}, user_id=USER_ID + 1)
    assert "Only the person who asked for that job" in h.discord.answers[-1].content
    await h.command("show", {"job_id": job.id})
    shown = h.discord.answers[-1]
    assert not shown.ephemeral and "a red circle" in shown.content
    ids = [c["custom_id"] for row in shown.payload["data"]["components"] for c in row["components"]]
    assert ids[0] == f"dd:u:{job.id}:1" and ids[-1] == f"dd:r:{job.id}:0"


def _tiny_png() -> bytes:
    from PIL import Image

    from shared.grid import encode_png

    return encode_png(Image.new("RGB", (8, 8), (200, 10, 10)))


ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True, view_channel=True, send_messages=True)


async def test_admin_defaults_apply_to_the_channel_and_are_for_admins(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.command("admin", {"defaults": "--s 50 --ar 3:2", "max_repeat": 2}, sub="defaults")
    assert h.discord.followups[-1].content == messages.NOT_AN_ADMIN
    assert h.store.preferences.channel(CHANNEL_ID).defaults == ""
    await h.command(
        "admin", {"defaults": "--s 50 --ar 3:2", "max_repeat": 2}, sub="defaults", member_permissions=ADMIN_PERMISSIONS
    )
    assert "Defaults here: `--s 50 --ar 3:2`" in h.discord.followups[-1].content
    await h.imagine("a lighthouse --repeat 2")
    job = h.store.recent(1)[0]
    assert (job.params.stylize, job.params.aspect) == (50, "3:2")
    await h.imagine("a lighthouse --repeat 3")
    assert "this server allows --repeat up to 2 (an admin limit)" in h.discord.answers[-1].content
