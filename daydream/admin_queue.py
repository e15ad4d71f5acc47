"""`daydream admin queue|pause|resume|cancel|limits|lane|workers` and `daydream
cancel`: the host's twins of the /admin queue commands and of /cancel (the
host is an admin). They read and say the same reports as the bot's."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from daydream import admin
from shared import messages, reports
from shared.errors import InvalidRequest
from shared.job import LANES
from shared.policy import ALL_LANES, GRANTS, Limits
from shared.settings import Settings
from shared.store import JobStore

LANE_CHOICES = [*LANES, "all"]


def cmd_queue(args: argparse.Namespace, settings: Settings) -> int:
    report = reports.queue_report(JobStore(settings))
    if args.json:
        print(json.dumps({**asdict(report), "paused": sorted(report.paused), "total": report.total}))
    else:
        print(messages.queue_report(report))
    return 0


def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    lane = ALL_LANES if args.lane == "all" else args.lane
    JobStore(settings).policy.pause(lane)
    print(messages.paused_lanes(lane, resumed=False))
    return 0


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    lane = ALL_LANES if args.lane == "all" else args.lane
    JobStore(settings).policy.resume(lane)
    print(messages.paused_lanes(lane, resumed=True))
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    job = store.get(args.job_id)
    if job.finished:
        raise InvalidRequest(messages.already_ended(job))
    cancelled = store.cancel(job.id, reason="Cancelled by the host.")
    print(messages.cancelled_privately(job, cancelled is not None).replace("**", ""))
    return 0


def cmd_limits(args: argparse.Namespace, settings: Settings) -> int:
    policy = JobStore(settings).policy
    if args.user is None and args.role is None:
        print(messages.limits_report(policy.defaults, policy.overrides()))
        return 0
    target = {"user_id": args.user} if args.user is not None else {"role_id": args.role}
    if args.reset:
        policy.set_limits(limits=None, **target)
    else:
        running = args.running or policy.defaults.running
        queued = args.waiting if args.waiting is not None else policy.defaults.queued
        policy.set_limits(limits=Limits(running, queued), **target)
    print(messages.limits_report(policy.defaults, policy.overrides()))
    return 0


def cmd_lane(args: argparse.Namespace, settings: Settings) -> int:
    target = {"user_id": args.user} if args.user is not None else {"role_id": args.role}
    JobStore(settings).policy.set_grant(args.lane, **target)
    print(f"{'user' if args.user is not None else 'role'} {args.user or args.role}: {args.lane} lane set.")
    return 0


def cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    found = reports.workers_report(JobStore(settings))
    if args.json:
        print(json.dumps([asdict(w) for w in found]))
    else:
        print(messages.workers_report(found).replace("**", ""))
    return 0


def _who(p: argparse.ArgumentParser, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--user", type=int, help="a Discord user id")
    group.add_argument("--role", type=int, help="a Discord role id")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queue", help="what waits, per model and lane, and per user")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)
    for name, func, verb in (
        ("pause", cmd_pause, "stop starting jobs in"),
        ("resume", cmd_resume, "start jobs again in"),
    ):
        p = sub.add_parser(name, help=f"{verb} a lane (all by default)")
        p.add_argument("lane", nargs="?", default="all", choices=LANE_CHOICES)
        p.set_defaults(func=func)
    p = sub.add_parser("cancel", help="cancel anyone's job")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_cancel)
    p = sub.add_parser("limits", help="show the limits, or set them for a user or a role")
    _who(p, required=False)
    p.add_argument("--running", type=int, help="jobs running at once")
    p.add_argument("--waiting", type=int, help="jobs waiting")
    p.add_argument("--reset", action="store_true", help="back to the defaults")
    p.set_defaults(func=cmd_limits)
    p = sub.add_parser("lane", help="grant turbo, impose relax, or give back fast")
    p.add_argument("lane", choices=GRANTS)
    _who(p, required=True)
    p.set_defaults(func=cmd_lane)
    p = sub.add_parser("workers", help="every live worker: host, device, model, job, pace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_workers)


def add_cancel_parser(sub: argparse._SubParsersAction) -> None:
    """`daydream cancel JOB_ID`, the twin of /cancel (the host may cancel any job)."""
    p = sub.add_parser("cancel", help="cancel a waiting or running job")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_cancel)


admin.REGISTRARS.append(register)
