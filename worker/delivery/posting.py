"""What a worker posts to Discord for a job, and where: the posting policy.

While the interaction token lives, the job's own message is edited: the
deferred /imagine answer (`@original`), or the follow-up the bot created for a
button click (`reply.message_id`). After that, a channel message sent with the
bot token mentions the user. A result is posted at most once per job: the
store's delivered marker is set after success, and channel posts carry a nonce
that Discord dedupes on, which covers a crash between the post and the marker.

Progress edits are throttled per job, skipped while rate-limited, and never
queued behind a slow Discord; the preview is built only when an edit is due.
The REST client (rest.py) and the loop thread (bridge.py) do the talking."""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shared import messages
from shared.errors import DeliveryFailed, JobNotFound, QueueUnavailable, Superseded
from shared.job import JobRecord, ReplyTarget
from shared.settings import Settings, token_safety_margin
from shared.store import JobStore
from worker.delivery.bridge import LoopThread
from worker.delivery.rest import REQUEST_TIMEOUT_S, Call, DiscordRest, RateLimited, Refused

logger = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 2000  # Discord's limit on message content
NONCE_CHARS = 25  # Discord's limit on a message nonce

# preview() -> the PNG to show now, or None; called only when an edit is due.
PreviewPng = Callable[[], bytes | None]


