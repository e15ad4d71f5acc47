"""/imagine speaks Midjourney's prompt language through discord.py's real dispatch:
`{a, b}` makes one job (and one waiting line) per option, a prompt of more jobs
than the channel's threshold waits for its author's ✅, and the user's
settings apply to what is queued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared import keys
from shared.job import JobRecord
from shared.settings import Settings
from tests.support.discord_api import DEFERRED_THINKING, USER_ID, Harness, start_bot, worker_alive


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


def queued(h: Harness) -> list[JobRecord]:
    ids = [raw.decode() for raw in h.store.redis.lrange(keys.RECENT, 0, -1)]
    return sorted((h.store.get(i) for i in ids), key=lambda j: j.created_at)


async def test_permutations_queue_one_job_and_one_waiting_line_each(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.imagine("a {red, blue} circle --seed 5 --c 20")
    jobs = queued(h)
    assert [j.prompt for j in jobs] == ["a red circle", "a blue circle"]
    assert all(j.params.chaos == 20 and j.seeds == [5, 6, 7, 8] for j in jobs)
    assert h.discord.answers[0].payload["type"] == DEFERRED_THINKING
    [first] = h.discord.find("PATCH", "/messages/@original")
    [second] = h.discord.followups
    assert "a red circle" in first.content and "a blue circle" in second.content
    assert not second.ephemeral  # a public waiting line with its ❌
    assert second.payload["components"][0]["components"][0]["custom_id"] == f"dd:x:{jobs[1].id}:0"


async def test_more_jobs_than_the_threshold_wait_for_the_authors_confirmation(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.imagine("a {red, blue, green} circle --r 2")
    assert queued(h) == []
    [ask] = h.discord.answers
    assert ask.ephemeral and "makes **6 jobs**" in ask.content
    button = ask.payload["data"]["components"][0]["components"][0]
    assert button["custom_id"].startswith("ddc:")

    await h.click(button["custom_id"], user_id=USER_ID + 1)  # someone else
    assert "Only the person who wrote that prompt" in h.discord.calls[-1].content
    assert queued(h) == []

    await h.click(button["custom_id"])
    assert [j.prompt for j in queued(h)] == ["a red circle"] * 2 + ["a blue circle"] * 2 + ["a green circle"] * 2
    await h.click(button["custom_id"])  # a second click queues nothing more
    assert len(queued(h)) == 6
    assert "no longer waiting" in h.discord.calls[-1].content


async def test_the_users_settings_and_suffix_apply(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    h.store.preferences.set(USER_ID, "stylize", "300")
    h.store.preferences.set_suffix(USER_ID, "at dusk --ar 3:2")
    h.store.preferences.set_option(USER_ID, "wide", "--ar 16:9")
    await h.imagine("a lighthouse --wide")
    [job] = queued(h)
    assert (job.prompt, job.params.aspect, job.params.stylize) == ("a lighthouse at dusk", "16:9", 300)


async def test_a_misspelt_flag_is_answered_with_the_nearest_one(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.imagine("a lighthouse --stylise 300")
    [answer] = h.discord.calls
    assert answer.ephemeral and "Unknown parameter `--stylise`. Did you mean `--stylize`?" in answer.content
