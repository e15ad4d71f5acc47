"""`daydream admin filter|modlog|ban|unban|channel|threshold`: the host's twins of
the /admin moderation commands, writing the same policy (shared/moderation.py).
`--guild ID` names the server; without it, the policy of DMs with the bot.
(`daydream imagine --user ID --guild ID --channel ID` is screened by the same
policy: daydream/submit.py.) Bans and unbans made here are posted to the server's mod log
with the bot token, as /admin ban's are."""

from __future__ import annotations

import argparse

from daydream import admin
from shared import mod_messages
from shared.moderation import IMAGE_POLICIES
from shared.settings import Settings
from shared.store import JobStore


def _plain(text: str) -> str:
    return text.replace("**", "")


def cmd_filter(args: argparse.Namespace, settings: Settings) -> int:
    moderation = JobStore(settings).moderation
    if args.action == "add":
        print(f"Prompts with `{moderation.add_rule(args.guild, args.rule)}` are now blocked.")
    elif args.action == "remove":
        print(f"`{moderation.remove_rule(args.guild, args.rule)}` no longer blocks prompts.")
    else:
        print(_plain(mod_messages.rules_report(moderation.rules(args.guild))))
    return 0


def cmd_modlog(args: argparse.Namespace, settings: Settings) -> int:
    moderation = JobStore(settings).moderation
    if args.channel is not None or args.off:
        moderation.set_modlog(args.guild, None if args.off else args.channel)
    channel = moderation.modlog(args.guild)
    print(f"mod log: channel {channel}" if channel else "mod log: off")
    return 0


def cmd_ban(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    moderation = store.moderation
    if args.command_name == "ban":
        moderation.ban(args.guild, args.user, args.reason, by="the host")
        print(f"user {args.user} can no longer use Daydream there.")
        _to_modlog(settings, store, args.guild, mod_messages.log_ban(args.user, "the host", args.reason))
        return 0
    if not moderation.unban(args.guild, args.user):
        print(f"user {args.user} is not banned there.")
        return 1
    print(f"user {args.user} can use Daydream there again.")
    _to_modlog(settings, store, args.guild, mod_messages.log_ban(args.user, "the host", "", lifted=True))
    return 0


def _to_modlog(settings: Settings, store: JobStore, guild: int | None, content: str) -> None:
    """A ban from the command line is logged where the server's moderators read the bot's
    (as /admin ban's is), posted with the bot token as the workers post; said when it can't be."""
    channel = store.moderation.modlog(guild)
    if channel is None:
        print("not in the mod log: none is set (`daydream admin modlog --channel ID`).")
        return
    if not settings.discord_token:
        print(f"not in the mod log (channel {channel}): set DISCORD_TOKEN to post there.")
        return
    from worker.delivery import Delivery  # aiohttp and the REST client, only when posting

    delivery = Delivery(settings, store)
    try:
        posted = delivery.notice(channel, content)
    finally:
        delivery.close()
    print(
        f"logged in the mod log (channel {channel})."
        if posted
        else f"could not post to the mod log (channel {channel})."
    )


def cmd_channel(args: argparse.Namespace, settings: Settings) -> int:
    spoiler = None if args.spoiler is None else args.spoiler == "on"
    policy = JobStore(settings).moderation.set_channel(args.guild, args.channel, images=args.images, spoiler=spoiler)
    print(f"channel {args.channel}: flagged images {policy.images}, spoilers {'on' if policy.spoiler else 'off'}")
    return 0


def cmd_threshold(args: argparse.Namespace, settings: Settings) -> int:
    moderation = JobStore(settings).moderation
    if args.score is not None or args.reset:
        moderation.set_threshold(args.guild, None if args.reset else args.score)
    print(f"images scoring {moderation.threshold(args.guild):.2f} or more are flagged")
    return 0


def _guild(p: argparse.ArgumentParser) -> None:
    p.add_argument("--guild", type=int, help="the server's id (default: DMs with the bot)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filter", help="the word filter: add, remove or list rules")
    p.add_argument("action", choices=("add", "remove", "list"))
    p.add_argument("rule", nargs="?", default="", help="a word, a phrase, or a pattern with * (porn*)")
    _guild(p)
    p.set_defaults(func=cmd_filter)
    p = sub.add_parser("modlog", help="show or set the mod log channel")
    p.add_argument("--channel", type=int, help="the channel id")
    p.add_argument("--off", action="store_true", help="no mod log")
    _guild(p)
    p.set_defaults(func=cmd_modlog)
    for name, help_ in (("ban", "stop a member from using Daydream"), ("unban", "lift a ban")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--user", type=int, required=True, help="the member's Discord user id")
        if name == "ban":
            p.add_argument("--reason", default="", help="told to them, once")
        _guild(p)
        p.set_defaults(func=cmd_ban, command_name=name)
    p = sub.add_parser("channel", help="a channel's image policy and spoiler mode")
    p.add_argument("--channel", type=int, required=True, help="the channel id")
    p.add_argument("--images", choices=IMAGE_POLICIES, help="what happens to a flagged image there")
    p.add_argument("--spoiler", choices=("on", "off"), help="post results as spoilers")
    _guild(p)
    p.set_defaults(func=cmd_channel)
    p = sub.add_parser("threshold", help="show or set the NSFW score at which images are flagged")
    p.add_argument("score", nargs="?", type=float, help="between 0 and 1, e.g. 0.6")
    p.add_argument("--reset", action="store_true", help="back to NSFW_THRESHOLD")
    _guild(p)
    p.set_defaults(func=cmd_threshold)


admin.REGISTRARS.append(register)
