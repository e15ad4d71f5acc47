"""A fake of Discord's REST API as the worker's delivery meets it: a local
aiohttp server that records every request (headers, JSON or multipart with
its files) and answers like Discord, with canned faults per route."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHANNEL_ID = 3333
ORIGINAL_ID = 5555  # the id of the deferred /imagine answer


@dataclass
class Recorded:
    method: str
    path: str  # under the API base
    headers: dict[str, str]
    payload: dict[str, Any] | None  # payload_json decoded, or the JSON body
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field → (filename, bytes)
    arrived_at: float = 0.0
    answered_at: float = 0.0


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # a slow Discord: the answer comes this late


class FakeDiscord:
    """Records requests and answers like Discord; `fail` queues canned answers for a route."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: dict[tuple[str, str], deque[Canned]] = defaultdict(deque)
        self.headers_on_success: dict[str, str] = {}
        self._next_id = 9000
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.base = ""

    def start(self) -> None:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        self.base = f"http://127.0.0.1:{port}/api/v10"

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)  # its log holds tokens; ours must not
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return self._runner.addresses[0][1]

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def fail(self, method: str, path: str, *answers: Canned) -> None:
        self.faults[(method, path)].extend(answers)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix("/api/v10")
        payload: dict[str, Any] | None = None
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "multipart/form-data":
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    files[name] = (value.filename, value.file.read())
                elif name == "payload_json":
                    payload = json.loads(value)
        elif request.can_read_body:
            payload = await request.json()
        recorded = Recorded(request.method, path, dict(request.headers), payload, files, arrived_at=time.monotonic())
        self.requests.append(recorded)
        queued = self.faults.get((request.method, path))
        canned = queued.popleft() if queued else None
        if canned is not None and canned.delay_s:
            await asyncio.sleep(canned.delay_s)
        recorded.answered_at = time.monotonic()
        if canned is not None and canned.status != 200:
            return web.json_response(canned.body, status=canned.status, headers=canned.headers)
        return web.json_response(self._message(path, payload), headers=self.headers_on_success)

    def _message(self, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if parts[0] == "webhooks":
            message_id = ORIGINAL_ID if parts[-1] == "@original" else int(parts[-1])
            channel_id = CHANNEL_ID
        else:  # POST /channels/{id}/messages
            self._next_id += 1
            message_id, channel_id = self._next_id, int(parts[1])
        return {**(payload or {}), "id": str(message_id), "channel_id": str(channel_id), "type": 0}
