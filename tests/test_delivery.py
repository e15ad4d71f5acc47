"""worker.delivery against a local HTTP server that answers like Discord's REST
API and records every request, with a real redis-server and the real JobStore."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from daydream.redis_server import free_port
from shared import keys, messages
from shared.components import grid_components
from shared.custom_id import Action, encode
from shared.errors import DeliveryFailed
from shared.job import JobKind, JobRecord, ReplyTarget, new_job_id
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.discord_http import CHANNEL_ID, ORIGINAL_ID, Canned, FakeDiscord
from worker.delivery import NONCE_CHARS, Delivery

APP_ID = 1111
GUILD_ID = 2222
USER_ID = 4444
TOKEN = "interaction-token-SECRET"
PNG = b"\x89PNG\r\n\x1a\n" + b"grid-bytes" * 50


@pytest.fixture
def dd_settings(settings: Settings, discord: FakeDiscord) -> Settings:
    return dataclasses.replace(settings, discord_api_base=discord.base, progress_interval_s=0.0)


@pytest.fixture
def store(dd_settings: Settings) -> Iterator[JobStore]:
    store = JobStore(dd_settings)
    yield store
    store.redis.close()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def delivery(dd_settings: Settings, store: JobStore, waits: list[float]) -> Iterator[Delivery]:
    d = Delivery(dd_settings, store)

    async def record_wait(seconds: float) -> None:  # the real retry path, without the real wait
        waits.append(seconds)

    d.rest.sleep = record_wait
    yield d
    d.close()


def make_record(
    store: JobStore,
    *,
    token_age_s: float = 0.0,
    message_id: int | None = None,
    guild_id: int | None = GUILD_ID,
    cli: bool = False,
) -> JobRecord:
    """A stored job record; `token_age_s` is how long ago the interaction was created."""
    reply = (
        ReplyTarget()
        if cli
        else ReplyTarget(
            application_id=APP_ID,
            interaction_token=TOKEN,
            token_expires_at=time.time() - token_age_s + 15 * 60,
            guild_id=guild_id,
            channel_id=CHANNEL_ID,
            message_id=message_id,
        )
    )
    record = JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt="a red circle @everyone",
        params=Params(),
        seeds=[1, 2, 3, 4],
        user_id=None if cli else USER_ID,
        reply=reply,
    )
    store.save(record)
    return record


def deliver(delivery: Delivery, record: JobRecord) -> tuple[int, str]:
    content = messages.result(record)
    return delivery.result(record, PNG, "daydream_grid.png", content, grid_components(record.id))


def custom_ids(components: list[dict[str, Any]]) -> list[str]:
    return [button["custom_id"] for row in components for button in row["components"]]


ORIGINAL = f"/webhooks/{APP_ID}/{TOKEN}/messages/@original"
CHANNEL = f"/channels/{CHANNEL_ID}/messages"


# -- results ---------------------------------------------------------------------
def test_result_edits_the_original_response_while_the_token_lives(delivery, discord, store):
    record = make_record(store, token_age_s=60)
    message_id, url = deliver(delivery, record)

    [req] = discord.requests
    assert (req.method, req.path) == ("PATCH", ORIGINAL)
    assert "Authorization" not in req.headers  # the interaction token in the path is the credential
    assert req.headers["Content-Type"].startswith("multipart/form-data")
    assert req.files == {"files[0]": ("daydream_grid.png", PNG)}
    assert req.payload["content"] == f"**a red circle @everyone** - <@{USER_ID}> (fast)"
    assert req.payload["attachments"] == [{"id": 0, "filename": "daydream_grid.png"}]
    assert req.payload["allowed_mentions"] == {"users": [USER_ID]}  # never @everyone from a prompt
    assert custom_ids(req.payload["components"]) == [
        *(encode(Action.UPSCALE, record.id, i) for i in range(1, 5)),
        *(encode(Action.VARY, record.id, i) for i in range(1, 5)),
        encode(Action.REROLL, record.id, 0),
    ]
    assert [len(row["components"]) for row in req.payload["components"]] == [4, 5]

    assert (message_id, url) == (ORIGINAL_ID, f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{ORIGINAL_ID}")
    stored = store.get(record.id).reply
    assert (stored.message_id, stored.message_url) == (message_id, url)
    assert json.loads(store.redis.get(keys.delivered(record.id))) == {"message_id": message_id, "message_url": url}


def test_result_edits_the_bots_follow_up_for_a_button_click(delivery, discord, store):
    record = make_record(store, message_id=7777)
    assert deliver(delivery, record)[0] == 7777
    [req] = discord.requests
    assert (req.method, req.path) == ("PATCH", f"/webhooks/{APP_ID}/{TOKEN}/messages/7777")


def test_result_after_token_expiry_is_a_channel_message_with_the_bot_token(delivery, discord, store):
    record = make_record(store, token_age_s=15 * 60 + 1, guild_id=None)
    message_id, url = deliver(delivery, record)

    [req] = discord.requests
    assert (req.method, req.path) == ("POST", CHANNEL)
    assert req.headers["Authorization"] == "Bot test-token-not-real"
    assert f"<@{USER_ID}>" in req.payload["content"]
    assert req.payload["allowed_mentions"] == {"users": [USER_ID]}
    assert req.payload["enforce_nonce"] is True
    nonce = req.payload["nonce"]
    assert isinstance(nonce, str) and 0 < len(nonce) <= NONCE_CHARS
    assert req.files == {"files[0]": ("daydream_grid.png", PNG)}
    assert len(custom_ids(req.payload["components"])) == 9
    assert url == f"https://discord.com/channels/@me/{CHANNEL_ID}/{message_id}"
    assert store.get(record.id).reply.message_id == message_id


def test_token_within_the_safety_margin_counts_as_expired(delivery, discord, store):
    record = make_record(store, token_age_s=15 * 60 - 5)  # 5 s left: an upload could outlive it
    deliver(delivery, record)
    assert [(r.method, r.path) for r in discord.requests] == [("POST", CHANNEL)]


def test_result_falls_back_to_the_channel_when_the_webhook_answers_401(delivery, discord, store, waits):
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, Canned(401, {"code": 50027, "message": "Invalid Webhook Token"}))
    message_id, _ = deliver(delivery, record)

    assert [(r.method, r.path) for r in discord.requests] == [("PATCH", ORIGINAL), ("POST", CHANNEL)]
    assert discord.requests[1].headers["Authorization"] == "Bot test-token-not-real"
    assert waits == []  # a 401 is never retried
    assert store.get(record.id).reply.message_id == message_id


def test_a_retried_job_never_posts_twice(delivery, discord, store, dd_settings):
    record = make_record(store, token_age_s=20 * 60)
    first = deliver(delivery, record)
    second = deliver(delivery, record)
    other_worker = Delivery(dd_settings, store)  # the retry may run on another worker
    try:
        third = deliver(other_worker, record)
    finally:
        other_worker.close()
    assert first == second == third
    assert len(discord.requests) == 1


def test_channel_posts_of_one_job_share_a_nonce(delivery, discord, store):
    """A post whose answer was lost is retried with the same nonce, so Discord drops the copy."""
    record = make_record(store, token_age_s=20 * 60)
    discord.fail("POST", CHANNEL, Canned(502, {"message": "Bad Gateway"}))
    deliver(delivery, record)
    deliver(delivery, make_record(store, token_age_s=20 * 60))
    nonces = [r.payload["nonce"] for r in discord.requests]
    assert len(nonces) == 3
    assert nonces[0] == nonces[1]  # the retry of one job
    assert nonces[2] != nonces[0]  # another job


@pytest.mark.parametrize("where", ["body", "header"])
def test_429_waits_retry_after_then_posts_once(delivery, discord, store, waits, where):
    record = make_record(store)
    if where == "body":
        limited = Canned(429, {"message": "You are being rate limited.", "retry_after": 0.75, "global": False})
    else:
        limited = Canned(429, {"message": "You are being rate limited."}, {"Retry-After": "2"})
    discord.fail("PATCH", ORIGINAL, limited)
    assert deliver(delivery, record)[0] == ORIGINAL_ID
    assert waits == [pytest.approx(0.75 if where == "body" else 2.0, abs=0.05)]
    assert [r.path for r in discord.requests] == [ORIGINAL, ORIGINAL]


def test_5xx_twice_then_success_posts_once(delivery, discord, store, waits):
    record = make_record(store, token_age_s=20 * 60)
    discord.fail("POST", CHANNEL, Canned(500, {"message": "500"}), Canned(503, {"message": "503"}))
    deliver(delivery, record)
    assert waits == [0.5, 1.0]
    assert len(discord.requests) == 3


def test_5xx_forever_gives_up_with_a_clear_error(delivery, discord, store, waits):
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, *[Canned(502, {"message": "Bad Gateway"})] * 10)
    with pytest.raises(DeliveryFailed, match="HTTP 502 on 5 tries"):
        deliver(delivery, record)
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert len(discord.requests) == 5
    assert store.redis.get(keys.delivered(record.id)) is None  # a later retry may still deliver


def test_unreachable_discord_retries_then_fails_without_leaking_tokens(settings, waits, caplog):
    nothing_there = dataclasses.replace(settings, discord_api_base=f"http://127.0.0.1:{free_port()}/api/v10")
    store = JobStore(nothing_there)
    record = make_record(store)
    d = Delivery(nothing_there, store)

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    d.rest.sleep = record_wait
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(DeliveryFailed, match="could not reach Discord"):
            deliver(d, record)
    finally:
        d.close()
        store.redis.close()
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert TOKEN not in caplog.text and "test-token-not-real" not in caplog.text


def test_missing_channel_permissions_say_so(delivery, discord, store, waits):
    record = make_record(store, token_age_s=20 * 60)
    discord.fail("POST", CHANNEL, Canned(403, {"code": 50013, "message": "Missing Permissions"}))
    with pytest.raises(DeliveryFailed, match=rf"lacks Send Messages / Attach Files in <#{CHANNEL_ID}>"):
        deliver(delivery, record)
    assert len(discord.requests) == 1 and waits == []


def test_ratelimit_remaining_zero_holds_the_next_request(delivery, discord, store, waits):
    discord.headers_on_success = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
    deliver(delivery, make_record(store, token_age_s=20 * 60))
    deliver(delivery, make_record(store, token_age_s=20 * 60))  # same channel, same bucket
    assert waits == [pytest.approx(1.5, abs=0.05)]
    assert len(discord.requests) == 2


def test_tokens_are_never_logged(delivery, discord, store, caplog):
    caplog.set_level(logging.DEBUG)
    record = make_record(store)
    discord.fail(
        "PATCH",
        ORIGINAL,
        Canned(429, {"retry_after": 0.1}),
        Canned(500, {}),
        Canned(404, {"code": 10015, "message": "Unknown Webhook"}),
    )
    deliver(delivery, record)
    assert "rate-limited" in caplog.text
    assert TOKEN not in caplog.text and "test-token-not-real" not in caplog.text


# -- progress --------------------------------------------------------------------
def test_progress_edits_the_message_with_a_preview(delivery, discord, store):
    record = make_record(store)
    delivery.progress(record, 0.37, lambda: b"preview-png")
    delivery.flush_progress()

    [req] = discord.requests
    assert (req.method, req.path) == ("PATCH", ORIGINAL)
    assert req.payload["content"] == f"**a red circle @everyone** - <@{USER_ID}> (37%)"
    assert req.payload["attachments"] == [{"id": 0, "filename": "preview.png"}]  # replaces earlier previews
    assert req.files == {"files[0]": ("preview.png", b"preview-png")}


def test_progress_targets_the_follow_up_of_a_click(delivery, discord, store):
    delivery.progress(make_record(store, message_id=7777), 0.5, None)
    delivery.flush_progress()
    [req] = discord.requests
    assert req.path == f"/webhooks/{APP_ID}/{TOKEN}/messages/7777"
    assert req.payload["content"].endswith("(50%)") and not req.files


def test_progress_is_throttled_per_job(delivery, discord, store, dd_settings):
    delivery.settings = dataclasses.replace(dd_settings, progress_interval_s=60.0)
    first, second = make_record(store), make_record(store)
    delivery.progress(first, 0.2, lambda: b"a")
    delivery.flush_progress()
    delivery.progress(first, 0.4, lambda: b"b")  # within the interval: skipped
    delivery.progress(second, 0.1, lambda: b"c")  # another job has its own clock
    delivery.flush_progress()
    assert [r.payload["content"][-5:] for r in discord.requests] == ["(20%)", "(10%)"]


def test_progress_after_the_interval_edits_again(delivery, discord, store):
    record = make_record(store)  # interval 0 in these settings
    for fraction in (0.25, 0.5):
        delivery.progress(record, fraction, None)
        delivery.flush_progress()
    assert len(discord.requests) == 2


def test_progress_respects_429_and_is_never_retried(delivery, discord, store, waits):
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, Canned(429, {"retry_after": 30.0, "global": False}))
    delivery.progress(record, 0.2, lambda: b"a")
    delivery.flush_progress()
    delivery.progress(record, 0.4, lambda: b"b")  # still rate-limited: skipped, no request
    delivery.flush_progress()
    assert len(discord.requests) == 1 and waits == []


def test_progress_failures_are_swallowed(delivery, discord, store, waits):
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, Canned(500, {}), Canned(401, {"code": 50027, "message": "Invalid Webhook Token"}))
    for fraction in (0.2, 0.4):
        delivery.progress(record, fraction, lambda: b"p")
        delivery.flush_progress()
    assert len(discord.requests) == 2 and waits == []


def test_result_waits_for_a_preview_edit_in_flight(delivery, discord, store):
    """A slow preview edit answered after the result would put the preview back."""
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, Canned(200, {}, delay_s=0.2))
    delivery.progress(record, 0.9, lambda: b"late preview")
    deliver(delivery, record)  # no flush: result() itself must wait
    preview, result = discord.requests
    assert preview.files["files[0]"][0] == "preview.png" and result.files["files[0]"][0] == "daydream_grid.png"
    assert 0 < preview.answered_at <= result.arrived_at


def test_progress_stops_when_the_token_expires(delivery, discord, store):
    delivery.progress(make_record(store, token_age_s=20 * 60), 0.5, lambda: b"p")
    delivery.flush_progress()
    assert discord.requests == []


# -- failures --------------------------------------------------------------------
def test_failure_edits_the_message(delivery, discord, store):
    record = make_record(store)
    delivery.failure(record, "The GPU ran out of memory.")
    [req] = discord.requests
    assert (req.method, req.path) == ("PATCH", ORIGINAL)
    assert req.payload["content"] == f"**a red circle @everyone** - <@{USER_ID}> — failed: The GPU ran out of memory."
    assert req.payload["attachments"] == [] and req.payload["components"] == []


def test_failure_after_expiry_is_a_channel_message_mentioning_the_user(delivery, discord, store):
    delivery.failure(make_record(store, token_age_s=20 * 60), "boom")
    [req] = discord.requests
    assert (req.method, req.path) == ("POST", CHANNEL)
    assert req.headers["Authorization"] == "Bot test-token-not-real"
    assert f"<@{USER_ID}>" in req.payload["content"] and "failed: boom" in req.payload["content"]
    assert req.payload["allowed_mentions"] == {"users": [USER_ID]}


def test_failure_never_raises(delivery, discord, store, caplog):
    record = make_record(store, token_age_s=20 * 60)
    discord.fail("POST", CHANNEL, Canned(403, {"code": 50001, "message": "Missing Access"}))
    delivery.failure(record, "boom")
    assert "lacks Send Messages" in caplog.text


def test_failure_after_delivery_keeps_the_result(delivery, discord, store):
    record = make_record(store)
    deliver(delivery, record)
    delivery.failure(record, "Redis hiccup after posting")
    assert len(discord.requests) == 1


# -- command-line jobs -------------------------------------------------------------
def test_command_line_jobs_make_no_request(delivery, discord, store):
    record = make_record(store, cli=True)
    delivery.progress(record, 0.5, lambda: b"p")
    delivery.flush_progress()
    assert deliver(delivery, record) == (0, "")
    delivery.failure(record, "boom")
    assert discord.requests == []


# -- Discord's limits shared by every worker, dead tokens, permanent refusals ---------
def test_a_global_429_holds_every_worker_of_the_bot(delivery, discord, store, dd_settings, waits):
    discord.fail("PATCH", ORIGINAL, Canned(429, {"message": "slow down", "retry_after": 2.5, "global": True}))
    deliver(delivery, make_record(store))  # this worker waits it out itself…
    other = Delivery(dd_settings, store)  # …and another worker, on another host, holds too
    other_waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        other_waits.append(seconds)

    other.rest.sleep = record_wait
    try:
        deliver(other, make_record(store))
    finally:
        other.close()
    assert waits == [pytest.approx(2.5, abs=0.05)]
    assert len(other_waits) == 1 and 1.0 < other_waits[0] <= 2.5


def test_refused_requests_are_counted_in_discords_window_but_not_a_shared_scope(delivery, discord, store):
    discord.fail(
        "PATCH",
        ORIGINAL,
        Canned(429, {"retry_after": 0.1}, {"X-RateLimit-Scope": "shared"}),
        Canned(429, {"retry_after": 0.1}, {"X-RateLimit-Scope": "user"}),
    )
    deliver(delivery, make_record(store))
    assert delivery.rest.invalid_requests == 1  # the user-scope 429 only
    assert store.claims.invalid_so_far() == 1


def test_a_dead_token_is_not_used_again(delivery, discord, store):
    record = make_record(store)
    discord.fail("PATCH", ORIGINAL, Canned(401, {"code": 50027, "message": "Invalid Webhook Token"}))
    delivery.progress(record, 0.2, lambda: b"a")
    delivery.flush_progress()
    for fraction in (0.4, 0.6):  # every further edit would be another invalid request
        delivery.progress(record, fraction, lambda: b"p")
        delivery.flush_progress()
    deliver(delivery, record)
    assert [(r.method, r.path) for r in discord.requests] == [("PATCH", ORIGINAL), ("POST", CHANNEL)]
    assert store.get(record.id).reply.token_expires_at <= time.time()  # recorded for later attempts


def test_near_the_invalid_request_ban_only_results_are_sent(delivery, discord, store):
    delivery.rest.invalid_in_window = 5000
    record = make_record(store)
    delivery.progress(record, 0.5, lambda: b"p")
    delivery.flush_progress()
    deliver(delivery, record)
    assert [r.method for r in discord.requests] == ["PATCH"] and discord.requests[0].files["files[0]"][0].startswith(
        "daydream_"
    )


@pytest.mark.parametrize(("status", "code"), [(403, 50001), (404, 10003)])
def test_a_channel_refusal_is_permanent(delivery, discord, store, waits, status, code):
    discord.fail("POST", CHANNEL, Canned(status, {"code": code, "message": "no"}))
    with pytest.raises(DeliveryFailed) as err:
        deliver(delivery, make_record(store, token_age_s=20 * 60))
    assert err.value.permanent and waits == [] and len(discord.requests) == 1
