"""`daydream settings|prefer|info|show`: the host's twins of /settings, /prefer,
/info and /show, for admins and scripts (the same store calls, the same texts);
and `daydream admin defaults`, the twin of /admin defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from daydream import admin
from daydream.submit import discord_id
from shared import personal, reports
from shared.errors import InvalidRequest
from shared.preferences import SETTINGS
from shared.resolution import canonical_of
from shared.settings import Settings
from shared.store import JobStore


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    if args.action == "set":
        if args.name is None:
            raise InvalidRequest(f"`daydream settings set` needs a NAME ({', '.join(SETTINGS)}) and a VALUE.")
        if args.name == "lane":
            store.policy.set_default_lane(args.user, args.value or "fast")
        else:
            store.preferences.set(args.user, args.name, args.value)
    prefs = store.preferences.user(args.user)
    print("\n".join(personal.settings_lines(prefs, store.policy.default_lane(args.user))))
    return 0


def cmd_prefer(args: argparse.Namespace, settings: Settings) -> int:
    prefs_store = JobStore(settings).preferences
    if args.what == "suffix":
        prefs = prefs_store.set_suffix(args.user, " ".join(args.text))
        print(f"suffix: {prefs.suffix or '(none)'}")
        return 0
    if args.action == "set":
        if not args.name or not args.value:
            raise InvalidRequest("`daydream prefer option set` needs a NAME and its VALUE (flags).")
        prefs_store.set_option(args.user, args.name, " ".join(args.value))
    elif args.action == "delete":
        if not args.name:
            raise InvalidRequest("`daydream prefer option delete` needs the option's NAME.")
        if not prefs_store.delete_option(args.user, args.name):
            raise InvalidRequest(f"User {args.user} has no option `--{args.name.lstrip('-')}`.")
    print(personal.options_text(prefs_store.user(args.user)))
    return 0


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    report = reports.user_report(store, args.user)
    print(personal.info_text(report, store.preferences.user(args.user)))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    job = store.get(args.job_id)
    if args.output is not None:
        data = store.images.result(job)
        if data is None:
            raise InvalidRequest(f"Job {job.id}'s images have expired; `daydream reroll {job.id}` makes new ones.")
        args.output.write_bytes(data)
    if args.json:
        print(json.dumps({**job.public(), "text": canonical_of(job)}, ensure_ascii=False))
    else:
        print(f"job {job.id} ({job.kind}, {job.state}) by user {job.user_id}")
        print(f"prompt: {canonical_of(job)}")
        print("seeds: " + ", ".join(str(s) for s in job.seeds))
    return 0


def cmd_defaults(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    limits = dict(item.split("=", 1) for item in args.limit or [])
    channel = store.preferences.set_channel(args.channel, defaults=args.defaults, limits=limits or None)
    print(f"channel {args.channel}: defaults `{channel.defaults or '(none)'}`")
    for name, value in vars(channel.limits).items():
        print(f"  {name} = {value}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="a member's /settings; `set NAME VALUE` changes one")
    p.add_argument("--user", type=discord_id, required=True)
    p.add_argument("action", nargs="?", choices=["show", "set"], default="show")
    p.add_argument("name", nargs="?", choices=[*SETTINGS, "lane"])
    p.add_argument("value", nargs="?", help="the value (`default` for the default)")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("prefer", help="a member's /prefer: suffix TEXT…, option set|list|delete")
    p.add_argument("--user", type=discord_id, required=True)
    what = p.add_subparsers(dest="what", required=True)
    s = what.add_parser("suffix", help="text and flags added to every prompt (none: clear it)")
    s.add_argument("text", nargs="*")
    o = what.add_parser("option", help="option macros: set NAME VALUE…, list, delete NAME")
    o.add_argument("action", choices=["set", "list", "delete"])
    o.add_argument("name", nargs="?")
    o.add_argument("value", nargs="*")
    p.set_defaults(func=cmd_prefer)

    p = sub.add_parser("info", help="a member's /info: jobs, settings, usage today")
    p.add_argument("--user", type=discord_id, required=True)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("show", help="a job's prompt as text, its seeds, and (-o) its result")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", type=Path, help="write the result image here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)


def register_admin(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("defaults", help="a channel's default flags and prompt limits (the twin of /admin defaults)")
    p.add_argument("--channel", type=discord_id, required=True)
    p.add_argument("--defaults", help='flags every prompt there gets unless it sets them, e.g. "--ar 3:2 --s 50"')
    p.add_argument(
        "--limit",
        action="append",
        metavar="NAME=VALUE",
        help="max_steps, max_repeat, max_jobs, confirm_above, min_aspect, max_aspect (W:H); repeatable",
    )
    p.set_defaults(func=cmd_defaults)


admin.REGISTRARS.append(register_admin)
