"""`daydream admin …`: the host's twins of the `/admin` commands. Each
feature registers its subcommands here (a function that adds parsers to the
`admin` subparsers, in REGISTRARS); the host is an admin by definition."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Registrar = Callable[[argparse._SubParsersAction], None]

# Each feature's admin subcommands; a module of the feature adds its function here.
REGISTRARS: list[Registrar] = []


def add_parser(sub: argparse._SubParsersAction) -> None:
    if not REGISTRARS:
        return
    p = sub.add_parser("admin", help="the server admins' commands, for the host")
    admin = p.add_subparsers(dest="admin_command", required=True)
    for register in REGISTRARS:
        register(admin)
