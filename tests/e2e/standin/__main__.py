"""`python -m tests.e2e.standin`: the stand-in on its own, for a bot started by hand."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .constants import ACK_DEADLINE_S, BOT_TOKEN, TOKEN_LIFETIME_S
from .server import Standin


async def serve(args: argparse.Namespace) -> None:
    standin = Standin(
        host=args.host,
        port=args.port,
        token=args.token,
        token_lifetime_s=args.token_lifetime,
        ack_deadline_s=args.ack_deadline if args.ack_deadline > 0 else None,
    )
    async with standin:
        for key, value in standin.env().items():
            print(f"{key}={value}", flush=True)
        print(f"# member user id {standin.member.id}; POST {standin.url}/_standin/slash to run a command", flush=True)
        await asyncio.Event().wait()  # until interrupted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Discord stand-in on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--token", default=BOT_TOKEN, help="the bot token it accepts")
    parser.add_argument("--token-lifetime", type=float, default=TOKEN_LIFETIME_S, help="interaction token lifetime, s")
    parser.add_argument("--ack-deadline", type=float, default=ACK_DEADLINE_S, help="0: no deadline")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
