"""Posting a job's progress and result to Discord through its REST API (v10).

While the interaction token lives, the job's own message is edited: the
deferred /imagine answer (`@original`), or the follow-up the bot created for a
button click (`reply.message_id`). After that, a channel message sent with the
bot token mentions the user. A result is posted at most once per job: a Redis
marker is set after success, and channel posts carry a nonce that Discord
dedupes on, which covers a crash between the post and the marker.

The worker is synchronous (RQ), so `Delivery` is a sync facade over one asyncio
event loop running in a background thread, not an `asyncio.run` per call:
- one aiohttp session keeps its connection to Discord alive, so a progress edit
  every ~2 s does not pay a new TLS handshake each time;
- progress edits are fire-and-forget on that loop: sampling never waits on
  Discord's latency;
- rate-limit state lives on the loop thread alone, and any thread may call in
  (the heartbeat thread reports failures while the job thread samples), even a
  thread that is itself running an event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import mimetypes
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import redis

from shared import keys
from shared.errors import DeliveryFailed, JobNotFound
from shared.job import JobRecord, ReplyTarget
from shared.settings import RECORD_TTL_S, Settings, token_safety_margin
from shared.store import JobStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)  # after a 5xx or a connection error: 5 tries in all
MAX_RATE_LIMIT_RETRIES = 5
MAX_RATE_LIMIT_WAIT_S = 120.0  # a longer wait fails clearly rather than holding the GPU worker
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 that names no wait (a proxy's, not Discord's)
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # a 10 MiB upload on a slow uplink
MAX_CONTENT_CHARS = 2000  # Discord's limit on message content
NONCE_CHARS = 25  # Discord's limit on a message nonce
USER_AGENT = "DiscordBot (daydream-bot, 0.1.0)"  # Discord asks bots for this form
GLOBAL_ROUTE = "global"

# Discord's JSON error codes that change what we do.
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027


class _DiscordRefused(Exception):
    """A 4xx answer other than 429. Never retried as is: many invalid requests
    in 10 minutes get the bot's IP banned."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def token_gone(self) -> bool:
        """The interaction token (or the message it edits) is no longer usable."""
        return self.status in {401, 404} or self.code in {INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE}


