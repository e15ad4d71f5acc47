"""`daydream worker --devices all|cuda:0,cuda:1`: one worker process per
device, supervised. Each child is a plain `daydream worker --device D` (its
own CUDA context, its own model copy, its own heartbeat and metrics port);
this process only starts them, starts again one that dies, and stops them
together.

* A child that exits on its own (killed, crashed, out of host memory) is
  started again after a pause that doubles while it keeps dying young
  (RESTART_BACKOFF_S), under a new name: its old name's RQ registration and
  leases are left to lapse, and its job is re-queued by the lease sweep.
* A child that exits with 0 stopped as asked (`--burst` found the queues
  empty, or someone sent it SIGTERM): it is not started again.
* A child that fails before it ever announced itself in Redis (a model that
  cannot be loaded, a bad setting) would fail the same way again: every
  worker is stopped and the supervisor exits with the child's code. Only
  "Redis unreachable" (exit code 4) at start-up is tried again.
* SIGTERM (or SIGINT) is forwarded to every child, which finishes the job in
  hand and stops; a second one is forwarded too (a child then hands its job
  back at once). The supervisor exits when the last child has. Children run
  in their own session, so a Ctrl-C in the terminal reaches them once,
  through the supervisor; on Linux each gets SIGTERM if the supervisor itself
  dies, so none is left running unsupervised."""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from shared.errors import ConfigError, DaydreamError
from shared.settings import Settings
from shared.store import JobStore

logger = logging.getLogger(__name__)

RESTART_BACKOFF_S = (1.0, 60.0)  # first and longest pause before starting a dead worker again
HEALTHY_AFTER_S = 60.0  # a worker that ran this long starts again after the first pause
POLL_S = 0.2  # how often the supervisor looks at its children
REDIS_UNREACHABLE_EXIT = 4  # the CLI's code for Redis unreachable (daydream/cli.py): worth trying again
READY_CHECK_S = 1.0  # how often the heartbeats are read for children not yet announced


PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def parse_devices(spec: str) -> list[str]:
    """`all` (every CUDA GPU torch sees) or a comma-separated list (`cuda:0,cuda:1`, `cpu,cpu`),
    each checked as `--device` would be, before any worker starts."""
    from worker.runtime import resolve_device

    if spec.strip() == "all":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                "DEVICE", "--devices all: torch sees no CUDA GPU. Name the devices instead (--devices cpu, or cuda:0)."
            )
        return [f"cuda:{i}" for i in range(count)]
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    if not devices:
        raise ConfigError("DEVICE", f"--devices {spec!r} names no device; use all, or e.g. cuda:0,cuda:1.")
    return [resolve_device(d) for d in devices]


@dataclass
class Child:
    index: int
    device: str
    args: list[str]  # the rest of `daydream worker`'s options (--model, --burst …)
    name: str | None
    metrics_port: int
    proc: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0
    backoff_s: float = RESTART_BACKOFF_S[0]
    restart_at: float | None = None  # when a dead child starts again
    done: bool = False  # exited after a stop, or for good
    ready: bool = False  # its heartbeat (with its pid) has been seen in Redis since it started

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "daydream", "worker", "--device", self.device, *self.args]
        if self.name:
            # A new name after a restart: the dead process's RQ registration outlives it.
            cmd += ["--name", f"{self.name}.{self.index}" + (f".{self.starts}" if self.starts else "")]
        return [*cmd, "--metrics-port", str(self.metrics_port + self.index if self.metrics_port else 0)]

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command(), start_new_session=True, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.restart_at = None
        self.ready = False
        self.starts += 1
        logger.info("worker %d on %s started (pid %d)", self.index, self.device, self.proc.pid)


@dataclass
class Supervisor:
    children: list[Child]
    announced: Callable[[], set[int]]  # the pids of the live workers' heartbeats
    stopping: int = 0  # stop signals received
    exit_code: int = 0
    _signalled: list[int] = field(default_factory=list)
    _checked_at: float = -float("inf")

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signalled.append(signum)

    def run(self) -> int:
        for child in self.children:
            child.start()
        while not all(c.done for c in self.children):
            while self._signalled:
                self._signalled.pop(0)
                self.stop()
            now = time.monotonic()
            self._check_ready(now)
            for child in self.children:
                self._look_after(child, now)
            time.sleep(POLL_S)
        return self.exit_code

    def stop(self, code: int | None = None) -> None:
        """Forward a stop to every running child (and start none again)."""
        self.stopping += 1
        if code is not None:
            self.exit_code = code
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
            elif child.proc is None or child.restart_at is not None:
                child.done = True  # waiting for a restart that will not come
        logger.info("stopping %d worker(s) (signal %d)", sum(not c.done for c in self.children), self.stopping)

    def _check_ready(self, now: float) -> None:
        waiting = [c for c in self.children if not c.ready and c.proc is not None and c.proc.poll() is None]
        if not waiting or now - self._checked_at < READY_CHECK_S:
            return
        self._checked_at = now
        pids = self.announced()
        for child in waiting:
            if child.proc is not None and child.proc.pid in pids:
                child.ready = True
                logger.info("worker %d on %s is serving", child.index, child.device)

    def _look_after(self, child: Child, now: float) -> None:
        if child.done:
            return
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
            return
        assert child.proc is not None
        rc = child.proc.poll()
        if rc is None:
            return
        if self.stopping or rc == 0:
            child.done = True
            return
        if not child.ready and child.proc.pid in self.announced():
            child.ready = True  # it announced itself since the last look (its heartbeat outlives it a while)
        if not child.ready and rc != REDIS_UNREACHABLE_EXIT:
            logger.error(
                "worker %d on %s failed to start (exit code %s; its error is above); stopping all",
                child.index, child.device, rc,
            )  # fmt: skip
            child.done = True
            self.stop(rc if rc > 0 else 1)
            return
        ran = now - child.started_at
        child.backoff_s = RESTART_BACKOFF_S[0] if ran >= HEALTHY_AFTER_S else child.backoff_s
        child.restart_at = now + child.backoff_s
        logger.warning(
            "worker %d on %s (pid %d) exited with %s after %.0f s; starting it again in %.0f s",
            child.index, child.device, child.proc.pid, rc, ran, child.backoff_s,
        )  # fmt: skip
        child.backoff_s = min(child.backoff_s * 2, RESTART_BACKOFF_S[1])


def run_workers(settings: Settings, devices: list[str], args: list[str], name: str | None, metrics_port: int) -> int:
    """Run one worker per device until stopped; the exit code of the supervisor."""
    store = JobStore(settings)
    host = socket.gethostname()

    def announced() -> set[int]:
        try:  # pids of this host only: another host's worker may have the same number
            return {int(w.get("pid", 0)) for w in store.dispatch.live_workers() if w.get("host") == host}
        except DaydreamError:
            return set()  # Redis away: nobody counts as started yet

    supervisor = Supervisor([Child(i, d, args, name, metrics_port) for i, d in enumerate(devices)], announced)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, supervisor.on_signal)
    logger.info("supervising %d worker(s) on %s", len(devices), ", ".join(devices))
    return supervisor.run()
