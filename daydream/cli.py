"""The `daydream` command: the one module allowed to start the bot or a
worker, importing them only inside the subcommand that runs them (so
`daydream imagine` never loads torch and `daydream worker` never loads discord).

Exit codes: 0 success; 1 the job failed/cancelled/expired; 2 bad usage or
input; 3 no worker alive; 4 Redis unreachable; 5 timed out waiting.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from shared.actions import child_job, imagine_job
from shared.custom_id import Action
from shared.errors import DaydreamError, InvalidRequest, JobNotFound, QueueUnavailable
from shared.job import JobRecord, JobState
from shared.params import parse_prompt
from shared.settings import Settings, load_dotenv
from shared.store import JobStore

logger = logging.getLogger(__name__)

EXIT_FAILED, EXIT_USAGE, EXIT_NO_WORKER, EXIT_NO_REDIS, EXIT_TIMEOUT = 1, 2, 3, 4, 5
DEFAULT_WORKER_WAIT_S = 30.0


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- output helpers ------------------------------------------------------
class ProgressBar:
    """A one-line progress bar on a terminal; a line per state change otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def __call__(self, record: JobRecord, position: int | None = None) -> None:
        if record.state == JobState.QUEUED:
            text = f"waiting to start (#{position} in queue)" if position else "waiting to start"
        elif record.state == JobState.RUNNING:
            width = 30
            filled = int(record.progress * width)
            text = f"[{'#' * filled}{'.' * (width - filled)}] {record.progress:4.0%}  on {record.worker}"
        else:
            text = str(record.state)
        if text == self.last:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text)
            if record.state.finished:
                self.stream.write("\n")
        elif record.state != JobState.RUNNING or record.progress in (0.0, 1.0):
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text


