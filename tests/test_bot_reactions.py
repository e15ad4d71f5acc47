"""✉️ and ❌ reactions, through discord.py's real MESSAGE_REACTION_ADD parsing,
against a real Redis and JobStore.

Reactions reach the bot as raw gateway events (`parse_message_reaction_add`);
what it then asks of Discord (fetch a message, open a DM, send, edit, delete)
goes through `HTTPClient.request`, where a recording stand-in answers with
payloads shaped like Discord's REST API v10."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from bot.reactions import ReactionsCog
from shared import keys
from shared.components import grid_components, upscale_components
from shared.custom_id import Action, encode
from shared.grid import encode_png
from shared.job import JobKind, JobRecord, JobState, ReplyTarget, new_job_id
from shared.params import Params
from shared.settings import Settings
from tests.support.discord_api import (
    APP_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    Harness,
    RecordingRest,
    message_payload,
    start_bot,
    user_payload,
    worker_alive,
)
from tests.support.jobs import queued_rq_ids

ADMIN_ID = 700000000000000099  # in DAYDREAM_ADMIN_IDS
SERVER_ADMIN_ID = 700000000000000098  # has a role with the Administrator permission
ADMIN_ROLE_ID = 700000000000000097
OWNER_ID = 700000000000000096
STRANGER_ID = OTHER_USER_ID
ENVELOPE = "\N{ENVELOPE}"
ENVELOPE_EMOJI = ENVELOPE + "\N{VARIATION SELECTOR-16}"  # ✉️ as most clients send it
CROSS = "\N{CROSS MARK}"
SEEDS = [11, 22, 33, 44]


class ReactionHarness:
    def __init__(self, h: Harness, rest: RecordingRest) -> None:
        self.h = h
        self.bot = h.bot
        self.store = h.store
        self.rest = rest

    async def react(
        self,
        message_id: int,
        emoji: str = CROSS,
        *,
        user_id: int = USER_ID,
        bot: bool = False,
        roles: list[int] | None = None,
        author_id: int | None = APP_ID,
        emoji_id: int | None = None,
    ) -> None:
        """A MESSAGE_REACTION_ADD as the gateway sends it, then wait for the listeners it started."""
        payload: dict[str, Any] = {
            "type": 0,
            "user_id": str(user_id),
            "channel_id": str(CHANNEL_ID),
            "message_id": str(message_id),
            "guild_id": str(GUILD_ID),
            "emoji": {"id": str(emoji_id) if emoji_id else None, "name": emoji},
            "burst": False,
            "burst_colors": [],
            "member": {
                "user": {**user_payload(user_id), "bot": bot},
                "roles": [str(r) for r in roles or []],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
        }
        if author_id is not None:
            payload["message_author_id"] = str(author_id)
        before = asyncio.all_tasks()
        self.bot._connection.parse_message_reaction_add(payload)
        await asyncio.gather(*(asyncio.all_tasks() - before))

    def job(self, *, state: JobState = JobState.DONE, kind: JobKind = JobKind.IMAGINE, **changes: Any) -> JobRecord:
        record = JobRecord(
            id=new_job_id(),
            kind=kind,
            prompt="a red circle on a blue background",
            params=Params(),
            seeds=[SEEDS[1]] if kind == JobKind.UPSCALE else list(SEEDS),
            user_id=USER_ID,
            model="embedded",
            state=state,
            images=1 if kind == JobKind.UPSCALE else 4,
            reply=ReplyTarget(guild_id=GUILD_ID, channel_id=CHANNEL_ID),
            **changes,
        )
        if state == JobState.QUEUED:
            self.store.submit(record, check=False)  # queued as the bot would, after its checks
        else:
            self.store.save(record)
        return record

    def result_message(self, record: JobRecord) -> int:
        """The message a worker posts for a finished job: its buttons name the job."""
        components = upscale_components(record.id) if record.kind == JobKind.UPSCALE else grid_components(record.id)
        return self.rest.post(f"**{record.prompt}** - <@{record.user_id}>", components)

    def waiting_line(self, record: JobRecord) -> int:
        """The bot's waiting line (no buttons), remembered as /imagine and clicks do."""
        message_id = self.rest.post(f"**{record.prompt}** - <@{record.user_id}> (Waiting to start)")
        self.store.claims.remember_message(message_id, record.id)
        return message_id


