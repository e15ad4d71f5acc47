"""Point discord.py at a Discord-compatible server instead of discord.com.

Two settings, both optional (see `.env.example`):

* `DISCORD_API_BASE` (`settings.discord_api_base`): the REST root, version
  included, e.g. `http://127.0.0.1:8765/api/v10`.
* `DISCORD_GATEWAY_URL` (`settings.discord_gateway_url`): the gateway
  websocket. Unset, it is the API's own host and port with the websocket
  scheme (`http://h:p/api/v10` -> `ws://h:p/`), which is where Daydream's
  test stand-in (the `tests/e2e/standin/` package) serves it.

This is for tests and for self-hosted, Discord-compatible servers; with the
defaults discord.py talks to discord.com exactly as it would unconfigured.

What discord.py hard-codes, and why only two of them matter here:

* `discord.http.Route.BASE`: every REST call (bot token, interaction
  callbacks, follow-ups and webhook edits all build a `Route`).
* `DiscordWebSocket.DEFAULT_GATEWAY`: an unsharded `Client` connects there
  without asking `GET /gateway/bot`, and falls back to it when a session
  is invalidated. (Resumes go to the `resume_gateway_url` from READY, which
  the server chooses.) An `AutoShardedClient` asks `GET /gateway/bot`, so
  there the server's answer decides.
* Attachment URLs come from the server's own payloads, so downloads follow
  it without configuration. `Asset.BASE` (avatars, icons), the
  `discord.com/channels/...` jump links and `Webhook.from_url`'s URL check
  stay on discord.com: Daydream uses none of them to talk to the server.
"""

from __future__ import annotations

import logging

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from shared.settings import DISCORD_API_BASE, Settings

logger = logging.getLogger(__name__)

DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"  # discord.py's own default


def gateway_for(api_base: str) -> str:
    """The gateway URL assumed for an API root: same host and port, websocket scheme, path `/`."""
    url = yarl.URL(api_base)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"DISCORD_API_BASE must be an http(s) URL, got {api_base!r}.")
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.with_scheme(scheme).with_path("/").with_query(None).with_fragment(None))


def configure(settings: Settings) -> None:
    """Set discord.py's REST root and gateway from `settings` (process-wide).

    Idempotent, and it also restores discord.com when called with default
    settings, so a test that pointed discord.py elsewhere can undo it."""
    api_base = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        gateway = settings.discord_gateway_url
    elif api_base == DISCORD_API_BASE:
        gateway = DISCORD_GATEWAY_URL
    else:
        gateway = gateway_for(api_base)
    Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    if api_base != DISCORD_API_BASE or gateway != DISCORD_GATEWAY_URL:
        logger.info("Discord endpoints: REST %s, gateway %s", api_base, gateway)
