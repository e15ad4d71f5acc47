"""The fair queue as members and admins meet it in Discord: /fast /relax
/turbo, /cancel and ❌, a Queue full answer with a ❌ per job, and the /admin
commands (each refused to members who are not admins), through real
discord.py interactions against the real redis-server."""

from __future__ import annotations

import discord

from shared import messages
from shared.components import cancel_components
from shared.custom_id import Action, encode
from shared.job import JobState
from tests.support.discord_api import OTHER_USER_ID, USER_ID, Harness, worker_alive
from tests.support.jobs import make_job

ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True, view_channel=True, send_messages=True)


def private_texts(h: Harness) -> list[str]:
    return h.discord.ephemeral_texts()


async def test_fast_relax_turbo_set_the_default_lane(harness: Harness) -> None:
    h = harness
    await h.command("relax")
    assert h.store.policy.default_lane(USER_ID) == "relax"
    assert "relaxed lane" in private_texts(h)[-1]
    await h.command("turbo")
    assert "granted" in private_texts(h)[-1] and h.store.policy.default_lane(USER_ID) == "relax"
    h.store.policy.set_grant("turbo", user_id=USER_ID)
    await h.command("turbo")
    assert h.store.policy.default_lane(USER_ID) == "turbo"
    worker_alive(h.store)
    await h.imagine("a fast boat")
    [job] = h.store.jobs_of(USER_ID)
    assert job.lane == "turbo"


async def test_cancel_takes_the_latest_job_and_only_ones_own(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.command("cancel")
    assert private_texts(h)[-1] == messages.NOTHING_TO_CANCEL
    first = h.store.submit(make_job(user=USER_ID, prompt="first"))
    latest = h.store.submit(make_job(user=USER_ID, prompt="latest"))
    await h.command("cancel")
    assert h.store.get(latest.id).state == JobState.CANCELLED and h.store.get(first.id).state == JobState.QUEUED
    assert "Cancelled **latest**" in private_texts(h)[-1]
    await h.command("cancel", {"job": first.id}, user_id=OTHER_USER_ID)
    assert "Only the person who asked" in private_texts(h)[-1] and h.store.get(first.id).state == JobState.QUEUED


async def test_the_cross_under_a_waiting_line_cancels_for_its_requester(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    job = h.store.submit(make_job(user=USER_ID, prompt="waiting"))
    await h.click(encode(Action.CANCEL, job.id, 0), cancel_components(job.id), user_id=OTHER_USER_ID)
    assert "Only the person who asked" in private_texts(h)[-1] and h.store.get(job.id).state == JobState.QUEUED
    await h.click(encode(Action.CANCEL, job.id, 0), cancel_components(job.id))
    assert h.store.get(job.id).state == JobState.CANCELLED
    [edit] = [c for c in h.discord.calls if c.method == "PATCH"]
    assert "cancelled by" in edit.content and edit.payload.get("components") == []


async def test_queue_full_lists_the_users_jobs_each_with_a_cross(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    limit = h.bot.settings.max_queued_per_user
    mine = [h.store.submit(make_job(user=USER_ID, prompt=f"job {n}")) for n in range(limit)]
    await h.imagine("one more")
    [answer] = [c for c in h.discord.followups if c.ephemeral]
    assert answer.content.startswith("Queue full")
    ids = [b["custom_id"] for row in answer.payload["components"] for b in row["components"]]
    assert ids == [encode(Action.CANCEL, j.id, 0) for j in mine]
    assert all(len(row["components"]) <= 5 for row in answer.payload["components"])


async def test_admin_commands_are_for_admins_only(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    h.store.submit(make_job(user=USER_ID))
    await h.command("admin", sub="queue")
    assert private_texts(h)[-1] == messages.NOT_AN_ADMIN
    await h.command("admin", sub="pause", user_id=OTHER_USER_ID)
    assert private_texts(h)[-1] == messages.NOT_AN_ADMIN and not h.store.policy.paused()
    await h.command("admin", sub="queue", member_permissions=ADMIN_PERMISSIONS)
    assert private_texts(h)[-1].startswith("Waiting: 1; running: 0")


async def test_admins_pause_resume_cancel_and_see_the_workers(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    job = h.store.submit(make_job(user=OTHER_USER_ID))
    await h.command("admin", {"lane": "relax"}, sub="pause", member_permissions=ADMIN_PERMISSIONS)
    assert h.store.policy.paused() == {"relax"} and "Paused the relaxed lane" in private_texts(h)[-1]
    await h.command("admin", sub="resume", member_permissions=ADMIN_PERMISSIONS)
    assert h.store.policy.paused() == set()
    await h.command("admin", {"job": job.id}, sub="cancel", member_permissions=ADMIN_PERMISSIONS)
    assert h.store.get(job.id).state == JobState.CANCELLED
    await h.command("admin", sub="workers", member_permissions=ADMIN_PERMISSIONS)
    assert "**w1**" in private_texts(h)[-1]
    await h.command("admin", {"running": 2, "waiting": 4}, sub="limits", member_permissions=ADMIN_PERMISSIONS)
    assert private_texts(h)[-1].startswith("Defaults: 3 running, 10 waiting.")