def guild_payload() -> dict[str, Any]:
    role = {"hoist": False, "managed": False, "mentionable": False, "position": 0, "color": 0, "flags": 0}
    return {
        "id": str(GUILD_ID),
        "name": "Art club",
        "owner_id": str(OWNER_ID),
        "roles": [
            {**role, "id": str(GUILD_ID), "name": "@everyone", "permissions": "0"},
            {**role, "id": str(ADMIN_ROLE_ID), "name": "Admins", "permissions": str(discord.Permissions(8).value)},
        ],
        "emojis": [],
        "features": [],
    }


@pytest.fixture
async def rh(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ReactionHarness]:
    settings = Settings(
        redis_url=settings.redis_url, discord_token=settings.discord_token, admin_user_ids=frozenset({ADMIN_ID})
    )
    async for h in start_bot(settings):
        h.bot._connection._add_guild_from_data(guild_payload())  # what GUILD_CREATE caches (guilds intent)
        rest = RecordingRest()
        monkeypatch.setattr(h.bot.http, "request", rest.request)
        yield ReactionHarness(h, rest)


def tile_png(colour: str) -> bytes:
    from PIL import Image

    return encode_png(Image.new("RGB", (8, 8), colour))


# -- wiring ---------------------------------------------------------------------


async def test_the_listener_is_registered_at_setup(rh: ReactionHarness) -> None:
    cog = rh.bot.get_cog("ReactionsCog")
    assert isinstance(cog, ReactionsCog)
    assert cog.on_raw_reaction_add in rh.bot.extra_events["on_raw_reaction_add"]


# -- ✉️ ----------------------------------------------------------------------------


@pytest.mark.parametrize("emoji", [ENVELOPE, ENVELOPE_EMOJI])
async def test_envelope_dms_the_grid_with_the_job_id_and_seeds(rh: ReactionHarness, emoji: str) -> None:
    record = rh.job()
    grid = tile_png("red")
    rh.store.images.put(record.id, [tile_png("blue")] * 4, grid)
    message_id = rh.result_message(record)

    await rh.react(message_id, emoji, user_id=STRANGER_ID)  # anyone may ask for a copy

    [opened] = rh.rest.find("POST", "/users/@me/channels")
    assert opened.payload == {"recipient_id": STRANGER_ID}
    [dm] = rh.rest.find("POST", "/channels/{channel_id}/messages")
    assert dm.url.endswith(f"/channels/{DM_CHANNEL_ID}/messages")
    assert dm.files == [(f"daydream_{record.id[:8]}.png", grid)]
    assert f"Job ID: `{record.id}`" in dm.payload["content"]
    assert "Seeds: 11 (#1), 22 (#2), 33 (#3), 44 (#4)" in dm.payload["content"]
    assert dm.payload["allowed_mentions"]["parse"] == []
    assert not rh.rest.find("DELETE", "/channels/{channel_id}/messages/{message_id}")


async def test_envelope_on_an_upscale_sends_its_one_image_and_seed(rh: ReactionHarness) -> None:
    parent = rh.job()
    record = rh.job(kind=JobKind.UPSCALE, parent_id=parent.id, index=2)
    image = tile_png("green")
    rh.store.images.put(record.id, [image], None)

    await rh.react(rh.result_message(record), ENVELOPE_EMOJI)

    [dm] = rh.rest.find("POST", "/channels/{channel_id}/messages")
    assert [data for _, data in dm.files] == [image]
    assert "Seed: 22" in dm.payload["content"] and f"Image #2 of job `{parent.id}`" in dm.payload["content"]


async def test_envelope_after_the_images_expired_says_how_to_get_them_back(rh: ReactionHarness) -> None:
    record = rh.job()  # no images stored: expired

    await rh.react(rh.result_message(record), ENVELOPE_EMOJI)

    [dm] = rh.rest.find("POST", "/channels/{channel_id}/messages")
    assert dm.files == []
    assert "expired" in dm.payload["content"] and "U1–U4 or V1–V4" in dm.payload["content"]
    assert record.id in dm.payload["content"] and "44 (#4)" in dm.payload["content"]