def _write_result(store: JobStore, record: JobRecord, out: Path | None) -> Path | None:
    if out is None or record.state != JobState.DONE:
        return None
    data = store.get_grid(record.id) if record.images == 4 else store.get_image(record.id, 1)
    if data is None:
        raise CliError(
            f"Job {record.id}'s images have expired from storage; use U/V/reroll to regenerate.", EXIT_FAILED
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def _finish(store: JobStore, record: JobRecord, args: argparse.Namespace) -> int:
    written = _write_result(store, record, getattr(args, "output", None))
    if args.json:
        print(json.dumps(record.public()))
    elif record.state == JobState.DONE:
        took = (record.finished_at or 0) - (record.started_at or 0)
        where = f" → {written}" if written else ""
        print(f"job {record.id} done in {took:.1f} s ({record.width}×{record.height} per image){where}")
    if record.state != JobState.DONE:
        print(f"daydream: job {record.id} {record.state}: {record.error or 'no result'}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _wait_for(store: JobStore, record: JobRecord, args: argparse.Namespace) -> JobRecord:
    bar = ProgressBar() if not args.json and not args.quiet else None
    worker_deadline = time.monotonic() + args.worker_timeout
    deadline = None if args.timeout is None else time.monotonic() + args.timeout

    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        # Wake up at least once a second to check for a live worker.
        step = 1.0 if remaining is None else min(1.0, remaining)

        def show(rec: JobRecord) -> None:
            if bar:
                bar(rec, store.position(rec.id) if rec.state == JobState.QUEUED else None)

        record = store.wait(record.id, timeout=step, on_update=show)
        if record.state.finished:
            return record
        if record.state == JobState.QUEUED and not store.live_workers():
            if time.monotonic() > worker_deadline:
                store.request_cancel(record.id)
                store.withdraw(record.id)
                store.finish(record.id, JobState.CANCELLED, error="No worker was alive to run it.")
                raise CliError(
                    f"No worker is alive to run job {record.id} (waited {args.worker_timeout:.0f} s); it was cancelled. "
                    "Start one with `daydream worker`.",
                    EXIT_NO_WORKER,
                )
        else:
            worker_deadline = time.monotonic() + args.worker_timeout
        if deadline is not None and time.monotonic() >= deadline:
            raise CliError(
                f"Timed out after {args.timeout:.0f} s waiting for job {record.id} (still {record.state}).",
                EXIT_TIMEOUT,
            )


def _submit_and_wait(store: JobStore, record: JobRecord, args: argparse.Namespace) -> int:
    store.submit(record)
    if args.detach:
        if args.json:
            print(json.dumps(store.get(record.id).public()))
        else:
            print(record.id)
        return 0
    record = _wait_for(store, record, args)
    return _finish(store, record, args)


# -- subcommands ---------------------------------------------------------
def cmd_imagine(args: argparse.Namespace, settings: Settings) -> int:
    parsed = parse_prompt(args.prompt)
    store = JobStore(settings)
    store.ping()
    record = imagine_job(parsed, user_id=args.user, model=settings.model)
    return _submit_and_wait(store, record, args)


def _child(
    args: argparse.Namespace, settings: Settings, action: Action, index: int, strength: float | None = None
) -> int:
    store = JobStore(settings)
    store.ping()
    parent = store.get(args.job_id)
    if parent.state != JobState.DONE:
        raise InvalidRequest(
            f"Job {parent.id} is {parent.state}; only finished jobs can be upscaled, varied or re-rolled."
        )
    record = child_job(parent, action, index, user_id=args.user, settings=settings, strength=strength)
    return _submit_and_wait(store, record, args)


def cmd_upscale(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.UPSCALE, args.index)


def cmd_vary(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.VARY, args.index, settings.vary_subtle if args.subtle else None)


def cmd_reroll(args: argparse.Namespace, settings: Settings) -> int:
    return _child(args, settings, Action.REROLL, 0)


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    store.ping()
    record = store.get(args.job_id)
    written = _write_result(store, record, args.output)
    if args.json:
        print(json.dumps(record.public()))
    else:
        for key, value in record.public().items():
            print(f"{key:>16}: {value}")
        if written:
            print(f"{'written':>16}: {written}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    store.ping()
    workers = store.live_workers()
    recent = store.recent(args.recent)
    if args.json:
        print(
            json.dumps({"queue_depth": store.queue_depth(), "workers": workers, "recent": [r.public() for r in recent]})
        )
        return 0
    print(f"queue {settings.queue_name!r}: {store.queue_depth()} waiting")
    print(f"workers alive: {len(workers)}")
    for w in workers:
        job = w.get("current_job") or "idle"
        print(f"  {w['name']}  {w['device']}  model={w['model']}  jobs done={w['jobs_done']}  now: {job}")
    print("recent jobs:")
    for r in recent:
        took = f"{(r.finished_at or 0) - (r.started_at or 0):.1f}s" if r.finished_at and r.started_at else ""
        print(f"  {r.id}  {r.kind:<9} {r.state:<9} {took:>7}  {r.prompt[:50]}")
    return 0


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run_bot

    run_bot(settings, sync=True if args.sync else None)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from worker.main import run_worker

    run_worker(settings, device=args.device, burst=args.burst, name=args.name)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine, no Discord: a private redis-server, one
    worker process, and an /imagine job through the real queue."""
    import dataclasses
    import os
    import subprocess

    from daydream.redis_server import RedisServer

    with RedisServer(appendonly=False) as server:
        settings = dataclasses.replace(settings, redis_url=server.url)
        env = {**os.environ, "REDIS_URL": server.url, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        print(
            f"demo: private redis-server on {server.url}; starting a worker (loads the {settings.model} model)…",
            file=sys.stderr,
        )
        worker = subprocess.Popen([sys.executable, "-m", "daydream", "worker"], env=env)
        try:
            args.worker_timeout = max(args.worker_timeout, 300.0)
            return cmd_imagine(args, settings)
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def cmd_train_embedded(args: argparse.Namespace, settings: Settings) -> int:
    from worker.embedded.train import main as train_main

    train_main(args.train_args)
    return 0


def _add_wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, help="write the result image (PNG) here")
    p.add_argument("--json", action="store_true", help="print the job record as one JSON line at the end")
    p.add_argument("--detach", action="store_true", help="return right after enqueueing")
    p.add_argument("--user", type=int, help="submit on behalf of this Discord user id (their limits apply)")
    p.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=DEFAULT_WORKER_WAIT_S,
        help="fail if no worker is alive for this long (default 30)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daydream", description="Self-hosted Midjourney-style image generation.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("imagine", help="generate a 2×2 grid through the queue and wait for it")
    p.add_argument("prompt", help='the prompt, with optional parameters: "a red star --ar 3:2 --seed 7"')
    _add_wait_options(p)
    p.set_defaults(func=cmd_imagine)

    p = sub.add_parser("demo", help="run the whole loop locally: private Redis + a worker + one imagine job")
    p.add_argument("prompt", nargs="?", default="a red circle on a blue background")
    _add_wait_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("upscale", help="upscale image INDEX (1-4) of a finished job")
    p.add_argument("job_id")
    p.add_argument("index", type=int)
    _add_wait_options(p)
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser("vary", help="four variations of image INDEX (1-4) of a finished job")
    p.add_argument("job_id")
    p.add_argument("index", type=int)
    p.add_argument("--subtle", action="store_true", help="stay closer to the source image")
    _add_wait_options(p)
    p.set_defaults(func=cmd_vary)

    p = sub.add_parser("reroll", help="the same prompt and parameters with four new seeds")
    p.add_argument("job_id")
    _add_wait_options(p)
    p.set_defaults(func=cmd_reroll)

    p = sub.add_parser("job", help="show a job's record (and write its result)")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("status", help="queue depth, live workers, recent jobs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--recent", type=int, default=10)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("bot", help="run the Discord front end (needs DISCORD_TOKEN)")
    p.add_argument("--sync", action="store_true", help="push slash commands to Discord now (after changing them)")
    p.set_defaults(func=cmd_bot)

    p = sub.add_parser("worker", help="run a worker (one per GPU)")
    p.add_argument("--device", default="", help="cuda:0, cuda:1, cpu (default: DEVICE, else cuda if present)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--name", help="worker name (default: host.pid.random)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("train-embedded", help="(re)train the embedded model; extra arguments go to the trainer")
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train_embedded)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Everything after `train-embedded` belongs to the trainer's own parser:
    # argparse would take its "--steps"-style options for ours and reject them.
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "train-embedded":
        cut = argv.index(command) + 1
        args = build_parser().parse_args(argv[:cut])
        args.train_args = argv[cut:]
    else:
        args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command in {"imagine", "upscale", "vary", "reroll", "job", "status"} and not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        load_dotenv()
        settings = Settings.from_env()
        return args.func(args, settings)
    except CliError as exc:
        print(f"daydream: {exc}", file=sys.stderr)
        return exc.code
    except QueueUnavailable as exc:
        print(f"daydream: {exc}", file=sys.stderr)
        return EXIT_NO_REDIS
    except (InvalidRequest, JobNotFound) as exc:
        print(f"daydream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DaydreamError as exc:
        print(f"daydream: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
