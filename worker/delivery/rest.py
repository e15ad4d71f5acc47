"""A small client for Discord's REST API (v10), as a worker needs it: one
aiohttp session, Discord's rate limits kept per route and globally, 5xx and
connection errors retried with backoff, and nothing retried that Discord
refused (many invalid requests in 10 minutes get the host's IP banned).

Every worker posts for the same bot, so a hold Discord asks for (a 429) is
shared through Redis with the other workers (`SharedLimits`, the store's
claims), and refused requests are counted there in Discord's 10-minute window.

Runs on one event loop (worker/delivery/bridge.py); the interaction token sits
in request paths, so paths are never logged: each call carries a label."""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from shared import messages, metrics
from shared.errors import DaydreamError, DeliveryFailed

logger = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)  # after a 5xx or a connection error: 5 tries in all
MAX_RATE_LIMIT_RETRIES = 5
MAX_RATE_LIMIT_WAIT_S = 120.0  # a longer wait fails clearly rather than holding the GPU worker
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 that names no wait (a proxy's, not Discord's)
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # a 10 MiB upload on a slow uplink
USER_AGENT = "DiscordBot (daydream-bot, 0.1.0)"  # Discord asks bots for this form
GLOBAL_ROUTE = "global"
MAX_ROUTES = 1000  # one route per interaction token: forget the lapsed ones beyond this
INVALID_STATUSES = frozenset({401, 403, 429})  # what Discord counts toward its IP ban
NEAR_BAN = 5000  # of Discord's 10,000 invalid requests per 10 minutes: past this, only results are sent

# Discord's JSON error codes that change what we do.
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027


