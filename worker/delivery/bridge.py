"""One asyncio event loop in a background thread, for a synchronous worker.

RQ runs jobs synchronously, but Discord is best talked to from one loop: one
aiohttp session keeps its connection alive (no TLS handshake per progress
edit), rate-limit state lives on the loop thread alone, progress edits are
fire-and-forget, and any thread may call in (the heartbeat thread reports
failures while the job thread samples), even one running a loop of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "daydream-delivery") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                # Started lazily: a bridge built before a fork still works in the child.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; don't wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop_now())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result."""
        return self.submit(coro).result(timeout=timeout)

    def close(self, last: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run `last` (closing what lives on the loop), then stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            if last is not None:
                last.close()
            return
        if last is not None:
            asyncio.run_coroutine_threadsafe(last, loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