class _RateLimited(Exception):
    """Raised instead of waiting, for requests that are not worth a wait (progress)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate-limited for {retry_after:.2f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Call:
    method: str
    path: str  # under the API base; may hold the interaction token, so it is never logged
    label: str  # what logs and errors show instead of the path
    route: str  # the rate-limit bucket: the route's major parameter
    payload: dict[str, Any]
    file: tuple[str, bytes] | None = None  # (filename, data)
    bot_auth: bool = False


class Delivery:
    def __init__(self, settings: Settings, store: JobStore) -> None:
        self._margin = token_safety_margin(settings.token_lifetime_s)
        self.settings = settings
        self.store = store
        self.api_base = settings.discord_api_base.rstrip("/")
        # How to wait out a rate limit or a backoff; tests swap in a recorder.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None  # made and used on the loop thread only
        self._blocked_until: dict[str, float] = {}  # route → time.monotonic(); loop thread only
        self._last_edit: dict[str, float] = {}  # job id → time.monotonic() of its last progress edit
        self._pending: dict[str, concurrent.futures.Future[None]] = {}  # job id → progress edit in flight

    # -- the public, synchronous API ------------------------------------
    def progress(self, record: JobRecord, fraction: float, preview_png: bytes | None) -> None:
        """Show `(37%)` and a small preview on the job's message. Cosmetic:
        throttled, skipped while rate-limited, failures only logged."""
        if not _token_alive(record.reply, self._margin):
            return
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(record.id)
            if pending is not None and not pending.done():
                return  # never queue edits behind a slow Discord: the next one is fresher anyway
            if now - self._last_edit.get(record.id, -float("inf")) < self.settings.progress_interval_s:
                return
            self._last_edit[record.id] = now
        percent = round(min(max(fraction, 0.0), 1.0) * 100)
        payload: dict[str, Any] = {
            "content": _fit(f"{record.title} - {record.mention()} ({percent}%)"),
            "allowed_mentions": _allowed_mentions(record),
        }
        file = None
        if preview_png is not None:
            # Only the new preview is listed, so earlier ones are removed.
            payload["attachments"] = [{"id": 0, "filename": "preview.png"}]
            file = ("preview.png", preview_png)
        call = self._webhook_edit(record.reply, payload, file)
        # Fire and forget: sampling never waits on Discord. result() and
        # failure() wait for it, so a late preview cannot overwrite them.
        edit = asyncio.run_coroutine_threadsafe(self._edit_progress(record.id, call), self._loop_now())
        with self._lock:
            self._pending[record.id] = edit

    def result(
        self, record: JobRecord, data: bytes, filename: str, content: str, components: list[dict[str, Any]]
    ) -> tuple[int, str]:
        """Post the finished image with its buttons; return (message id, jump url).
        Idempotent: a job already delivered returns its message and posts nothing."""
        if not _has_target(record.reply):
            return 0, ""
        delivered = self._delivered(record.id)
        if delivered is not None:
            logger.info("job %s was already delivered as message %d; not posting again", record.id, delivered[0])
            return delivered
        record = self._fresh(record)
        self._settle_progress(record.id)  # a late preview edit must never overwrite the result
        message = self._run(self._post_result(record, data, filename, content, components))
        message_id = int(message["id"])
        channel_id = int(message.get("channel_id") or record.reply.channel_id or 0)
        url = jump_url(record.reply.guild_id, channel_id, message_id)
        self._mark_delivered(record.id, message_id, url)
        logger.info("job %s delivered as message %d", record.id, message_id)
        return message_id, url

    def failure(self, record: JobRecord, text: str) -> None:
        """Tell the user the job failed. Never raises: it runs inside error handling."""
        if not _has_target(record.reply):
            return
        try:
            if self._delivered(record.id) is not None:
                # The result is out (the job failed after posting it): keep it on screen.
                logger.info("job %s failed after its result was delivered; leaving the result", record.id)
                return
            record = self._fresh(record)
            self._settle_progress(record.id)
            self._run(self._post_failure(record, text))
        except (DeliveryFailed, redis.RedisError) as exc:
            logger.warning("could not tell the user that job %s failed: %s", record.id, exc)
        except Exception:  # a bug here must not turn a handled failure into a crash
            logger.exception("could not tell the user that job %s failed", record.id)

    def flush_progress(self, job_id: str | None = None, timeout: float = REQUEST_TIMEOUT_S) -> None:
        """Wait for the progress edits in flight (of one job, or all)."""
        with self._lock:
            futures = [f for j, f in self._pending.items() if job_id is None or j == job_id]
        concurrent.futures.wait(futures, timeout=timeout)

    def close(self) -> None:
        """Finish the edits in flight, close the HTTP session, stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        self.flush_progress(timeout=5)
        asyncio.run_coroutine_threadsafe(self._close_session(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    # -- Redis: the delivered-marker and the fresh record ----------------
    def _delivered(self, job_id: str) -> tuple[int, str] | None:
        raw = self.store.redis.get(keys.delivery_lock(job_id))
        if raw is None:
            return None
        marker = json.loads(raw)
        return int(marker["message_id"]), str(marker["message_url"])

    def _mark_delivered(self, job_id: str, message_id: int, url: str) -> None:
        marker = json.dumps({"message_id": message_id, "message_url": url})
        if not self.store.redis.set(keys.delivery_lock(job_id), marker, nx=True, ex=RECORD_TTL_S):
            # Two workers raced on one job (a recovery sweep's misjudgement); the
            # first marker stays the record's answer.
            logger.warning("job %s was delivered by another worker at the same time", job_id)
            return
        try:
            self.store.update_reply(job_id, message_id=message_id, message_url=url)
        except JobNotFound:
            logger.warning("job %s was delivered but its record has expired", job_id)

    def _fresh(self, record: JobRecord) -> JobRecord:
        """The stored record (its reply target may have changed since the job started)."""
        try:
            return self.store.get(record.id)
        except JobNotFound:
            return record

    def _settle_progress(self, job_id: str) -> None:
        self.flush_progress(job_id)
        with self._lock:
            self._pending.pop(job_id, None)
            self._last_edit.pop(job_id, None)

    # -- the event loop thread -------------------------------------------
    def _loop_now(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                # Started lazily: a Delivery built before a fork still works in the child.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="daydream-delivery", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop_now()).result()

    async def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT})
        return self._session

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- what is posted ----------------------------------------------------
    async def _edit_progress(self, job_id: str, call: _Call) -> None:
        try:
            await self._send(call, patient=False)
        except _RateLimited as exc:
            logger.info("progress edit of job %s skipped: rate-limited for %.2f s", job_id, exc.retry_after)
        except (_DiscordRefused, DeliveryFailed) as exc:
            logger.info("progress edit of job %s failed (cosmetic, ignored): %s", job_id, exc)
        except Exception:  # progress is cosmetic: log the bug, keep sampling
            logger.exception("progress edit of job %s hit an unexpected error", job_id)

    async def _post_result(
        self, record: JobRecord, data: bytes, filename: str, content: str, components: list[dict[str, Any]]
    ) -> dict[str, Any]:
        payload = {
            "content": _fit(content),
            "components": components,
            "attachments": [{"id": 0, "filename": filename}],
            "allowed_mentions": _allowed_mentions(record),
        }
        file = (filename, data)
        if _token_alive(record.reply, self._margin):
            try:
                return await self._send(self._webhook_edit(record.reply, payload, file), patient=True)
            except _DiscordRefused as exc:
                if not exc.token_gone:
                    raise DeliveryFailed(f"Discord refused the result ({exc}).") from None
                logger.info("job %s: the interaction was refused (%s); posting in the channel", record.id, exc)
        return await self._channel_post(record, payload, file, purpose="result")

    async def _post_failure(self, record: JobRecord, text: str) -> None:
        payload = {
            "content": _fit(f"{record.title} - {record.mention()} — failed: {text}"),
            "components": [],
            "attachments": [],  # drop the last progress preview
            "allowed_mentions": _allowed_mentions(record),
        }
        if _token_alive(record.reply, self._margin):
            try:
                await self._send(self._webhook_edit(record.reply, payload, None), patient=True)
                return
            except _DiscordRefused as exc:
                if not exc.token_gone:
                    raise DeliveryFailed(f"Discord refused the failure message ({exc}).") from None
        await self._channel_post(record, payload, None, purpose="failure")

    async def _channel_post(
        self, record: JobRecord, payload: dict[str, Any], file: tuple[str, bytes] | None, purpose: str
    ) -> dict[str, Any]:
        channel_id = record.reply.channel_id
        if channel_id is None:
            raise DeliveryFailed("The interaction expired and the job names no channel, so nothing could be posted.")
        if not self.settings.discord_token:
            raise DeliveryFailed(
                "DISCORD_TOKEN is not set on this worker, so it cannot post in the channel once the "
                "interaction has expired. Set it and restart the worker."
            )
        payload = {
            **payload,
            "content": _fit(_with_mention(payload["content"], record.user_id)),
            # Discord drops a second message with the same nonce: a retry after a
            # lost answer (or a crash before the marker was set) posts nothing new.
            "nonce": _nonce(purpose, record.id),
            "enforce_nonce": True,
        }
        path = f"/channels/{channel_id}/messages"
        call = _Call("POST", path, f"POST {path}", f"channels/{channel_id}", payload, file, bot_auth=True)
        try:
            return await self._send(call, patient=True)
        except _DiscordRefused as exc:
            if exc.status == 403 and exc.code in {MISSING_ACCESS, MISSING_PERMISSIONS}:
                raise DeliveryFailed(
                    f"The bot lacks Send Messages / Attach Files in <#{channel_id}>, so it could not post there. "
                    "Ask a server admin to grant them."
                ) from None
            raise DeliveryFailed(f"Discord refused the message in <#{channel_id}> ({exc}).") from None

    def _webhook_edit(self, reply: ReplyTarget, payload: dict[str, Any], file: tuple[str, bytes] | None) -> _Call:
        target = str(reply.message_id) if reply.message_id else "@original"
        token = reply.interaction_token or ""
        # The bucket is keyed by a digest so the token itself sits in no dict a debugger prints.
        route = "webhooks/" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return _Call(
            "PATCH",
            f"/webhooks/{reply.application_id}/{token}/messages/{target}",
            f"PATCH /webhooks/{reply.application_id}/<token>/messages/{target}",
            route,
            payload,
            file,
        )

    # -- HTTP with Discord's rate limits and retries -------------------------
    async def _send(self, call: _Call, *, patient: bool) -> dict[str, Any]:
        """One Discord request. Patient (results, failures): wait out rate limits,
        retry 5xx and connection errors with backoff. Impatient (progress): one
        try, and none at all while the route is rate-limited."""
        failures = 0
        limited = 0
        while True:
            wait = self._blocked_for(call.route)
            if wait > 0:
                if not patient:
                    raise _RateLimited(wait)
                await self.sleep(wait)
            try:
                status, headers, body = await self._request(call)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # The exception's text may hold the URL, and with it the token: name its type only.
                problem = f"could not reach Discord ({type(exc).__name__})"
            else:
                self._note_bucket(call.route, headers)
                if status == 429:
                    retry_after = _retry_after(headers, body)
                    is_global = bool(isinstance(body, dict) and body.get("global")) or "X-RateLimit-Global" in headers
                    self._block(GLOBAL_ROUTE if is_global else call.route, retry_after)
                    logger.warning("%s: rate-limited (429), retry after %.2f s", call.label, retry_after)
                    if not patient:
                        raise _RateLimited(retry_after)
                    limited += 1
                    if limited > MAX_RATE_LIMIT_RETRIES or retry_after > MAX_RATE_LIMIT_WAIT_S:
                        raise DeliveryFailed(
                            f"Discord kept rate-limiting the bot (asked to wait {retry_after:.0f} s). "
                            "Try again in a few minutes."
                        )
                    continue  # the wait happens at the top, through the route's block
                if status < 400:
                    return body if isinstance(body, dict) else {}
                if status < 500:
                    code = body.get("code") if isinstance(body, dict) else None
                    message = body.get("message", "") if isinstance(body, dict) else ""
                    raise _DiscordRefused(status, code, str(message))
                problem = f"Discord answered HTTP {status}"
            if not patient or failures >= len(RETRY_BACKOFF_S):
                raise DeliveryFailed(
                    f"{problem} on {failures + 1} tries in a row, so the message could not be posted. "
                    "Try again in a few minutes."
                )
            logger.warning("%s: %s; retrying in %.1f s", call.label, problem, RETRY_BACKOFF_S[failures])
            await self.sleep(RETRY_BACKOFF_S[failures])
            failures += 1

    async def _request(self, call: _Call) -> tuple[int, Mapping[str, str], Any]:
        session = await self._session_now()
        headers = {"Authorization": f"Bot {self.settings.discord_token}"} if call.bot_auth else {}
        url = self.api_base + call.path
        body: aiohttp.FormData | None = None
        if call.file is not None:
            # Built per attempt: aiohttp refuses to send one FormData twice.
            filename, data = call.file
            body = aiohttp.FormData(quote_fields=False)
            body.add_field("payload_json", json.dumps(call.payload), content_type="application/json")
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            body.add_field("files[0]", data, filename=filename, content_type=content_type)
        kwargs: dict[str, Any] = {"data": body} if body is not None else {"json": call.payload}
        async with session.request(call.method, url, headers=headers, **kwargs) as resp:
            raw = await resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None  # a proxy's HTML error page
            return resp.status, resp.headers, parsed

    def _blocked_for(self, route: str) -> float:
        until = max(self._blocked_until.get(route, 0.0), self._blocked_until.get(GLOBAL_ROUTE, 0.0))
        return max(0.0, until - time.monotonic())

    def _block(self, route: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._blocked_until) > 1000:  # one route per interaction token: forget the lapsed ones
            self._blocked_until = {r: t for r, t in self._blocked_until.items() if t > now}
        self._blocked_until[route] = max(self._blocked_until.get(route, 0.0), now + seconds)

    def _note_bucket(self, route: str, headers: Mapping[str, str]) -> None:
        """`X-RateLimit-Remaining: 0` means the next request on this route would
        get a 429: hold it until the bucket resets."""
        if headers.get("X-RateLimit-Remaining") == "0":
            try:
                self._block(route, float(headers.get("X-RateLimit-Reset-After", DEFAULT_RETRY_AFTER_S)))
            except ValueError:
                self._block(route, DEFAULT_RETRY_AFTER_S)


# -- small pure helpers ------------------------------------------------------
def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def _has_target(reply: ReplyTarget) -> bool:
    """Command-line jobs have neither an interaction nor a channel."""
    return reply.application_id is not None or reply.channel_id is not None


def _token_alive(reply: ReplyTarget, margin: float) -> bool:
    return bool(
        reply.application_id
        and reply.interaction_token
        and reply.token_expires_at is not None
        and time.time() < reply.token_expires_at - margin
    )


def _allowed_mentions(record: JobRecord) -> dict[str, list[Any]]:
    # The prompt is user text: it must never ping @everyone or a role.
    return {"users": [record.user_id]} if record.user_id else {"parse": []}


def _with_mention(content: str, user_id: int | None) -> str:
    if user_id and f"<@{user_id}>" not in content:
        return f"<@{user_id}> {content}"
    return content


def _fit(content: str) -> str:
    return content if len(content) <= MAX_CONTENT_CHARS else content[: MAX_CONTENT_CHARS - 1] + "…"


def _nonce(purpose: str, job_id: str) -> str:
    return hashlib.sha256(f"{purpose}:{job_id}".encode()).hexdigest()[:NONCE_CHARS]


def _retry_after(headers: Mapping[str, str], body: Any) -> float:
    """Seconds to wait after a 429: the JSON body's float is the precise one."""
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(0.0, float(body["retry_after"]))
    try:
        return max(0.0, float(headers.get("Retry-After", DEFAULT_RETRY_AFTER_S)))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