async def test_closed_dms_are_only_logged(rh: ReactionHarness, caplog: pytest.LogCaptureFixture) -> None:
    record = rh.job()
    rh.store.images.put(record.id, [tile_png("blue")] * 4, tile_png("red"))
    rh.rest.dms_closed = True

    with caplog.at_level(logging.INFO, logger="bot.reactions"):
        await rh.react(rh.result_message(record), ENVELOPE_EMOJI)

    assert rh.rest.find("POST", "/channels/{channel_id}/messages")  # it tried
    assert "has closed DMs" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_envelope_on_a_waiting_job_sends_nothing(rh: ReactionHarness) -> None:
    record = rh.job(state=JobState.QUEUED)
    await rh.react(rh.waiting_line(record), ENVELOPE_EMOJI)
    assert rh.rest.calls == []


# -- ❌ --------------------------------------------------------------------------


async def test_cross_by_the_requester_cancels_a_job_waiting_after_imagine(rh: ReactionHarness) -> None:
    worker_alive(rh.store)
    await rh.h.imagine("a lighthouse at dusk")
    [waiting] = rh.h.discord.find("PATCH", "@original")
    [job_id] = queued_rq_ids(rh.store)
    record = rh.store.get(job_id.split("-")[0])
    rh.rest.messages[waiting.message_id] = message_payload(waiting.message_id, waiting.content)

    await rh.react(waiting.message_id)

    cancelled = rh.store.get(record.id)
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.error == f"Cancelled by <@{USER_ID}>."
    assert rh.store.dispatch.depth("embedded") == 0  # a worker will never see it
    assert rh.store.cancel_requested(record.id)
    [edit] = rh.rest.changes
    assert edit.method == "PATCH" and edit.url.endswith(f"/messages/{waiting.message_id}")
    assert edit.payload["content"] == f"**a lighthouse at dusk** - <@{USER_ID}> — cancelled by <@{USER_ID}>."
    assert edit.payload["allowed_mentions"]["parse"] == []


async def test_cross_by_the_clicker_cancels_a_waiting_upscale(rh: ReactionHarness) -> None:
    worker_alive(rh.store)
    parent = rh.job()
    await rh.h.click(encode(Action.UPSCALE, parent.id, 2), grid_components(parent.id), user_id=OTHER_USER_ID)
    [waiting] = rh.h.discord.followups
    rh.rest.messages[waiting.message_id] = message_payload(waiting.message_id, waiting.content)

    await rh.react(waiting.message_id, user_id=OTHER_USER_ID)

    [child_id] = rh.store.redis.lrange(keys.RECENT, 0, -1)
    assert rh.store.get(child_id.decode()).state == JobState.CANCELLED
    assert rh.store.dispatch.depth("embedded") == 0
    assert rh.store.get(parent.id).state == JobState.DONE  # the parent's grid is not touched


async def test_cross_by_the_requester_stops_a_running_job(rh: ReactionHarness) -> None:
    record = rh.job(state=JobState.QUEUED)
    rh.store.mark_running(record.id, "w1")
    message_id = rh.waiting_line(record)

    await rh.react(message_id)

    assert rh.store.cancel_requested(record.id)  # the worker stops at its next step, and says so
    assert rh.store.get(record.id).state == JobState.RUNNING
    assert rh.rest.changes == []


@pytest.mark.parametrize("admin", [ADMIN_ID, SERVER_ADMIN_ID])
async def test_cross_by_an_admin_cancels_someone_elses_job(rh: ReactionHarness, admin: int) -> None:
    record = rh.job(state=JobState.QUEUED)
    await rh.react(rh.waiting_line(record), user_id=admin, roles=[ADMIN_ROLE_ID] if admin == SERVER_ADMIN_ID else [])
    assert rh.store.get(record.id).state == JobState.CANCELLED
    assert rh.store.dispatch.depth("embedded") == 0


