"""The real Daydream processes of the end-to-end suite, pointed at a Discord
stand-in and a test redis-server: `python -m daydream bot` and
`python -m daydream worker`.

Each child's output (stdout and stderr together) is drained into a log file
and kept in memory, so a failure can show what the process said. Readiness is
awaited on events, never by sleeping: the bot is up when the stand-in has a
new live gateway session, a worker when it logs that it is ready; and every
wait ends early, with the log tail, if the process exits meanwhile.

    bot = BotProcess(env, log_dir)
    await bot.start(standin)
    ...
    await bot.kill()  # SIGKILL, as a crash or an OOM kill would
    await bot.start(standin)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TypeVar

from .standin import Standin

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

BOT_START_TIMEOUT_S = 60.0
WORKER_START_TIMEOUT_S = 240.0  # model load and warm-up on a busy 2-core machine
STOP_TIMEOUT_S = 60.0  # a worker finishes its job on SIGTERM
TAIL_LINES = 60


def daydream_env(standin_env: Mapping[str, str], redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bot or worker that talks to the stand-in and the test Redis."""
    env = {
        **os.environ,
        **standin_env,
        "REDIS_URL": redis_url,
        "WORKER_HEARTBEAT_S": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return env


class ProcessExited(AssertionError):
    """The process ended while a test was waiting on it."""


class DaydreamProcess:
    """One `python -m daydream <args>` child, started and stopped by the test that owns it."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lines: list[str] = []  # of the current run, for wait_for_line
        self._line = asyncio.Event()

    # -- state ------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def tail(self) -> str:
        return "".join(self._tail)

    # -- lifecycle ----------------------------------------------------------
    async def spawn(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        self._lines = []
        self._line = asyncio.Event()  # the last run's drain left the old one set at EOF
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "daydream",
            *self.args,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._drain = asyncio.create_task(self._read_output(self._proc, self.starts))

    async def _read_output(self, proc: asyncio.subprocess.Process, run: int) -> None:
        assert proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"===== {self.name} run {run}: pid {proc.pid} =====\n")
            while raw := await proc.stdout.readline():
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                self._tail.append(line)
                self._lines.append(line)
                self._line.set()
                self._line = asyncio.Event()
        self._line.set()  # EOF: wake line waiters so they see the exit

    async def until(self, awaitable: Awaitable[T], what: str) -> T:
        """Await `awaitable`; fail at once, with the log tail, if the process exits first."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        waiter = asyncio.ensure_future(awaitable)
        exited = asyncio.ensure_future(self._proc.wait())
        try:
            done, _ = await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiter
        if self._drain is not None:
            await self._drain  # the last words of the process
        raise ProcessExited(
            f"{self.name} exited with {self._proc.returncode} while waiting for {what}; "
            f"log {self.log_path}:\n{self.tail()}"
        )

    async def wait_for_line(self, text: str, timeout: float) -> str:
        """The first line of the current run that contains `text`."""
        return (await self.wait_for_lines(text, 1, timeout))[0]

    async def wait_for_lines(self, text: str, count: int, timeout: float) -> list[str]:
        """The first `count` lines of the current run that contain `text`."""

        async def find() -> list[str]:
            found: list[str] = []
            seen = 0
            while True:
                event = self._line
                found += [line for line in self._lines[seen:] if text in line]
                seen = len(self._lines)
                if len(found) >= count:
                    return found[:count]
                await event.wait()

        try:
            return await self.until(asyncio.wait_for(find(), timeout), f"{count} line(s) with {text!r}")
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: fewer than {count} line(s) with {text!r} within {timeout} s; "
                f"log {self.log_path}:\n{self.tail()}"
            ) from None

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        if not self.alive:
            await self._reap()
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            self._proc.kill()
        await self._reap()

    async def kill(self) -> None:
        """SIGKILL: no clean-up, as when a process crashes or is OOM-killed."""
        if self.alive:
            assert self._proc is not None
            self._proc.kill()
        await self._reap()

    async def _reap(self) -> None:
        if self._proc is not None:
            await self._proc.wait()
        if self._drain is not None:
            await self._drain
            self._drain = None


class BotProcess(DaydreamProcess):
    """`daydream bot`. Up once the stand-in has a new gateway session from it
    (it syncs its commands before connecting, so /imagine is registered by then)."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str = "bot") -> None:
        super().__init__(name, ["bot"], env, log_dir)

    async def start(self, standin: Standin, timeout: float = BOT_START_TIMEOUT_S) -> None:
        before = standin.identify_count
        await self.spawn()

        def connected() -> object:
            return standin.identify_count > before and standin.live_session()

        await self.until(standin.wait_for(connected, timeout), "its gateway session")


class WorkerProcess(DaydreamProcess):
    """`daydream worker` on the CPU. Ready once it logs so: its heartbeat is in
    Redis and it is listening on the queue."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str = "e2e-worker") -> None:
        super().__init__(name, ["worker", "--name", name, "--device", "cpu"], env, log_dir)

    async def start(self, timeout: float = WORKER_START_TIMEOUT_S) -> None:
        await self.spawn()
        await self.wait_for_line(f"worker {self.name} ready on queue", timeout)
