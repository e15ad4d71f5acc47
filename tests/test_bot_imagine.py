"""`/imagine` through discord.py's real dispatch, against a real Redis and JobStore."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import discord
import pytest

from shared import keys
from shared.job import JobKind, JobRecord, JobState
from shared.params import Params
from shared.settings import Settings
from tests.support.discord_api import (
    APP_ID,
    CHANNEL_ID,
    DEFERRED_THINKING,
    GUILD_ID,
    USER_ID,
    Harness,
    start_bot,
    worker_alive,
)
from tests.support.jobs import queued_rq_ids, queued_rq_job

ORIGINAL = "/messages/@original"


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async for h in start_bot(settings):
        yield h


def only_job(h: Harness) -> JobRecord:
    ids = [raw.decode() for raw in h.store.redis.lrange(keys.RECENT, 0, -1)]
    assert len(ids) == 1, ids
    return h.store.get(ids[0])


def assert_refused_at_once(h: Harness, text: str) -> None:
    """Answered with one ephemeral message, nothing deferred, nothing queued."""
    [answer] = h.discord.calls
    assert answer.path.endswith("/callback") and answer.payload["type"] == 4
    assert answer.ephemeral
    assert text in answer.content
    assert h.store.dispatch.depth("embedded") == 0


def assert_withdrawn(h: Harness, text: str) -> None:
    """Deferred, then the public message deleted and the reason told privately."""
    assert h.discord.answers[0].payload["type"] == DEFERRED_THINKING
    assert h.discord.find("DELETE", ORIGINAL), "the public 'thinking' message must be taken down"
    [followup] = h.discord.followups
    assert followup.ephemeral
    assert text in followup.content
    assert h.store.dispatch.depth("embedded") == 0


async def test_imagine_defers_queues_the_job_and_shows_its_place(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    before = time.time()
    payload = await h.imagine("a red circle on a blue background --ar 3:2 --seed 7 --no text")

    # 1. Deferred ("thinking"), as the first request.
    first = h.discord.calls[0]
    assert first.path == "/interactions/{webhook_id}/{webhook_token}/callback"
    assert first.payload == {"type": DEFERRED_THINKING}
    assert str(payload["id"]) in first.url

    # 2. The record: the parsed prompt, per-image seeds, the requester, where to answer.
    record = only_job(h)
    assert record.kind == JobKind.IMAGINE and record.state == JobState.QUEUED
    assert record.prompt == "a red circle on a blue background"
    assert record.negative_prompt == "text"
    assert record.params == Params(aspect="3:2", seed=7)
    assert record.seeds == [7, 8, 9, 10]
    assert record.user_id == USER_ID
    reply = record.reply
    assert (reply.application_id, reply.guild_id, reply.channel_id) == (APP_ID, GUILD_ID, CHANNEL_ID)
    assert reply.interaction_token == payload["token"]
    assert reply.token_expires_at is not None
    assert before + h.bot.settings.token_lifetime_s <= reply.token_expires_at <= time.time() + 15 * 60
    assert reply.message_id is None  # the worker edits the original response

    # 3. On RQ's queue, by the job function's dotted name, JSON-serialised.
    [rq_id] = queued_rq_ids(h.store)
    rq_job = queued_rq_job(h.store, rq_id)
    assert rq_job.func_name == keys.JOB_FUNC and rq_job.args == [record.id, 0]

    # 4. The waiting line, pinging only the requester.
    [edit] = h.discord.find("PATCH", ORIGINAL)
    assert edit.content == f"**a red circle on a blue background** - <@{USER_ID}> (Waiting to start, #1 in queue)"
    assert edit.payload["allowed_mentions"] == {"parse": [], "users": [USER_ID]}
    assert not any(c.ephemeral for c in h.discord.calls)


async def test_place_in_queue_counts_the_jobs_ahead(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    await h.imagine("first")
    await h.imagine("second", user_id=USER_ID + 1)
    edits = [c.content for c in h.discord.find("PATCH", ORIGINAL)]
    assert edits[0].endswith("(Waiting to start, #1 in queue)")
    assert edits[1].endswith("(Waiting to start, #2 in queue)")
    assert h.store.dispatch.depth("embedded") == 2


async def test_prompt_echo_cannot_ping_everyone(harness: Harness) -> None:
    worker_alive(harness.store)
    await harness.imagine("@everyone look at this")
    [edit] = harness.discord.find("PATCH", ORIGINAL)
    assert edit.payload["allowed_mentions"]["parse"] == []


@pytest.mark.parametrize(
    ("prompt", "text"),
    [
        ("   ", "Your prompt is empty"),
        ("a boat --ar 5:1", "Invalid parameter `--ar 5:1`: this server allows aspect ratios from 1:4 to 4:1"),
        ("a boat --steps 900", "this server allows --steps up to 100 (an admin limit)"),
        ("a boat --sede 3", "Unknown parameter `--sede`. Did you mean `--seed`?"),
        ("x" * 1001, "the limit is 1000"),
        ("a boat --lora ink:strong", "The weight in `--lora ink:strong` must be a number"),
    ],
)
async def test_a_bad_prompt_is_answered_privately_at_once(harness: Harness, prompt: str, text: str) -> None:
    worker_alive(harness.store)
    await harness.imagine(prompt)
    assert_refused_at_once(harness, text)


@pytest.mark.parametrize(
    ("permissions", "missing"),
    [
        (discord.Permissions(view_channel=True, attach_files=True), "**Send Messages**"),
        (discord.Permissions(view_channel=True, send_messages=True), "**Attach Files**"),
        (discord.Permissions(view_channel=True), "**Send Messages** and **Attach Files**"),
    ],
)
async def test_missing_channel_permissions_are_named(
    harness: Harness, permissions: discord.Permissions, missing: str
) -> None:
    worker_alive(harness.store)
    await harness.imagine("a lighthouse", app_permissions=permissions)
    assert_refused_at_once(harness, missing)
    assert "server admin must grant it" in harness.discord.calls[0].content


async def test_in_a_thread_send_messages_in_threads_is_what_counts(harness: Harness) -> None:
    worker_alive(harness.store)
    not_in_threads = discord.Permissions(view_channel=True, send_messages=True, attach_files=True)
    await harness.imagine("a lighthouse", app_permissions=not_in_threads, thread=True)
    assert_refused_at_once(harness, "**Send Messages in Threads**")
    harness.discord.calls.clear()
    in_threads = discord.Permissions(view_channel=True, send_messages_in_threads=True, attach_files=True)
    await harness.imagine("a lighthouse", app_permissions=in_threads, thread=True)
    assert harness.discord.answers[0].payload["type"] == DEFERRED_THINKING  # accepted, without Send Messages
    assert harness.store.dispatch.depth("embedded") == 1


async def test_no_worker_alive_is_explained(harness: Harness) -> None:
    await harness.imagine("a lighthouse")
    assert_withdrawn(harness, "No image worker is running")
    assert "`daydream worker`" in harness.discord.followups[0].content


async def test_a_lora_the_model_lacks_is_explained_privately(harness: Harness) -> None:
    worker_alive(harness.store)
    await harness.imagine("a lighthouse <lora:ink:0.8>")
    assert_withdrawn(harness, "The model `embedded` has no LoRA `ink`. It has no LoRAs.")


async def test_a_dead_workers_heartbeat_does_not_count(harness: Harness) -> None:
    worker_alive(harness.store)
    harness.store.redis.delete(keys.worker_heartbeat("w1"))  # what expiry does when it stops beating
    await harness.imagine("a lighthouse")
    assert_withdrawn(harness, "No image worker is running")


async def test_queue_full_is_explained(harness: Harness) -> None:
    h = harness
    worker_alive(h.store)
    limit = h.bot.settings.max_queued_per_user
    for n in range(limit):
        await h.imagine(f"picture {n}")
    h.discord.calls.clear()
    await h.imagine("one too many")
    assert_withdrawn_after_queue(h, f"Queue full: you already have {limit} jobs waiting")


def assert_withdrawn_after_queue(h: Harness, text: str) -> None:
    assert h.discord.answers[0].payload["type"] == DEFERRED_THINKING
    assert h.discord.find("DELETE", ORIGINAL)
    [followup] = h.discord.followups
    assert followup.ephemeral and text in followup.content
    assert h.store.dispatch.depth("embedded") == h.bot.settings.max_queued_per_user  # nothing added


@pytest.fixture
async def unreachable_redis(redis_url: str) -> AsyncIterator[Harness]:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", discord_token="test-token-not-real")
    async for h in start_bot(settings):
        yield h


async def test_redis_unreachable_is_explained(unreachable_redis: Harness) -> None:
    h = unreachable_redis
    await h.imagine("a lighthouse")
    # The user's settings are read first: a refused connection is answered at once, privately.
    [answer] = h.discord.calls
    assert answer.payload["type"] == 4 and answer.ephemeral
    assert "queue (Redis) cannot be reached" in answer.content and "not queued" in answer.content


async def test_an_unexpected_error_is_logged_and_still_answered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker_alive(harness.store)

    def broken_submit(record: JobRecord, **_: object) -> JobRecord:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.store, "submit", broken_submit)
    await harness.imagine("a lighthouse")
    [followup] = harness.discord.followups
    assert followup.ephemeral and "Something went wrong on our side" in followup.content
    assert harness.discord.find("DELETE", ORIGINAL)
    [logged] = [r for r in caplog.records if r.name == "bot.imagine"]
    assert logged.exc_info and "disk on fire" in str(logged.exc_info[1])
    assert "test-token-not-real" not in caplog.text


async def test_an_error_escaping_the_command_reaches_the_tree_handler(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_resolution(*args: object, **kwargs: object) -> None:
        raise KeyError("parser bug")

    monkeypatch.setattr("bot.imagine.resolve_in", broken_resolution)
    await harness.imagine("a lighthouse")
    [answer] = harness.discord.calls
    assert answer.ephemeral and "Something went wrong on our side" in answer.content
    [logged] = [r for r in caplog.records if r.name == "bot.app"]
    assert "unhandled error in /imagine" in logged.getMessage() and logged.exc_info