async def test_cross_by_a_stranger_changes_nothing(rh: ReactionHarness) -> None:
    waiting = rh.job(state=JobState.QUEUED)
    finished = rh.job()
    result_id = rh.result_message(finished)

    await rh.react(rh.waiting_line(waiting), user_id=STRANGER_ID)
    await rh.react(result_id, user_id=STRANGER_ID)

    assert rh.store.get(waiting.id).state == JobState.QUEUED
    assert not rh.store.cancel_requested(waiting.id)
    assert rh.store.dispatch.depth("embedded") == 1
    assert result_id in rh.rest.messages
    assert rh.rest.changes == []


async def test_cross_by_the_requester_on_a_result_deletes_it(rh: ReactionHarness) -> None:
    record = rh.job()
    message_id = rh.result_message(record)

    await rh.react(message_id)

    [deleted] = rh.rest.changes
    assert deleted.method == "DELETE" and deleted.url.endswith(f"/channels/{CHANNEL_ID}/messages/{message_id}")
    assert message_id not in rh.rest.messages
    assert rh.store.get(record.id).state == JobState.DONE  # the job record stays


async def test_cross_on_a_failed_jobs_message_deletes_it(rh: ReactionHarness) -> None:
    record = rh.job(state=JobState.FAILED)
    message_id = rh.waiting_line(record)  # the worker edited it into the failure notice
    await rh.react(message_id)
    assert [c.method for c in rh.rest.changes] == ["DELETE"]


# -- what is ignored ----------------------------------------------------------------


async def test_reactions_by_bots_are_ignored(rh: ReactionHarness) -> None:
    record = rh.job(state=JobState.QUEUED)
    message_id = rh.waiting_line(record)
    result_id = rh.result_message(rh.job())

    await rh.react(message_id, user_id=APP_ID, bot=True)  # the bot itself
    await rh.react(message_id, user_id=USER_ID, bot=True)  # another bot (even one with the requester's id)
    await rh.react(result_id, ENVELOPE_EMOJI, user_id=STRANGER_ID, bot=True)

    assert rh.store.get(record.id).state == JobState.QUEUED
    assert rh.rest.calls == []


@pytest.mark.parametrize(
    ("emoji", "emoji_id"), [("\N{THUMBS UP SIGN}", None), ("\N{HEAVY MULTIPLICATION X}", None), ("x", 12345)]
)
async def test_other_emoji_are_ignored(rh: ReactionHarness, emoji: str, emoji_id: int | None) -> None:
    record = rh.job(state=JobState.QUEUED)
    await rh.react(rh.waiting_line(record), emoji, emoji_id=emoji_id)
    await rh.react(rh.result_message(rh.job()), emoji, emoji_id=emoji_id)
    assert rh.store.get(record.id).state == JobState.QUEUED
    assert rh.rest.calls == []


async def test_messages_that_are_not_daydreams_are_ignored(rh: ReactionHarness) -> None:
    record = rh.job()
    # Someone else's message, even one quoting Daydream's buttons.
    theirs = rh.rest.post("look", grid_components(record.id), author_id=STRANGER_ID)
    await rh.react(theirs, author_id=STRANGER_ID)  # the gateway names the author: no request at all
    assert rh.rest.calls == []
    await rh.react(theirs, author_id=None)  # it does not: the fetched message shows it
    await rh.react(rh.rest.post("hello"), ENVELOPE_EMOJI, author_id=None)  # Daydream's, but no job's
    assert [c.method for c in rh.rest.calls] == ["GET", "GET"]


async def test_a_failure_is_logged_and_the_listener_keeps_working(
    rh: ReactionHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    record = rh.job()
    message_id = rh.result_message(record)
    real_get = rh.store.get

    def broken_get(job_id: str) -> JobRecord:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rh.store, "get", broken_get)
    await rh.react(message_id)

    [logged] = [r for r in caplog.records if r.name == "bot.reactions"]
    assert logged.exc_info and "disk on fire" in str(logged.exc_info[1])
    monkeypatch.setattr(rh.store, "get", real_get)  # the next reaction works
    await rh.react(message_id)
    assert [c.method for c in rh.rest.changes] == ["DELETE"]
