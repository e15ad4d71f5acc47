"""Moderation end to end, with the real `daydream bot`, a real worker (with the
real image check) and a real redis-server, driven through the Discord stand-in
as members and a moderator would: a blocked prompt is answered privately and
logged; Appeal → Allow runs the job and posts it in the channel; a banned member
is refused; a flagged result is posted with notice tiles and a line saying why;
a channel marked NSFW skips the check; a spoiler channel gets spoilers."""

from __future__ import annotations

import pytest

from shared.custom_id import Action, encode

from .scenario_helpers import (
    ANSWER_WAIT_S,
    Deployment,
    channel_post_of,
    command_result,
    finished,
    imagine,
    job_count,
    job_of,
    private_answer,
)
from .standin import MANAGE_GUILD, Message

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow, pytest.mark.timeout(240)]

QUICK = "--steps 2"
EVERYTHING = 1e-6  # a threshold every image scores above: the check must act on all four


async def modlog_message(deployment: Deployment, channel_id: int, needle: str) -> Message:
    standin = deployment.standin

    def found() -> Message | None:
        return next((m for m in standin.messages(channel_id) if needle in m.content), None)

    return await deployment.bot.until(standin.wait_for(found, ANSWER_WAIT_S), f"a mod log entry with {needle!r}")


async def with_modlog(deployment: Deployment) -> int:
    channel_id = await deployment.standin.add_text_channel("mod-log")
    deployment.store.moderation.set_modlog(deployment.standin.guild_id, channel_id)
    return channel_id


async def test_a_blocked_prompt_is_appealed_allowed_and_posted(deployment: Deployment) -> None:
    standin, store = deployment.standin, deployment.store
    modlog = await with_modlog(deployment)
    moderator = standin.add_member("moderator", permissions=MANAGE_GUILD)
    jobs_before = job_count(store)

    it = await imagine(deployment, f"a n.u.d.e statue {QUICK}")
    answer = await private_answer(deployment, it)
    assert "`nude`" in answer.content and "word filter" in answer.content
    [appeal] = answer.custom_ids
    assert appeal.startswith("dd:ap:") and job_count(store) == jobs_before  # nothing queued
    job_id = appeal.split(":")[2]
    blocked = await modlog_message(deployment, modlog, "Blocked prompt")
    assert job_id in blocked.content and f"<@{standin.member.id}>" in blocked.content

    await standin.click(answer.id, appeal)
    case = await modlog_message(deployment, modlog, "**Appeal**")
    assert case.custom_ids == [encode(Action.ALLOW, job_id, 0), encode(Action.UPHOLD, job_id, 0)]
    since = max(m.id for m in standin.messages(standin.channel_id))
    await standin.click(case.id, encode(Action.ALLOW, job_id, 0), user=moderator)

    posted = await channel_post_of(deployment, "a n.u.d.e statue", standin.member, since)
    assert posted.attachments and job_of(posted) == job_id
    assert (await finished(deployment, job_id)).state == "done"
    await deployment.bot.until(
        standin.wait_for(lambda: "Allowed by" in standin.message(case.id).content, ANSWER_WAIT_S), "the decision"
    )
    assert not standin.message(case.id).custom_ids  # decided: no more buttons


async def test_an_upheld_appeal_is_told_to_the_member_by_dm(deployment: Deployment) -> None:
    standin = deployment.standin
    modlog = await with_modlog(deployment)
    moderator = standin.add_member("moderator-2", permissions=MANAGE_GUILD)
    author = standin.add_member("appellant")
    jobs_before = job_count(deployment.store)
    it = await imagine(deployment, f"a nude figure {QUICK}", user=author)
    answer = await private_answer(deployment, it)
    [appeal] = answer.custom_ids
    job_id = appeal.split(":")[2]
    await standin.click(answer.id, appeal, user=author)

    def appeal_entry() -> Message | None:
        return next((m for m in standin.messages(modlog) if "**Appeal**" in m.content and job_id in m.content), None)

    case = await deployment.bot.until(standin.wait_for(appeal_entry, ANSWER_WAIT_S), "the appeal in the mod log")
    await standin.click(case.id, encode(Action.UPHOLD, job_id, 0), user=moderator)

    def told() -> Message | None:
        return next(iter(standin.dms(author)), None)

    dm = await deployment.bot.until(standin.wait_for(told, ANSWER_WAIT_S), "the member's DM")
    assert "stays blocked" in dm.content and "a nude figure" in dm.content
    assert job_count(deployment.store) == jobs_before  # upheld: nothing was queued


async def test_a_banned_member_is_refused_and_told_once(deployment: Deployment) -> None:
    standin, store = deployment.standin, deployment.store
    banned = standin.add_member("banned")
    store.moderation.ban(standin.guild_id, banned.id, "spamming the channel", by="a moderator")
    jobs_before = job_count(store)
    first = await private_answer(deployment, await imagine(deployment, f"a red circle {QUICK}", user=banned))
    second = await private_answer(deployment, await imagine(deployment, f"a red circle {QUICK}", user=banned))
    assert "banned" in first.content and "spamming the channel" in first.content
    assert "banned" in second.content and "spamming" not in second.content
    assert job_count(store) == jobs_before


async def test_a_flagged_result_gets_notice_tiles_and_an_nsfw_channel_is_not_checked(
    deployment: Deployment,
) -> None:
    standin, store = deployment.standin, deployment.store
    modlog = await with_modlog(deployment)
    store.moderation.set_threshold(standin.guild_id, EVERYTHING)
    try:
        it = await imagine(deployment, f"a white moon over a dark sea {QUICK}")
        result = await command_result(deployment, it)
        assert "4 of 4 images were hidden" in result.content and "age-restricted" in result.content
        flagged = await modlog_message(deployment, modlog, "Flagged images")
        assert job_of(result) in flagged.content
        assert flagged.attachments[0].filename.startswith("SPOILER_")

        # The same prompt in a channel marked NSFW: no check, and the default word list is off there.
        after_dark = await standin.add_text_channel("after-dark", nsfw=True)
        it = await imagine(deployment, f"a nude figure study {QUICK}", channel_id=after_dark)
        result = await command_result(deployment, it)
        assert "hidden" not in result.content and result.attachments
    finally:
        store.moderation.set_threshold(standin.guild_id, None)


async def test_a_spoiler_channel_posts_spoilers(deployment: Deployment) -> None:
    standin, store = deployment.standin, deployment.store
    spoilers = await standin.add_text_channel("spoilers")
    store.moderation.set_channel(standin.guild_id, spoilers, spoiler=True)
    result = await command_result(deployment, await imagine(deployment, f"a red square {QUICK}", channel_id=spoilers))
    [attachment] = result.attachments
    assert attachment.filename.startswith("SPOILER_daydream_")
