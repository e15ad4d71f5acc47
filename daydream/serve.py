"""The long-running commands: `daydream bot`, `daydream worker`, `daydream
demo`, and `daydream train-embedded`. Each imports its side only inside the
command, so `daydream imagine` never loads torch and `daydream worker` never
loads discord."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

from daydream.redis_server import RedisServer
from daydream.submit import cmd_imagine
from shared.errors import InvalidRequest
from shared.settings import Settings

DEMO_WORKER_WAIT_S = 300.0  # the worker loads and warms its model first


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run_bot

    run_bot(settings, sync=True if args.sync else None, metrics_port=args.metrics_port)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.devices:
        return _cmd_workers(args, settings)
    from worker.main import run_worker

    run_worker(
        settings, device=args.device, burst=args.burst, name=args.name, model=args.model, metrics_port=args.metrics_port
    )
    return 0


def _cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    """`--devices`: one supervised worker process per device (daydream/supervisor.py)."""
    from daydream.supervisor import parse_devices, run_workers

    if args.device:
        raise InvalidRequest("Give --device (one worker) or --devices (one per device), not both.")
    passed = (["--model", args.model] if args.model else []) + (["--burst"] if args.burst else [])
    port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    return run_workers(settings, parse_devices(args.devices), passed, args.name, port)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything on one machine, no Discord: a private redis-server, one
    worker process, and an /imagine job through the real queue."""
    with RedisServer(appendonly=False) as server:
        settings = dataclasses.replace(settings, redis_url=server.url)
        env = {**os.environ, "REDIS_URL": server.url, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        print(
            f"demo: private redis-server on {server.url}; starting a worker (loads the {settings.model} model)…",
            file=sys.stderr,
        )
        worker = subprocess.Popen([sys.executable, "-m", "daydream", "worker"], env=env)
        try:
            args.worker_timeout = max(args.worker_timeout, DEMO_WORKER_WAIT_S)
            return cmd_imagine(args, settings)
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def cmd_train_embedded(args: argparse.Namespace, settings: Settings) -> int:
    from worker.embedded.train import main as train_main

    train_main(args.train_args)
    return 0
