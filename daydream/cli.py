"""The `daydream` command: the composition root, the one module allowed to
start the bot or a worker (daydream/serve.py imports them only inside the
subcommand that runs them).

Exit codes come from the error's class (shared/errors.py): 0 success; 1 the
job failed, was cancelled or expired; 2 bad usage or input (or a bad setting);
3 no worker alive; 4 Redis unreachable; 5 timed out waiting.
"""

from __future__ import annotations

import argparse
import logging
import sys

from daydream import (  # noqa: F401 - moderation adds `admin` subcommands
    admin,
    admin_queue,
    edit,
    inputs,
    inspect,
    lanes,
    models,
    moderation,
    personal,
    serve,
    submit,
)
from shared.errors import DaydreamError
from shared.settings import Settings, load_dotenv

logger = logging.getLogger(__name__)

QUIET_COMMANDS = {"imagine", "upscale", "vary", "reroll", "job", "status", "cancel", "admin", "models"}
QUIET_COMMANDS |= {"settings", "prefer", "info", "show"}
QUIET_COMMANDS |= set(edit.COMMANDS) | set(inputs.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daydream", description="Self-hosted Midjourney-style image generation.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("imagine", help="generate a 2×2 grid through the queue and wait for it")
    p.add_argument("prompt", help='the prompt, with optional parameters: "a red star --ar 3:2 --seed 7"')
    submit.add_wait_options(p)
    models.add_model_option(p, "the model to draw with")
    submit.add_resolution_options(p)
    inputs.add_image_options(p)
    submit.add_venue_options(p)
    p.set_defaults(func=submit.cmd_imagine)

    p = sub.add_parser("demo", help="run the whole loop locally: private Redis + a worker + one imagine job")
    p.add_argument("prompt", nargs="?", default="a red circle on a blue background")
    submit.add_wait_options(p)
    p.set_defaults(func=serve.cmd_demo)

    p = sub.add_parser("upscale", help="upscale image INDEX (1-4) of a finished job")
    p.add_argument("job_id")
    p.add_argument("index", type=int)
    submit.add_wait_options(p)
    p.set_defaults(func=submit.cmd_upscale)

    p = sub.add_parser("vary", help="four variations of image INDEX (1-4) of a finished job")
    p.add_argument("job_id")
    p.add_argument("index", type=int)
    p.add_argument("--subtle", action="store_true", help="stay closer to the source image")
    submit.add_wait_options(p)
    p.set_defaults(func=submit.cmd_vary)

    p = sub.add_parser("reroll", help="the same prompt and parameters with four new seeds")
    p.add_argument("job_id")
    submit.add_wait_options(p)
    p.set_defaults(func=submit.cmd_reroll)

    p = sub.add_parser("job", help="show a job's record (and write its result)")
    inspect.add_job_options(p)
    p.set_defaults(func=inspect.cmd_job)

    p = sub.add_parser("status", help="queue depth, live workers, recent jobs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--recent", type=int, default=10)
    p.set_defaults(func=inspect.cmd_status)

    p = sub.add_parser("bot", help="run the Discord front end (needs DISCORD_TOKEN)")
    p.add_argument("--sync", action="store_true", help="push slash commands to Discord now (after changing them)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics here (default: METRICS_PORT; 0: off)")
    p.set_defaults(func=serve.cmd_bot)

    p = sub.add_parser("worker", help="run a worker (one per GPU)")
    p.add_argument("--device", default="", help="cuda:0, cuda:1, cpu (default: DEVICE, else cuda if present)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--name", help="worker name (default: host.pid.random)")
    p.add_argument(
        "--devices", help="one supervised worker per device: all (every CUDA GPU) or a list, e.g. cuda:0,cuda:1"
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics here (default: METRICS_PORT; 0: off)")
    models.add_model_option(p, "the model this worker loads")
    p.set_defaults(func=serve.cmd_worker)

    admin_queue.add_cancel_parser(sub)
    lanes.add_parsers(sub)
    personal.add_parsers(sub)  # settings, prefer, info, show (and admin defaults)
    models.add_parser(sub)

    admin.add_parser(sub)
    edit.add_parser(sub)
    inputs.add_parser(sub)

    p = sub.add_parser("train-embedded", help="(re)train the embedded model; extra arguments go to the trainer")
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=serve.cmd_train_embedded)
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
    if args.command in QUIET_COMMANDS and not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        load_dotenv()
        settings = Settings.from_env()
        return args.func(args, settings)
    except DaydreamError as exc:
        print(f"daydream: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