class Delivery:
    def __init__(self, settings: Settings, store: JobStore) -> None:
        self._margin = token_safety_margin(settings.token_lifetime_s)
        self.settings = settings
        self.store = store
        self.rest = DiscordRest(settings.discord_api_base, settings.discord_token, shared=store.claims)
        self._bridge = LoopThread()
        self._lock = threading.Lock()
        self._last_edit: dict[str, float] = {}  # job id → time.monotonic() of its last progress edit
        self._pending: dict[str, concurrent.futures.Future[None]] = {}  # job id → progress edit in flight
        # Jobs whose interaction token Discord refused (401/404): every further use
        # would be an invalid request, 10,000 of which in 10 minutes ban the host's IP.
        self._dead_tokens: set[str] = set()

    # -- progress ------------------------------------------------------------
    def progress_due(self, job: JobRecord) -> bool:
        """Whether a progress edit would be sent now (so a preview is worth making)."""
        if not self._token_alive(job) or self.rest.near_ban:
            return False
        with self._lock:
            pending = self._pending.get(job.id)
            if pending is not None and not pending.done():
                return False  # never queue edits behind a slow Discord: the next one is fresher anyway
            return time.monotonic() - self._last_edit.get(job.id, -float("inf")) >= self.settings.progress_interval_s

    def progress(self, job: JobRecord, fraction: float, preview: PreviewPng | None) -> None:
        """Show `(37%)` and a small preview on the job's message. Cosmetic:
        throttled, skipped while rate-limited, failures only logged."""
        if not self.progress_due(job):
            return
        with self._lock:
            self._last_edit[job.id] = time.monotonic()
        payload: dict[str, Any] = {
            "content": _fit(messages.progress(job, fraction)),
            "allowed_mentions": _allowed_mentions(job),
        }
        png = preview() if preview is not None else None
        file = None
        if png is not None:
            # Only the new preview is listed, so earlier ones are removed.
            payload["attachments"] = [{"id": 0, "filename": messages.PREVIEW_FILENAME}]
            file = (messages.PREVIEW_FILENAME, png)
        call = self._webhook_edit(job.reply, payload, file)
        # Fire and forget: sampling never waits on Discord. result() and
        # failure() wait for it, so a late preview cannot overwrite them.
        edit = self._bridge.submit(self._edit_progress(job.id, call))
        with self._lock:
            self._pending[job.id] = edit

    def waiting_line(self, job: JobRecord, content: str) -> bool:
        """Edit a waiting job's line (its place and ETA moved). Cosmetic like progress:
        one try, none while rate-limited, near the invalid-request ban or with a dead
        token; the ❌ under it stays. True if Discord took the edit."""
        if not self._token_alive(job) or self.rest.near_ban:
            return False
        payload: dict[str, Any] = {"content": _fit(content), "allowed_mentions": _allowed_mentions(job)}
        try:
            self._bridge.run(self.rest.send(self._webhook_edit(job.reply, payload, None), patient=False))
            return True
        except RateLimited:
            return False
        except Refused as exc:
            if exc.token_gone:
                self._token_died(job.id, exc)
            logger.info("waiting line of job %s not edited (cosmetic): %s", job.id, exc)
            return False
        except DeliveryFailed as exc:
            logger.info("waiting line of job %s not edited (cosmetic): %s", job.id, exc)
            return False

    def flush_progress(self, job_id: str | None = None, timeout: float = REQUEST_TIMEOUT_S) -> None:
        """Wait for the progress edits in flight (of one job, or all)."""
        with self._lock:
            futures = [f for j, f in self._pending.items() if job_id is None or j == job_id]
        concurrent.futures.wait(futures, timeout=timeout)

    def _settle_progress(self, job_id: str) -> None:
        self.flush_progress(job_id)
        with self._lock:
            self._pending.pop(job_id, None)
            self._last_edit.pop(job_id, None)

    async def _edit_progress(self, job_id: str, call: Call) -> None:
        try:
            await self.rest.send(call, patient=False)
        except RateLimited as exc:
            logger.info("progress edit of job %s skipped: rate-limited for %.2f s", job_id, exc.retry_after)
        except Refused as exc:
            if exc.token_gone:
                self._token_died(job_id, exc)
            logger.info("progress edit of job %s failed (cosmetic, ignored): %s", job_id, exc)
        except DeliveryFailed as exc:
            logger.info("progress edit of job %s failed (cosmetic, ignored): %s", job_id, exc)
        except Exception:  # progress is cosmetic: log the bug, keep sampling
            logger.exception("progress edit of job %s hit an unexpected error", job_id)

    # -- the result and failures ---------------------------------------------------
    def result(
        self,
        job: JobRecord,
        data: bytes,
        filename: str,
        content: str,
        components: list[dict[str, Any]],
        attempt: int | None = None,
    ) -> tuple[int, str]:
        """Post the finished image with its buttons; return (message id, jump url).
        Idempotent: a job already delivered returns its message and posts nothing.
        With `attempt`, only while that attempt is the job's current one (Superseded)."""
        if not job.reply.is_discord:
            return 0, ""
        delivered = self.store.claims.delivered(job.id)
        if delivered is not None:
            logger.info("job %s was already delivered as message %d; not posting again", job.id, delivered[0])
            return delivered
        job = self._fresh(job)
        if attempt is not None and job.attempts != attempt:
            raise Superseded(job.id, attempt, job.attempts)
        self._settle_progress(job.id)  # a late preview edit must never overwrite the result
        message = self._bridge.run(self._post_result(job, data, filename, content, components))
        message_id = int(message["id"])
        channel_id = int(message.get("channel_id") or job.reply.channel_id or 0)
        url = messages.jump_url(job.reply.guild_id, channel_id, message_id)
        if self.store.claims.mark_delivered(job.id, message_id, url):
            try:
                self.store.update_reply(job.id, message_id=message_id, message_url=url)
            except JobNotFound:
                logger.warning("job %s was delivered but its record has expired", job.id)
        else:
            # Two workers raced on one job; the first marker stays the record's answer.
            logger.warning("job %s was delivered by another worker at the same time", job.id)
        logger.info("job %s delivered as message %d", job.id, message_id)
        return message_id, url

    def failure(self, job: JobRecord, text: str) -> None:
        """Tell the user the job failed. Never raises: it runs inside error handling."""
        if not job.reply.is_discord:
            return
        try:
            if self.store.claims.delivered(job.id) is not None:
                # The result is out (the job failed after posting it): keep it on screen.
                logger.info("job %s failed after its result was delivered; leaving the result", job.id)
                return
            job = self._fresh(job)
            self._settle_progress(job.id)
            self._bridge.run(self._post_failure(job, text))
        except (DeliveryFailed, QueueUnavailable) as exc:
            logger.warning("could not tell the user that job %s failed: %s", job.id, exc)
        except Exception:  # a bug here must not turn a handled failure into a crash
            logger.exception("could not tell the user that job %s failed", job.id)

    def notice(self, channel_id: int, content: str, file: tuple[str, bytes] | None = None) -> bool:
        """A bot message in another channel (the server's mod log). Best effort: logged, never
        raised; whether it was posted."""
        payload: dict[str, Any] = {"content": _fit(content), "allowed_mentions": {"parse": []}}
        if file is not None:
            payload["attachments"] = [{"id": 0, "filename": file[0]}]
        path = f"/channels/{channel_id}/messages"
        call = Call("POST", path, f"POST {path}", f"channels/{channel_id}", payload, file, bot_auth=True)
        try:
            if not self.settings.discord_token:
                raise DeliveryFailed(messages.no_bot_token(), permanent=True)
            self._bridge.run(self.rest.send(call, patient=True))
        except (DeliveryFailed, RateLimited, Refused) as exc:
            logger.warning("could not post to channel %s: %s", channel_id, exc)
            return False
        return True

    def close(self) -> None:
        """Finish the edits in flight, close the HTTP session, stop the loop."""
        self.flush_progress(timeout=5)
        self._bridge.close(self.rest.close())

    def _fresh(self, job: JobRecord) -> JobRecord:
        """The stored record (its reply target may have changed since the job started);
        a token found dead meanwhile is recorded there, for every later attempt."""
        fresh = self.store.find(job.id) or job
        if job.id in self._dead_tokens and self._token_alive_by_time(fresh.reply):
            fresh = self.store.update_reply(job.id, token_expires_at=time.time())
        return fresh

    def _token_alive(self, job: JobRecord) -> bool:
        return job.id not in self._dead_tokens and self._token_alive_by_time(job.reply)

    def _token_alive_by_time(self, reply: ReplyTarget) -> bool:
        return _token_alive(reply, self._margin)

    def _token_died(self, job_id: str, exc: Refused) -> None:
        logger.info("job %s: the interaction token is dead (%s); using the channel from now on", job_id, exc)
        with self._lock:
            self._dead_tokens.add(job_id)

    async def _post_result(
        self, job: JobRecord, data: bytes, filename: str, content: str, components: list[dict[str, Any]]
    ) -> dict[str, Any]:
        payload = {
            "content": _fit(content),
            "components": components,
            "attachments": [{"id": 0, "filename": filename}],
            "allowed_mentions": _allowed_mentions(job),
        }
        file = (filename, data)
        if self._token_alive(job):
            try:
                return await self.rest.send(self._webhook_edit(job.reply, payload, file), patient=True)
            except Refused as exc:
                if not exc.token_gone:
                    raise DeliveryFailed(f"Discord refused the result ({exc}).") from None
                self._token_died(job.id, exc)
        return await self._channel_post(job, payload, file, purpose="result")

    async def _post_failure(self, job: JobRecord, text: str) -> None:
        payload = {
            "content": _fit(messages.failed(job, text)),
            "components": [],
            "attachments": [],  # drop the last progress preview
            "allowed_mentions": _allowed_mentions(job),
        }
        if self._token_alive(job):
            try:
                await self.rest.send(self._webhook_edit(job.reply, payload, None), patient=True)
                return
            except Refused as exc:
                if not exc.token_gone:
                    raise DeliveryFailed(f"Discord refused the failure message ({exc}).") from None
                self._token_died(job.id, exc)
        await self._channel_post(job, payload, None, purpose="failure")

    async def _channel_post(
        self, job: JobRecord, payload: dict[str, Any], file: tuple[str, bytes] | None, purpose: str
    ) -> dict[str, Any]:
        channel_id = job.reply.channel_id
        if channel_id is None:
            raise DeliveryFailed(messages.no_channel(), permanent=True)
        if not self.settings.discord_token:
            raise DeliveryFailed(messages.no_bot_token(), permanent=True)
        payload = {
            **payload,
            "content": _fit(_with_mention(payload["content"], job.user_id)),
            # Discord drops a second message with the same nonce: a retry after a
            # lost answer (or a crash before the marker was set) posts nothing new.
            "nonce": _nonce(purpose, job.id),
            "enforce_nonce": True,
        }
        path = f"/channels/{channel_id}/messages"
        call = Call("POST", path, f"POST {path}", f"channels/{channel_id}", payload, file, bot_auth=True)
        try:
            return await self.rest.send(call, patient=True)
        except Refused as exc:
            # 403 and 404 on a channel are Discord's last word: asking again only
            # counts toward its invalid-request limit.
            permanent = exc.status in {403, 404}
            if exc.missing_permissions:
                raise DeliveryFailed(messages.channel_refused(channel_id), permanent=True) from None
            raise DeliveryFailed(messages.channel_refused(channel_id, str(exc)), permanent=permanent) from None

    def _webhook_edit(self, reply: ReplyTarget, payload: dict[str, Any], file: tuple[str, bytes] | None) -> Call:
        target = str(reply.message_id) if reply.message_id else "@original"
        token = reply.interaction_token or ""
        # The bucket is keyed by a digest so the token itself sits in no dict a debugger prints.
        route = "webhooks/" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return Call(
            "PATCH",
            f"/webhooks/{reply.application_id}/{token}/messages/{target}",
            f"PATCH /webhooks/{reply.application_id}/<token>/messages/{target}",
            route,
            payload,
            file,
        )


# -- small pure helpers ------------------------------------------------------
def _token_alive(reply: ReplyTarget, margin: float) -> bool:
    return bool(
        reply.application_id
        and reply.interaction_token
        and reply.token_expires_at is not None
        and time.time() < reply.token_expires_at - margin
    )


def _allowed_mentions(job: JobRecord) -> dict[str, list[Any]]:
    # The prompt is user text: it must never ping @everyone or a role.
    return {"users": [job.user_id]} if job.user_id else {"parse": []}


def _with_mention(content: str, user_id: int | None) -> str:
    if user_id and f"<@{user_id}>" not in content:
        return f"<@{user_id}> {content}"
    return content


def _fit(content: str) -> str:
    return content if len(content) <= MAX_CONTENT_CHARS else content[: MAX_CONTENT_CHARS - 1] + "…"


def _nonce(purpose: str, job_id: str) -> str:
    return hashlib.sha256(f"{purpose}:{job_id}".encode()).hexdigest()[:NONCE_CHARS]
