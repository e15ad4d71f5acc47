"""A local stand-in for Discord: the REST v10 and gateway subset that
discord.py and Daydream use, on 127.0.0.1, recording everything.

In a test (same event loop):

    async with Standin(token_lifetime_s=5) as discord_:
        env = discord_.env()                # DISCORD_API_BASE, DISCORD_TOKEN, ...
        ...start the bot against it...
        it = await discord_.slash_command("imagine", {"prompt": "a red circle"})
        grid = await discord_.wait_for(lambda: discord_.messages(discord_.channel_id, with_attachments=True))
        await discord_.click(grid[0].id, grid[0].custom_ids[0])
        other = discord_.add_member("other")
        await discord_.react(grid[0].id, "\N{ENVELOPE}\N{VARIATION SELECTOR-16}", user=other)
        dm = await discord_.wait_for(lambda: discord_.dms(other))  # what the bot sent `other` by DM
        discord_.fail("POST /channels/*/messages", status=429, retry_after=0.3)

Standalone, for a bot started by hand: `python -m tests.e2e.standin --port 8765`
prints the environment to give the bot, and takes injections on
`POST /_standin/slash`, `POST /_standin/click` and `POST /_standin/react`.

Payloads follow Discord's documented shapes closely enough that discord.py
parses them unpatched; where Discord enforces a rule that Daydream must
respect the stand-in enforces it and answers with Discord's error shape:
3 s to acknowledge, 15 min token lifetime, 2000 characters, 5×5 buttons,
custom_id ≤ 100, labels ≤ 80, a custom_id on every clickable button, emoji
objects, rows of 1–5 and only rows at the top; allowed_mentions (and `parse`
exclusive of ids), nonces ≤ 25 characters and `enforce_nonce`; uploads kept
only when listed in `attachments`; the `Bot` token on bot routes; Send
Messages in Threads in threads and forum posts; only the author edits;
upload size; rate limits. It counts the invalid requests (401, 403, 429)
Discord would hold against the IP, and records every request's body so a
test can check it against Discord's OpenAPI description.

Members act through it: `slash_command` (in a channel, a thread or the bot's
DM), `click`, `react`, `post_as`; `add_thread`, `add_forum`, `add_forum_post`
make channels (`add_text_channel(name, nsfw=True)` an age-restricted one, `set_nsfw` marks one);
`add_member(name, permissions=MANAGE_GUILD)` makes an admin; `request_reconnect` and `invalidate_sessions` drive the gateway.

The layers, each a module: `core` (state, queries, waiting) → `payloads`
(Discord's JSON) → `gateway` → `messages` (with `validation`: what Discord
refuses in a body) → `channels` (DMs, threads, forums) → `commands`,
`interactions`, `rest` (REST handlers) and `limits` (faults, auth, rate limits,
invalid requests) → `control` (the standalone mode's API) → `server`
(`Standin`: routes, start, stop). `state` holds what is recorded, `wire`
Discord's HTTP conventions, `constants` its numbers.
"""

from __future__ import annotations

from .constants import (
    ACK_DEADLINE_S,
    APPLICATION_COMMAND,
    APPLICATION_ID,
    ATTACH_FILES,
    BOT_ROLE_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    CHANNEL_MESSAGE,
    CONTEXT_BOT_DM,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    DM,
    EPHEMERAL,
    GUILD_FORUM,
    GUILD_ID,
    GUILD_TEXT,
    INVALID_REQUEST_LIMIT,
    INVALID_REQUEST_WINDOW_S,
    LOADING,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    MEMBER_ID,
    MESSAGE_COMPONENT,
    PUBLIC_THREAD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    TEXT_PERMISSIONS,
    TOKEN_LIFETIME_S,
    UPDATE_MESSAGE,
    VIEW_CHANNEL,
)
from .gateway import GatewaySocket
from .server import Standin
from .state import (
    Attachment,
    Callback,
    Fault,
    GatewaySession,
    Interaction,
    Json,
    Message,
    Request,
    Revision,
    Upload,
    User,
)
from .wire import ApiError

__all__ = [
    "ACK_DEADLINE_S",
    "APPLICATION_COMMAND",
    "APPLICATION_ID",
    "ATTACH_FILES",
    "BOT_ROLE_ID",
    "BOT_TOKEN",
    "CHANNEL_ID",
    "CHANNEL_MESSAGE",
    "CONTEXT_BOT_DM",
    "DEFERRED_CHANNEL_MESSAGE",
    "DEFERRED_UPDATE_MESSAGE",
    "DM",
    "EPHEMERAL",
    "GUILD_FORUM",
    "GUILD_ID",
    "GUILD_TEXT",
    "INVALID_REQUEST_LIMIT",
    "INVALID_REQUEST_WINDOW_S",
    "LOADING",
    "MANAGE_GUILD",
    "MANAGE_MESSAGES",
    "MEMBER_ID",
    "MESSAGE_COMPONENT",
    "PUBLIC_THREAD",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "SEND_MESSAGES_IN_THREADS",
    "TEXT_PERMISSIONS",
    "TOKEN_LIFETIME_S",
    "UPDATE_MESSAGE",
    "VIEW_CHANNEL",
    "ApiError",
    "Attachment",
    "Callback",
    "Fault",
    "GatewaySession",
    "GatewaySocket",
    "Interaction",
    "Json",
    "Message",
    "Request",
    "Revision",
    "Standin",
    "Upload",
    "User",
]
