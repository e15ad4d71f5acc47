"""`daydream imagine|upscale|vary|reroll`: submit a job through the real queue,
show its progress, wait for it, write the result. The same records as the
bot's (shared/builders.py), the same submit-time checks (the store's)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shared import messages
from shared.builders import check_image_prompt, child_job, with_inputs
from shared.custom_id import Action
from shared.errors import DaydreamError, InvalidRequest, QueueUnavailable
from shared.flags import help_text
from shared.job import JobRecord, JobState, Venue
from shared.models import EMBEDDED, ModelSpec, model_name
from shared.resolution import describe, resolve_in
from shared.settings import Settings
from shared.store import JobStore

EXIT_NO_WORKER, EXIT_NO_REDIS, EXIT_TIMEOUT = 3, 4, 5
DEFAULT_WORKER_WAIT_S = 30.0
DEFAULT_REDIS_WAIT_S = 60.0  # a waiting `imagine` rides a Redis blip this long
REDIS_RETRY_S = 1.0


class CliError(DaydreamError):
    """A command-line outcome with its own exit code (no worker, timed out)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # per instance: the outcome decides


class ProgressBar:
    """A one-line progress bar on a terminal; a line per state change otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def __call__(self, job: JobRecord, position: int | None = None) -> None:
        if job.state == JobState.QUEUED:
            text = f"waiting to start (#{position} in queue)" if position else "waiting to start"
        elif job.state == JobState.RUNNING:
            width = 30
            filled = int(job.progress * width)
            text = f"[{'#' * filled}{'.' * (width - filled)}] {job.progress:4.0%}  on {job.worker}"
        else:
            text = str(job.state)
        if text == self.last:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text)
            if job.finished:
                self.stream.write("\n")
        elif job.state != JobState.RUNNING or job.progress in (0.0, 1.0):
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text


def write_result(store: JobStore, job: JobRecord, out: Path | None) -> Path | None:
    if out is None or job.state != JobState.DONE:
        return None
    data = store.images.result(job)
    if data is None:
        raise CliError(f"Job {job.id}'s images have expired from storage; use U/V/reroll to regenerate.", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def _finish(
    store: JobStore, job: JobRecord, args: argparse.Namespace, show: Callable[[JobRecord], None] | None = None
) -> int:
    written = write_result(store, job, getattr(args, "output", None))
    if args.json:
        print(json.dumps(job.public()))
    elif job.state == JobState.DONE and show is not None:
        show(job)  # a result that is text (/describe's prompts)
    elif job.state == JobState.DONE:
        took = (job.finished_at or 0) - (job.started_at or 0)
        where = f" → {written}" if written else ""
        print(f"job {job.id} done in {took:.1f} s ({job.width}×{job.height} per image){where}")
        understood = messages.understood_line(job).strip()
        if understood:
            print(understood)  # what the model read in the prompt, or that it cannot draw it
    if job.state != JobState.DONE:
        print(f"daydream: job {job.id} {job.state}: {job.error or 'no result'}", file=sys.stderr)
        return 1
    return 0


def _no_worker(model: str, waited: float, job_id: str | None = None, served: list[str] | None = None) -> CliError:
    what = f"to run job {job_id}" if job_id else f"for the model {model!r}"
    tail = "; it was cancelled" if job_id else "; nothing was queued"
    others = f" Models being served: {', '.join(served)}." if served else ""
    return CliError(
        f"No worker is alive {what} (waited {waited:.0f} s){tail}. Start one with `daydream worker`.{others}",
        EXIT_NO_WORKER,
    )


def _await_worker(store: JobStore, model: str, timeout: float) -> None:
    """A freshly started worker takes a while to load its model: wait for one
    that holds `model` before submitting, up to `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        while not store.dispatch.live_workers(model):
            if time.monotonic() >= deadline:
                raise _no_worker(model, timeout, served=store.dispatch.served_models())
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))  # another process announces itself
    except QueueUnavailable as exc:
        raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc


def _wait_for(store: JobStore, job: JobRecord, args: argparse.Namespace) -> JobRecord:
    bar = ProgressBar() if not args.json and not args.quiet else None
    worker_deadline = time.monotonic() + args.worker_timeout
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    redis_lost: float | None = None  # since when Redis has not answered

    def show(rec: JobRecord) -> None:
        if bar:
            bar(rec, store.dispatch.position(rec) if rec.state == JobState.QUEUED else None)

    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        # Wake up at least once a second to check for a live worker.
        step = 1.0 if remaining is None else min(1.0, remaining)
        try:
            job = store.wait(job.id, timeout=step, on_update=show)
            worker_alive = store.dispatch.live_workers(job.model)
        except QueueUnavailable:
            # A blip: the job lives in Redis and goes on when Redis is back. Keep waiting.
            redis_lost = redis_lost or time.monotonic()
            if time.monotonic() - redis_lost >= args.redis_timeout:
                raise CliError(
                    f"Redis has not answered for {args.redis_timeout:.0f} s while waiting for job {job.id}; "
                    f"it may still finish: see `daydream job {job.id}` once Redis is back.",
                    EXIT_NO_REDIS,
                ) from None
            time.sleep(REDIS_RETRY_S)
            continue
        redis_lost = None
        if job.finished:
            return job
        if job.state == JobState.QUEUED and not worker_alive:
            if time.monotonic() > worker_deadline:
                store.cancel(job.id, reason="No worker was alive to run it.")
                raise _no_worker(job.model, args.worker_timeout, job.id)
        else:
            worker_deadline = time.monotonic() + args.worker_timeout
        if deadline is not None and time.monotonic() >= deadline:
            raise CliError(
                f"Timed out after {args.timeout:.0f} s waiting for job {job.id} (still {job.state}).", EXIT_TIMEOUT
            )


def check_output(path: Path | None) -> None:
    """Refuse an output path that cannot be written before any work is queued
    (by writing there: permission bits do not tell root, /proc or a full disk)."""
    if path is None:
        return
    if path.is_dir():
        raise InvalidRequest(f"-o {path}: that is a folder; give a file name such as {path / 'grid.png'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".daydream-", delete=True) as probe:
            probe.write(b"x")
            probe.flush()
        if path.exists():
            with path.open("ab"):
                pass
    except OSError as exc:
        raise InvalidRequest(f"-o {path}: cannot write there ({exc.strerror or exc}).") from None


def submit_and_wait(
    store: JobStore,
    job: JobRecord,
    args: argparse.Namespace,
    inputs: list[tuple[str, bytes]] | None = None,
    show: Callable[[JobRecord], None] | None = None,
) -> int:
    """`inputs`: (name, PNG) of the job's input images, stored beside it first."""
    check_output(getattr(args, "output", None))
    _await_worker(store, job.model, args.worker_timeout)
    for name, data in inputs or []:
        store.images.put_input(job.id, name, data)
    store.submit(job)
    if args.detach:
        print(json.dumps(store.get(job.id).public()) if args.json else job.id)
        return 0
    return _finish(store, _wait_for(store, job, args), args, show)


def _dry_run_spec(store: JobStore, model: str) -> ModelSpec | None:
    """The spec a dry run sizes its jobs with: the live workers', else the last one announced,
    else (for the built-in model, which needs no worker to be known) the embedded engine's own.
    stderr says which when it is not the live one; stdout stays one JSON line per job."""
    live = store.dispatch.spec(model)
    if live is not None:
        return live
    spec, source = store.dispatch.known_spec(model), "its last announced spec"
    if spec is None and model == EMBEDDED:
        from worker.engines.embedded import SPEC as spec  # torch; only when no worker ever announced it

        source = "the built-in model's spec"
    if spec is None:
        print(f"No worker of `{model}` has announced it: width, height, steps and guidance are null.", file=sys.stderr)
    else:
        print(f"No worker of `{model}` is running: width, height, steps and guidance from {source}.", file=sys.stderr)
    return spec


def cmd_imagine(args: argparse.Namespace, settings: Settings) -> int:
    """`daydream imagine`: resolve like /imagine (shared/resolution.py), then queue every
    job it makes and wait for each; `--dry-run` prints them instead, one JSON line each.
    Image prompts: `--image FILE` (and `--iw`)."""
    from daydream import inputs  # image prompts (issue 19)

    images = inputs.image_files(args, settings)
    store = JobStore(settings)
    model = model_name(getattr(args, "model", None) or settings.model)
    try:
        resolution = resolve_in(
            store, args.prompt, user_id=args.user, channel_id=getattr(args, "channel", None), default_model=model
        )
    except InvalidRequest as exc:
        if getattr(args, "dry_run", False):
            print(json.dumps(exc.to_dict(), ensure_ascii=False))
        raise
    except QueueUnavailable as exc:
        raise QueueUnavailable(QueueUnavailable.NOT_QUEUED) from exc
    for job in resolution.jobs:
        if getattr(args, "iw", None) is not None:
            job.params = replace(job.params, image_weight=args.iw)
        check_image_prompt(job.params, len(images))
    if getattr(args, "dry_run", False):
        specs = {m: _dry_run_spec(store, m) for m in sorted({j.model for j in resolution.jobs})}
        for job in resolution.jobs:
            print(json.dumps(describe(job, specs[job.model]), ensure_ascii=False))
        return 0
    # On behalf of a member, or in a server: judged as the bot judges a request there
    # (shared/moderation.py). The host's own jobs (neither) are not screened.
    guild, channel = getattr(args, "guild", None), getattr(args, "channel", None)
    for job in resolution.jobs:
        if guild is not None or channel is not None:
            job.venue = Venue(guild_id=guild, channel_id=channel, nsfw=bool(getattr(args, "nsfw", False)))
        if guild is not None or channel is not None or args.user is not None:
            store.moderation.screen(job)
    if len(resolution.jobs) == 1:
        return submit_and_wait(store, resolution.jobs[0], args, with_inputs(resolution.jobs[0], images))
    return _submit_all(store, resolution.jobs, args, images)


def _submit_all(store: JobStore, jobs: list[JobRecord], args: argparse.Namespace, images: list | None = None) -> int:
    """Several jobs (`{a, b}`, `--repeat`): queue them all, then wait for each in turn;
    `-o grid.png` writes grid-1.png, grid-2.png …"""
    out: Path | None = getattr(args, "output", None)
    check_output(out)
    for model in sorted({j.model for j in jobs}):
        _await_worker(store, model, args.worker_timeout)
    for job in jobs:
        for name, data in with_inputs(job, images or []):
            store.images.put_input(job.id, name, data)
        store.submit(job)
    if args.detach:
        for job in jobs:
            print(json.dumps(store.get(job.id).public()) if args.json else job.id)
        return 0
    worst = 0
    for n, job in enumerate(jobs, start=1):
        args.output = out.with_name(f"{out.stem}-{n}{out.suffix}") if out else None
        worst = max(worst, _finish(store, _wait_for(store, job, args), args))
    return worst


def _child(
    args: argparse.Namespace, settings: Settings, action: Action, index: int, strength: float | None = None
) -> int:
    store = JobStore(settings)
    parent = store.get(args.job_id)
    if parent.state != JobState.DONE:
        raise InvalidRequest(
            f"Job {parent.id} is {parent.state}; only finished jobs can be upscaled, varied or re-rolled."
        )
    job = child_job(parent, action, index, user_id=args.user, settings=settings, strength=strength)
    return submit_and_wait(store, job, args)


def cmd_upscale(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.UPSCALE, args.index)


def cmd_vary(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.VARY, args.index, settings.vary_subtle if args.subtle else None)


def cmd_reroll(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.REROLL, 0)


def discord_id(raw: str) -> int:
    """argparse type: a Discord id (a positive whole number)."""
    if not raw.isdigit() or int(raw) <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a Discord user id (a positive whole number)")
    return int(raw)


def add_wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, help="write the result image (PNG) here")
    p.add_argument("--json", action="store_true", help="print the job record as one JSON line at the end")
    p.add_argument("--detach", action="store_true", help="return right after enqueueing")
    p.add_argument("--user", type=discord_id, help="submit on behalf of this Discord user id (their limits apply)")
    p.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=DEFAULT_WORKER_WAIT_S,
        help="fail if no worker is alive for this long (default 30)",
    )
    p.add_argument(
        "--redis-timeout",
        type=float,
        default=DEFAULT_REDIS_WAIT_S,
        help="while waiting, ride out a Redis outage this long before giving up (default 60)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_resolution_options(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "prompt parameters (shared/flags.py):\n" + help_text()
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="queue nothing: print each job the prompt would make (one JSON line each) with the user's settings",
    )
    p.add_argument("--channel", type=discord_id, help="resolve with this channel's defaults and limits")


def add_venue_options(p: argparse.ArgumentParser) -> None:
    """Where a command-line job is judged: the policy of that server and channel
    (`--channel`, from add_resolution_options: its defaults, image policy and spoiler mode) applies."""
    p.add_argument("--guild", type=discord_id, help="apply this server's moderation policy (filters, bans)")
    p.add_argument("--nsfw", action="store_true", help="the channel is marked NSFW (no image check)")
