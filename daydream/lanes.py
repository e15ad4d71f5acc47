"""`daydream fast|relax|turbo --user ID`: the host's twins of /fast, /relax and
/turbo, setting the lane a member's new jobs take (turbo only if granted —
the policy decides, for the bot and here alike)."""

from __future__ import annotations

import argparse

from shared import messages
from shared.job import LANES
from shared.settings import Settings
from shared.store import JobStore


def cmd_lane(args: argparse.Namespace, settings: Settings) -> int:
    JobStore(settings).policy.set_default_lane(args.user, args.command)
    print(f"user {args.user}: " + messages.lane_set(args.command).replace("Your", "their", 1))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for lane in LANES:
        p = sub.add_parser(lane, help=f"a member's new jobs go to the {lane} lane (the twin of /{lane})")
        p.add_argument("--user", type=int, required=True, help="the member's Discord user id")
        p.set_defaults(func=cmd_lane)
