"""Daydream's version, as the installed package says it: workers announce it
(`/admin workers`, `daydream status`), so a rolling upgrade shows who runs what."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("daydream-bot")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
