"""Between a request and its handler, as Discord's edge does: the record of every
request, injected faults and delays, the bot token check, and rate limits with
Discord's headers and 429 bodies."""

from __future__ import annotations

import asyncio
import hashlib
import http
import logging
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .constants import API_PREFIX, INVALID_REQUEST_WINDOW_S
from .core import StandinCore
from .state import Fault, Json, Request
from .wire import ApiError, json_response, parse_body

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Limits(StandinCore):
    # --- fault injection ------------------------------------------------------------

    def fail(
        self,
        pattern: str,
        status: int = 429,
        *,
        retry_after: float = 0.3,
        is_global: bool = False,
        shared: bool = False,
        times: int | None = 1,
        body: Json | None = None,
    ) -> Fault:
        """Answer `times` requests matching `pattern` (`"POST /channels/*/messages"`) with `status`.

        429 comes with Discord's headers and `{"message", "retry_after", "global"}` (scope
        "user", or "global", or "shared" — which Discord does not count as invalid);
        other statuses with `body` or Discord's generic error for the status."""
        fault = Fault(
            pattern,
            status=status,
            retry_after=retry_after,
            is_global=is_global,
            shared=shared,
            times=times,
            body=body,
        )
        self.faults.append(fault)
        return fault

    def slow(self, pattern: str, delay_s: float, *, times: int | None = None) -> Fault:
        """Answer matching requests `delay_s` late (they are still recorded as received on time)."""
        fault = Fault(pattern, delay_s=delay_s, times=times)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- what Discord would hold against the bot's IP -------------------------------------

    def invalid_requests(self, window_s: float = INVALID_REQUEST_WINDOW_S) -> list[Request]:
        """The 401, 403 and (not shared) 429 answers of the last `window_s` seconds: Discord bans
        an IP for a while after INVALID_REQUEST_LIMIT of them in 10 minutes."""
        since = time.monotonic() - window_s
        return [r for r in self.requests if r.invalid and r.received_at >= since]

    @property
    def invalid_request_count(self) -> int:
        return len(self.invalid_requests())

    # --- the middleware ---------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        record = Request(
            request.method,
            request.path[len(API_PREFIX) :],
            time.monotonic(),
            query=dict(request.query),
            user_agent=request.headers.get("User-Agent", ""),
            content_type=request.content_type if request.body_exists else "",
        )
        request["received_at"] = record.received_at
        self.requests.append(record)
        try:
            await self._record_body(request, record)
            response = await self._answer(request, handler, record)
        except ApiError as error:
            response = error.response()
        except web.HTTPException as error:  # aiohttp's own 404/405 for unknown routes
            response = ApiError(error.status, f"{error.status}: {error.reason}", 0).response()
        record.status = response.status
        response.headers.setdefault("Via", "1.1 google")  # discord.py treats a 429 without Via as a Cloudflare ban
        logger.debug("%s %s -> %s", record.method, record.path, record.status)
        self._changed()
        return response

    @staticmethod
    async def _record_body(request: web.Request, record: Request) -> None:
        """Keep what was sent, for checks against Discord's schemas; a body that does not
        parse is kept as its text (the handler answers it with Discord's error)."""
        if not request.body_exists:
            return
        raw = await request.read()  # cached by aiohttp: the handler reads the same bytes
        try:
            body, uploads = parse_body(request.headers.get("Content-Type", ""), raw)
        except ApiError:
            record.body = raw.decode(errors="replace")
            return
        record.body, record.files = body, tuple(sorted(uploads))

    async def _answer(self, request: web.Request, handler: Handler, record: Request) -> web.StreamResponse:
        faults = [f for f in self.faults if f.matches(record.method, record.path)]
        failure = next((f for f in faults if f.status is not None), None)
        delays = [f for f in faults if f.delay_s and f is not failure]
        for fault in [*delays, *([failure] if failure else [])]:
            fault.hits += 1  # counted before any await, so concurrent requests cannot both take a `times=1` fault
        for fault in delays:
            await asyncio.sleep(fault.delay_s)  # the injected slowness itself
        bucket, major = self._bucket(request)
        if failure is not None:
            record.fault = "injected"
            if failure.status == 429:
                record.rate_limit_scope = "global" if failure.is_global else "shared" if failure.shared else "user"
                return self._rate_limited(failure.retry_after, record.rate_limit_scope, bucket)
            return self._failure(failure)
        if not self._is_public(record.path) and request.headers.get("Authorization") != f"Bot {self.token}":
            raise ApiError(401, "401: Unauthorized", 0)  # a bot token goes with its "Bot " prefix
        count, window_end = self._buckets.get(major, (0, 0.0))
        now = time.monotonic()
        if now >= window_end:
            count, window_end = 0, now + self.rate_window_s
        count += 1
        self._buckets[major] = (count, window_end)
        if count > self.rate_limit:
            record.fault, record.rate_limit_scope = "rate_limit", "user"
            return self._rate_limited(window_end - now, "user", bucket)
        response = await handler(request)
        self._rate_headers(response, bucket, self.rate_limit, max(0, self.rate_limit - count), window_end - now)
        return response

    @staticmethod
    def _is_public(path: str) -> bool:
        # Interaction callbacks and webhooks are authorised by their token in the path.
        return path == "/gateway" or path.startswith(("/interactions/", "/webhooks/"))

    # --- rate limits ------------------------------------------------------------------------

    def _bucket(self, request: web.Request) -> tuple[str, str]:
        """(Discord's bucket hash for the route, the key it is counted under: route + major parameter)."""
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else request.path
        bucket = hashlib.sha1(f"{request.method} {route}".encode()).hexdigest()[:16]
        major = next((info[k] for k in ("channel_id", "guild_id", "token") if k in info), "")
        return bucket, f"{bucket}:{major}"

    @staticmethod
    def _rate_headers(
        response: web.StreamResponse, bucket: str, limit: int, remaining: int, reset_after: float
    ) -> None:
        reset_after = max(reset_after, 0.0)
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = f"{time.time() + reset_after:.3f}"
        response.headers["X-RateLimit-Reset-After"] = f"{reset_after:.3f}"
        response.headers["X-RateLimit-Bucket"] = bucket

    def _rate_limited(self, retry_after: float, scope: str, bucket: str) -> web.Response:
        is_global = scope == "global"
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3), "global": is_global}
        response = json_response(body, status=429)
        response.headers["Retry-After"] = str(math.ceil(retry_after))
        response.headers["X-RateLimit-Scope"] = scope
        if is_global:
            response.headers["X-RateLimit-Global"] = "true"
        self._rate_headers(response, bucket, self.rate_limit, 0, retry_after)
        return response

    @staticmethod
    def _failure(fault: Fault) -> web.Response:
        assert fault.status is not None
        body = fault.body or {"message": f"{fault.status}: {http.HTTPStatus(fault.status).phrase}", "code": 0}
        return json_response(body, status=fault.status)
