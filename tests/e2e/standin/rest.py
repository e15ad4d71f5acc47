"""REST handlers for users, the application, the gateway's address, DMs,
members, channels, messages, reactions, and the CDN for attachments."""

from __future__ import annotations

import time

from aiohttp import web

from .channels import Channels
from .constants import (
    ADD_REACTIONS,
    ATTACH_FILES,
    MANAGE_MESSAGES,
    NONCE_WINDOW_S,
    READ_MESSAGE_HISTORY,
    VIEW_CHANNEL,
)
from .state import Json, Message
from .validation import check_nonce
from .wire import ApiError, FormErrors, form_error, json_response, read_body


class Rest(Channels):
    # --- users, application, gateway ---------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response({**self._me_payload(), "locale": "en-US", "bio": ""})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, "Unknown User", 10013)
        return json_response(user.payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(self._application_payload())

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000 - len(self.sessions), "reset_after": 86_400_000, "max_concurrency": 1}
        return json_response({"url": self.gateway_url.rstrip("/"), "shards": 1, "session_start_limit": limit})

    async def _create_dm(self, request: web.Request) -> web.Response:
        """Open (or return the open) DM channel between the bot and `recipient_id`."""
        body = await request.json() if request.body_exists else {}
        try:
            recipient = self.users.get(int(body.get("recipient_id")))
        except (TypeError, ValueError):
            raise form_error(["recipient_id"], "NUMBER_TYPE_COERCE", "Value is not snowflake.") from None
        if recipient is None or recipient.bot:
            raise ApiError(400, "Invalid Recipient(s)", 50033)
        return json_response(self.dm_channels[self.open_dm(recipient)])

    async def _get_member(self, request: web.Request) -> web.Response:
        if int(request.match_info["guild_id"]) != self.guild_id:
            raise ApiError(404, "Unknown Guild", 10004)
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, "Unknown Member", 10007)
        return json_response(self._member(user))

    # --- channels and messages -------------------------------------------------------------

    def _channel_of(self, request: web.Request) -> int:
        channel_id = int(request.match_info["channel_id"])
        if channel_id not in self.channels and channel_id not in self.dm_channels:
            raise ApiError(404, "Unknown Channel", 10003)
        return channel_id

    def _in_guild(self, channel_id: int) -> bool:
        """Guild permissions apply (a DM has none to check)."""
        return channel_id in self.channels

    def _channel_message(self, request: web.Request) -> Message:
        channel_id = self._channel_of(request)
        message = self._messages.get(int(request.match_info["message_id"]))
        if message is None or message.channel_id != channel_id or message.deleted or message.ephemeral:
            raise ApiError(404, "Unknown Message", 10008)
        return message

    def _require(self, permissions: int) -> None:
        if not self.bot_permissions & VIEW_CHANNEL:
            raise ApiError(403, "Missing Access", 50001)
        if self.bot_permissions & permissions != permissions:
            raise ApiError(403, "Missing Permissions", 50013)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        return json_response(self.channels.get(channel_id) or self.dm_channels[channel_id])

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel_of(request)
        return web.Response(status=204)

    async def _get_channel_messages(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        if self._in_guild(channel_id):
            self._require(READ_MESSAGE_HISTORY)
        limit = int(request.query.get("limit", "50"))
        found = self.messages(channel_id, include_ephemeral=False)[::-1][:limit]  # newest first, as Discord
        return json_response([self._message_payload(m) for m in found])

    async def _post_channel_message(self, request: web.Request) -> web.Response:
        channel_id = self._channel_of(request)
        payload, uploads = await read_body(request)
        if self._in_guild(channel_id):
            self._require(self._send_permission(channel_id) | (ATTACH_FILES if uploads else 0))
        elif int(self.dm_channels[channel_id]["recipients"][0]["id"]) in self.dms_closed:
            raise ApiError(403, "Cannot send messages to this user", 50007)
        earlier = self._nonce_match(channel_id, payload)
        if earlier is not None:
            return json_response(self._message_payload(earlier))  # enforce_nonce: the first message, no new one
        message = await self._create(channel_id, payload, uploads, "bot")
        return json_response(self._message_payload(message))

    def _nonce_match(self, channel_id: int, payload: Json) -> Message | None:
        """With `enforce_nonce`, the bot's message of the past few minutes in this channel that
        carried the same nonce. A nonce Discord refuses is refused before any is looked up."""
        nonce = payload.get("nonce")
        if not payload.get("enforce_nonce") or nonce is None:
            return None
        errors = FormErrors()
        check_nonce(nonce, errors)
        errors.raise_any()
        since = time.monotonic() - NONCE_WINDOW_S
        return next(
            (
                m
                for m in self._messages.values()
                if m.channel_id == channel_id
                and m.author.id == self.bot_user.id
                and m.nonce is not None
                and str(m.nonce) == str(nonce)
                and m.created_at >= since
                and not m.deleted
            ),
            None,
        )

    async def _get_channel_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.guild_id is not None:
            self._require(READ_MESSAGE_HISTORY)
        return json_response(self._message_payload(message))

    async def _patch_channel_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.author.id != self.bot_user.id:
            raise ApiError(403, "Cannot edit a message authored by another user", 50005)
        payload, uploads = await read_body(request)
        if uploads:
            self._require(ATTACH_FILES)
        return json_response(self._message_payload(await self._edit(message, payload, uploads, "bot")))

    async def _delete_channel_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.author.id != self.bot_user.id:
            if message.guild_id is None:
                raise ApiError(403, "Cannot execute action on a DM channel", 50003)
            self._require(MANAGE_MESSAGES)  # another's message: only moderators delete it
        await self._delete(message)
        return web.Response(status=204)

    async def _put_reaction(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message.guild_id is not None:
            self._require(ADD_REACTIONS | READ_MESSAGE_HISTORY)
        message.reactions.setdefault(request.match_info["emoji"], set()).add(self.application_id)
        return web.Response(status=204)

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        users = message.reactions.get(request.match_info["emoji"], set())
        users.discard(self.application_id)
        if not users:
            message.reactions.pop(request.match_info["emoji"], None)
        return web.Response(status=204)

    async def _get_attachment(self, request: web.Request) -> web.Response:
        # The CDN: attachment URLs in message payloads point here.
        attachment_id = int(request.match_info["attachment_id"])
        for message in self._messages.values():
            for a in message.attachments:
                if a.id == attachment_id:
                    return web.Response(body=a.data, content_type=a.content_type or "application/octet-stream")
        upload = self.member_uploads.get(attachment_id)  # a file a member gave a command
        if upload is not None:
            return web.Response(body=upload.data, content_type=upload.content_type or "application/octet-stream")
        raise web.HTTPNotFound()