class Refused(Exception):
    """A 4xx answer other than 429. Never retried as is."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def token_gone(self) -> bool:
        """The interaction token (or the message it edits) is no longer usable."""
        return self.status in {401, 404} or self.code in {INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE}

    @property
    def missing_permissions(self) -> bool:
        return self.status == 403 and self.code in {MISSING_ACCESS, MISSING_PERMISSIONS}


class RateLimited(Exception):
    """Raised instead of waiting, for requests that are not worth a wait (progress)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate-limited for {retry_after:.2f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # under the API base; may hold the interaction token, so it is never logged
    label: str  # what logs and errors show instead of the path
    route: str  # the rate-limit bucket: the route's major parameter
    payload: dict[str, Any]
    file: tuple[str, bytes] | None = None  # (filename, data)
    bot_auth: bool = False


class SharedLimits(Protocol):
    """Rate-limit state every worker of the bot sees (shared/claims.py)."""

    def hold_route(self, route: str, seconds: float) -> None: ...

    def route_held_for(self, route: str) -> float: ...

    def count_invalid(self) -> int: ...


class DiscordRest:
    def __init__(self, api_base: str, bot_token: str, shared: SharedLimits | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self._bot_token = bot_token
        self._shared = shared
        self.invalid_requests = 0  # answers Discord counts against the host, by this process
        self.invalid_in_window = 0  # by every worker, in Discord's current 10 minutes (as last seen)
        # How to wait out a rate limit or a backoff; tests swap in a recorder.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._session: aiohttp.ClientSession | None = None  # made and used on the loop thread only
        self._blocked_until: dict[str, float] = {}  # route → time.monotonic(); loop thread only

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, call: Call, *, patient: bool) -> dict[str, Any]:
        """One Discord request. Patient (results, failures): wait out rate limits,
        retry 5xx and connection errors with backoff. Impatient (progress): one
        try, and none at all while the route is rate-limited."""
        failures = 0
        limited = 0
        while True:
            wait = max(self._blocked_for(call.route), self._shared_hold(call.route))
            if wait > 0:
                if not patient:
                    raise RateLimited(wait)
                await self.sleep(wait)
            retry_left = patient and failures < len(RETRY_BACKOFF_S)  # for a 5xx or a connection error
            try:
                status, headers, body = await self._request(call)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # The exception's text may hold the URL, and with it the token: name its type only.
                problem = f"could not reach Discord ({type(exc).__name__})"
                metrics.discord_unreachable(retried=retry_left)
            else:
                self._note_bucket(call.route, headers)
                scope = headers.get("X-RateLimit-Scope")
                if status in INVALID_STATUSES and not (status == 429 and scope == "shared"):
                    self._count_invalid()  # a `shared` 429 is the resource's limit, not ours: not counted
                if status == 429:
                    retry_after = _retry_after(headers, body)
                    is_global = bool(isinstance(body, dict) and body.get("global")) or "X-RateLimit-Global" in headers
                    held = GLOBAL_ROUTE if is_global else call.route
                    self._block(held, retry_after)
                    self._share_hold(held, retry_after)
                    logger.warning("%s: rate-limited (429), retry after %.2f s", call.label, retry_after)
                    limited += 1
                    waits = patient and limited <= MAX_RATE_LIMIT_RETRIES and retry_after <= MAX_RATE_LIMIT_WAIT_S
                    metrics.discord_answer(429, "global" if is_global else scope, retried=waits)
                    if not patient:
                        raise RateLimited(retry_after)
                    if not waits:
                        raise DeliveryFailed(messages.rate_limited_too_long(retry_after))
                    continue  # the wait happens at the top, through the route's block
                metrics.discord_answer(status, scope, retried=status >= 500 and retry_left)
                if status < 400:
                    return body if isinstance(body, dict) else {}
                if status < 500:
                    code = body.get("code") if isinstance(body, dict) else None
                    message = body.get("message", "") if isinstance(body, dict) else ""
                    raise Refused(status, code, str(message))
                problem = f"Discord answered HTTP {status}"
            if not retry_left:
                raise DeliveryFailed(messages.discord_unreachable(problem, failures + 1))
            logger.warning("%s: %s; retrying in %.1f s", call.label, problem, RETRY_BACKOFF_S[failures])
            await self.sleep(RETRY_BACKOFF_S[failures])
            failures += 1

    async def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT})
        return self._session

    async def _request(self, call: Call) -> tuple[int, Mapping[str, str], Any]:
        session = await self._session_now()
        headers = {"Authorization": f"Bot {self._bot_token}"} if call.bot_auth else {}
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

    # -- rate limits ---------------------------------------------------------
    @property
    def near_ban(self) -> bool:
        """So many refused requests lately that only what matters should be sent."""
        return self.invalid_in_window >= NEAR_BAN

    def _count_invalid(self) -> None:
        self.invalid_requests += 1
        if self._shared is not None:
            try:
                self.invalid_in_window = self._shared.count_invalid()
            except DaydreamError:  # Redis away: this process's count still guards it
                self.invalid_in_window = max(self.invalid_in_window, self.invalid_requests)
        else:
            self.invalid_in_window = self.invalid_requests

    def _shared_hold(self, route: str) -> float:
        if self._shared is None:
            return 0.0
        try:
            return max(self._shared.route_held_for(route), self._shared.route_held_for(GLOBAL_ROUTE))
        except DaydreamError:
            return 0.0  # Redis away: this process's own holds still apply

    def _share_hold(self, route: str, seconds: float) -> None:
        if self._shared is not None:
            try:
                self._shared.hold_route(route, seconds)
            except DaydreamError:
                logger.warning("could not share a rate-limit hold on %s with the other workers", route)

    def _blocked_for(self, route: str) -> float:
        until = max(self._blocked_until.get(route, 0.0), self._blocked_until.get(GLOBAL_ROUTE, 0.0))
        return max(0.0, until - time.monotonic())

    def _block(self, route: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._blocked_until) > MAX_ROUTES:
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


def _retry_after(headers: Mapping[str, str], body: Any) -> float:
    """Seconds to wait after a 429: the JSON body's float is the precise one."""
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return max(0.0, float(body["retry_after"]))
    try:
        return max(0.0, float(headers.get("Retry-After", DEFAULT_RETRY_AFTER_S)))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
