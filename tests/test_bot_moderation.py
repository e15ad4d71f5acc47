"""Moderation through discord.py's real dispatch, against the real Redis: a blocked
/imagine is answered privately with Appeal and logged; the appeal reaches the mod
log with Allow / Uphold; Allow queues the held job; bans and cooldowns refuse;
/admin filter edits the server's list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest

from shared.custom_id import Action, encode
from shared.job import JobState
from shared.settings import Settings
from tests.support.discord_api import (
    GUILD_ID,
    USER_ID,
    Harness,
    RecordingRest,
    interaction_payload,
    start_bot,
    worker_alive,
)

ADMIN_ID = 700000000000000099
MODLOG = 700000000000000077


class ModHarness:
    def __init__(self, h: Harness, rest: RecordingRest) -> None:
        self.h, self.rest, self.store = h, rest, h.store

    def modlog_posts(self) -> list:
        return [c for c in self.rest.find("POST", "/channels/{channel_id}/messages") if str(MODLOG) in c.url]


@pytest.fixture
async def mh(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModHarness]:
    settings = Settings(redis_url=settings.redis_url, discord_token="t", admin_user_ids=frozenset({ADMIN_ID}))
    async for h in start_bot(settings):
        rest = RecordingRest()
        monkeypatch.setattr(h.bot.http, "request", rest.request)
        h.store.moderation.set_modlog(GUILD_ID, MODLOG)
        worker_alive(h.store)
        yield ModHarness(h, rest)


def custom_ids(call) -> list[str]:
    return [b["custom_id"] for row in call.payload.get("components", []) for b in row["components"]]


async def blocked_case(mh: ModHarness, prompt: str = "a n.u.d.e statue") -> str:
    await mh.h.imagine(prompt)
    [followup] = mh.h.discord.followups
    [appeal] = custom_ids(followup)
    assert appeal.startswith("dd:ap:")
    return appeal.split(":")[2]


async def test_a_blocked_prompt_is_answered_privately_with_appeal_and_logged(mh: ModHarness) -> None:
    job_id = await blocked_case(mh)
    [followup] = mh.h.discord.followups
    assert followup.ephemeral and "`nude`" in followup.content and "word filter" in followup.content
    assert mh.store.dispatch.depth("embedded") == 0 and mh.store.find(job_id) is None  # nothing queued
    [log] = mh.modlog_posts()
    assert "Blocked prompt" in log.payload["content"] and job_id in log.payload["content"]
    assert f"<@{USER_ID}>" in log.payload["content"]


async def test_appeal_then_allow_queues_the_held_job(mh: ModHarness) -> None:
    job_id = await blocked_case(mh)
    await mh.h.click(encode(Action.APPEAL, job_id, 0))
    assert any("appeal was sent" in t for t in mh.h.discord.ephemeral_texts())
    case_post = mh.modlog_posts()[-1]
    assert "Appeal" in case_post.payload["content"]
    assert custom_ids(case_post) == [encode(Action.ALLOW, job_id, 0), encode(Action.UPHOLD, job_id, 0)]

    await mh.h.click(encode(Action.ALLOW, job_id, 0), user_id=USER_ID)  # not a moderator
    assert mh.store.find(job_id) is None
    assert any("Only Daydream's admins" in t for t in mh.h.discord.ephemeral_texts())

    await mh.h.click(encode(Action.ALLOW, job_id, 0), user_id=ADMIN_ID)
    job = mh.store.get(job_id)
    assert job.state == JobState.QUEUED and job.prompt == "a n.u.d.e statue"
    assert job.reply.interaction_token is None and job.reply.channel_id is not None  # posted in the channel
    assert job.created_at > mh.store.moderation.case(job_id).job.created_at  # its wait starts at the Allow
    edit = mh.h.discord.find("PATCH", "/messages/@original")[-1]
    assert f"Allowed by <@{ADMIN_ID}>" in edit.content and edit.payload["components"] == []
    await mh.h.click(encode(Action.ALLOW, job_id, 0), user_id=ADMIN_ID)  # a second Allow: nothing more
    assert mh.store.dispatch.depth("embedded") == 1
    assert any("already allowed" in t for t in mh.h.discord.ephemeral_texts())


async def test_uphold_keeps_the_block(mh: ModHarness) -> None:
    job_id = await blocked_case(mh)
    await mh.h.click(encode(Action.APPEAL, job_id, 0))
    await mh.h.click(encode(Action.UPHOLD, job_id, 0), user_id=ADMIN_ID)
    assert mh.store.find(job_id) is None and mh.store.moderation.case(job_id).state == "upheld"
    await mh.h.click(encode(Action.APPEAL, job_id, 0))
    assert any("already upheld" in t for t in mh.h.discord.ephemeral_texts())


async def test_only_the_blocked_member_can_appeal(mh: ModHarness) -> None:
    job_id = await blocked_case(mh)
    await mh.h.click(encode(Action.APPEAL, job_id, 0), user_id=USER_ID + 1)
    assert any("Only the member whose prompt" in t for t in mh.h.discord.ephemeral_texts())
    assert mh.store.moderation.case(job_id).state == "blocked"


async def test_a_banned_member_is_told_once_then_briefly(mh: ModHarness) -> None:
    mh.store.moderation.ban(GUILD_ID, USER_ID, "spamming", by="a mod")
    await mh.h.imagine("a red circle")
    await mh.h.imagine("a red circle")
    first, second = mh.h.discord.followups
    assert "spamming" in first.content and "banned" in first.content
    assert "spamming" not in second.content and "banned" in second.content
    assert mh.store.dispatch.depth("embedded") == 0


async def test_admin_filter_add_blocks_the_word_in_this_server(mh: ModHarness) -> None:
    options = [{"name": "filter", "type": 2, "options": [{"name": "add", "type": 1,
               "options": [{"name": "rule", "type": 3, "value": "dragon*"}]}]}]  # fmt: skip
    data = {"id": "1", "name": "admin", "type": 1, "options": options}
    perms = discord.Permissions(manage_guild=True)
    await mh.h.deliver(interaction_payload(2, data, user_id=ADMIN_ID, member_permissions=perms))
    assert any("`dragon*`" in t for t in mh.h.discord.ephemeral_texts())
    assert mh.store.moderation.rules(GUILD_ID)["server"] == ["dragon*"]
    await mh.h.imagine("two dragons")
    assert "`dragons` (rule `dragon*`)" in mh.h.discord.followups[-1].content
