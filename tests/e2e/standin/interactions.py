"""Interactions: a member runs a slash command or clicks a button (INTERACTION_CREATE),
the bot answers on the callback route, then edits and follows up through the
interaction's webhook while its token lives."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from .channels import Channels
from .commands import Commands
from .constants import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    CHAT_INPUT_COMMAND_MESSAGE,
    DEFAULT_MESSAGE,
    DEFAULT_WAIT_S,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    GUILD_FORUM,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    OPTION_ATTACHMENT,
    UPDATE_MESSAGE,
)
from .member_input import attachment_from, check_modal, check_select, modal_submission
from .state import Callback, Interaction, Json, Message, Upload, User, walk_components
from .wire import ApiError, form_error, json_response, read_body


class Interactions(Channels, Commands):
    # --- what members do ----------------------------------------------------------------

    async def slash_command(
        self,
        name: str,
        options: Json | None = None,
        *,
        user: User | None = None,
        channel_id: int | None = None,
        in_dm: bool = False,
        validate: bool = True,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Interaction:
        """A member runs `/name` (`"admin status"` for a subcommand) with `options` ({name: value}),
        in `channel_id` (the main channel by default), or with `in_dm` in their DM with the bot.

        With `validate`, only what Discord's client would send is allowed: a
        registered command (in a DM, a global one allowed there), known options,
        required ones present, lengths, ranges and choices respected.
        `validate=False` forges anything."""
        if wait_connected:
            await self.wait_connected(timeout)  # a starting bot registers its commands before it connects
        user = user or self.member
        if in_dm:
            channel_id = self.open_dm(user)
        elif channel_id is not None and self.channels[channel_id]["type"] == GUILD_FORUM:
            raise LookupError(f"channel {channel_id} is a forum: commands are run in its posts")
        words = name.split()
        command = self._find_command(words[0], in_dm=in_dm)
        if command is None and validate:
            where = "as a global command usable in DMs" if in_dm else f"(global or guild {self.guild_id})"
            raise LookupError(f"/{words[0]} is not registered {where}")
        declared = (command or {}).get("options", [])
        data_options = self._command_options(words[1:], declared, options or {}, validate)
        data: Json = {
            "id": (command or {}).get("id", str(self._snowflake())),
            "name": words[0],
            "type": (command or {}).get("type", 1),
        }
        if data_options:
            data["options"] = data_options
            resolved = self._resolve_uploads(data_options, channel_id or self.channel_id)
            if resolved:
                data["resolved"] = {"attachments": resolved}
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(APPLICATION_COMMAND, data, user, channel_id or self.channel_id, None)
        await self._deliver(interaction, wait_connected, timeout)
        return interaction

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user: User | None = None,
        strict: bool = True,
        values: list[str] | None = None,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Interaction:
        """A member clicks the button `custom_id` on a recorded message (or, with `values`,
        picks those options of the select menu `custom_id`).

        `strict=False` lets a test click a custom_id the message does not carry (a forged one)."""
        message = self._messages[message_id]
        if strict and custom_id not in message.custom_ids:
            raise LookupError(f"message {message_id} has no button {custom_id!r}; it has {message.custom_ids}")
        component = next((c for c in walk_components(message.components) if c.get("custom_id") == custom_id), {})
        data: Json = {"custom_id": custom_id, "component_type": component.get("type", 2)}
        if values is not None:
            if strict:
                check_select(component, values)
            data["values"] = list(values)
        if "id" in component:
            data["id"] = component["id"]
        interaction = self._new_interaction(MESSAGE_COMPONENT, data, user, message.channel_id, message)
        await self._deliver(interaction, wait_connected, timeout)
        return interaction

    async def submit_modal(
        self,
        interaction: Interaction,
        values: list[str],
        *,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Interaction:
        """The member fills the modal the bot answered `interaction` with (one value per
        field, in order) and submits it: a MODAL_SUBMIT interaction from the same place."""
        if interaction.modal is None:
            raise LookupError(f"interaction {interaction.id} was not answered with a modal")
        data = modal_submission(interaction.modal, values)
        message = self._messages.get(interaction.message_id) if interaction.message_id is not None else None
        submitted = self._new_interaction(MODAL_SUBMIT, data, interaction.user, interaction.channel_id, message)
        await self._deliver(submitted, wait_connected, timeout)
        return submitted

    def _resolve_uploads(self, options: list[Json], channel_id: int) -> Json:
        """Files given as attachment options (an `Upload` as the value): stored where the
        CDN route serves them, the option's value their id, their payloads resolved."""
        resolved: Json = {}
        for option in options:
            if not isinstance(option.get("value"), Upload):
                continue
            attachment = attachment_from(option["value"], self._snowflake())
            self.member_uploads[attachment.id] = attachment
            url = f"{self.url}/attachments/{channel_id}/{attachment.id}/{attachment.filename}"
            payload: Json = {
                "id": str(attachment.id), "filename": attachment.filename, "size": attachment.size, "url": url,
                "proxy_url": url, "content_type": attachment.content_type, "ephemeral": True,
            }  # fmt: skip
            if attachment.width is not None:
                payload["width"], payload["height"] = attachment.width, attachment.height
            option["type"], option["value"] = OPTION_ATTACHMENT, str(attachment.id)
            resolved[str(attachment.id)] = payload
        return resolved

    def expire_token(self, interaction_id: int) -> None:
        """End an interaction token's life now (instead of waiting `token_lifetime_s`)."""
        self._interactions[interaction_id].expires_at = time.monotonic()

    def _new_interaction(
        self, kind: int, data: Json, user: User | None, channel_id: int, message: Message | None
    ) -> Interaction:
        user = user or self.member
        interaction_id = self._snowflake()
        # Discord's tokens are long opaque strings; the prefix keeps them recognisable in logs.
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        payload = self._interaction_payload(interaction_id, token, kind, data, user, channel_id)
        if message is not None:
            payload["message"] = self._message_payload(message)
        now = time.monotonic()
        interaction = Interaction(
            id=interaction_id,
            type=kind,
            token=token,
            user=user,
            channel_id=channel_id,
            guild_id=None if channel_id in self.dm_channels else self.guild_id,
            payload=payload,
            created_at=now,
            expires_at=now + self.token_lifetime_s,
            message_id=message.id if message is not None else None,
        )
        self._interactions[interaction_id] = interaction
        self._by_token[token] = interaction
        return interaction

    async def _deliver(self, interaction: Interaction, wait_connected: bool, timeout: float) -> None:
        if wait_connected:
            session = await self.wait_connected(timeout)
        elif self.sessions:
            session = self.sessions[-1]  # buffered until it resumes, as Discord does
        else:
            raise RuntimeError("no bot has identified on the gateway yet")
        interaction.session_id = session.id
        await self._send_dispatch(session, "INTERACTION_CREATE", interaction.payload)
        self._changed()

    # --- REST: the callback ----------------------------------------------------------------

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        received_at: float = request["received_at"]
        interaction = self._interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise ApiError(404, "Unknown interaction", 10062)
        payload, uploads = await read_body(request)
        kind = int(payload.get("type", 0))
        data: Json = payload.get("data") or {}
        started = interaction.dispatched_at or interaction.created_at
        status = 200
        try:
            if self.ack_deadline_s is not None and received_at - started > self.ack_deadline_s:
                raise ApiError(404, "Unknown interaction", 10062)
            if interaction.acknowledged:
                raise ApiError(400, "Interaction has already been acknowledged.", 40060)
            message = await self._respond(interaction, kind, data, uploads)
        except ApiError as error:
            status = error.status
            raise
        finally:
            callback = Callback(kind, data, received_at, received_at - started, status)
            interaction.callbacks.append(callback)
        if request.query.get("with_response", "").lower() not in {"1", "true"}:
            return web.Response(status=204)
        answer: Json = {"interaction": {"id": str(interaction.id), "type": interaction.type}}
        if message is not None:
            answer["interaction"].update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
        if message is not None and kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            # Only a message sent or updated is a resource: a deferral's "thinking…" is not one.
            answer["resource"] = {"type": kind, "message": self._message_payload(message)}
        return json_response(answer)

    async def _respond(self, it: Interaction, kind: int, data: Json, uploads: dict[int, Upload]) -> Message | None:
        """Carry out one callback; return the message it created or changed."""
        if kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and it.type not in (MESSAGE_COMPONENT, MODAL_SUBMIT):
            raise form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid")
        if kind == CHANNEL_MESSAGE:
            msg_kind = CHAT_INPUT_COMMAND_MESSAGE if it.type == APPLICATION_COMMAND else DEFAULT_MESSAGE
            message = await self._create(it.channel_id, data, uploads, "interaction", interaction=it, kind=msg_kind)
            it.original_message_id = message.id
            return message
        if kind == DEFERRED_CHANNEL_MESSAGE:
            # The "thinking…" message: recorded, never broadcast; the first follow-up or edit answers it.
            msg_kind = CHAT_INPUT_COMMAND_MESSAGE if it.type == APPLICATION_COMMAND else DEFAULT_MESSAGE
            message = self._new_message(it.channel_id, "interaction", kind=msg_kind, interaction=it)
            message.flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            self._record_revision(message, "interaction")
            self._messages[message.id] = message
            it.original_message_id = message.id
            return message
        if kind == DEFERRED_UPDATE_MESSAGE:
            it.original_message_id = it.message_id
            return None
        if kind == UPDATE_MESSAGE:
            assert it.message_id is not None
            it.original_message_id = it.message_id
            return await self._edit(self._messages[it.message_id], data, uploads, "interaction")
        if kind == MODAL:
            if it.type == MODAL_SUBMIT:  # a modal cannot answer a modal
                raise form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid")
            check_modal(data)
            it.modal = data
            return None
        if kind == AUTOCOMPLETE_RESULT:
            return None
        raise form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is invalid")

    # --- REST: the interaction's webhook ------------------------------------------------------

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        if int(request.match_info["application_id"]) != self.application_id:
            raise ApiError(404, "Unknown Webhook", 10015)
        interaction = self._by_token.get(request.match_info["token"])
        if interaction is None or request["received_at"] > interaction.expires_at:
            raise ApiError(401, "Invalid Webhook Token", 50027)
        if not interaction.acknowledged:
            raise ApiError(404, "Unknown Webhook", 10015)  # the webhook exists once the interaction is answered
        return interaction

    def _webhook_message(self, request: web.Request) -> tuple[Interaction, Message]:
        interaction = self._webhook_interaction(request)
        raw = request.match_info["message_id"]
        message_id = interaction.original_message_id if raw == "@original" else int(raw)
        owned = {interaction.original_message_id, *interaction.followup_ids}
        message = self._messages.get(message_id) if message_id in owned and message_id is not None else None
        if message is None or message.deleted:
            raise ApiError(404, "Unknown Message", 10008)
        return interaction, message

    async def _post_followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        payload, uploads = await read_body(request)
        original = self._messages.get(interaction.original_message_id or 0)
        if original is not None and original.loading:
            # Discord answers a deferred "thinking" message with the first follow-up,
            # keeping the ephemerality chosen when deferring.
            payload = {**payload, "flags": original.flags & EPHEMERAL}
            message = await self._edit(original, payload, uploads, "webhook")
        else:
            message = await self._create(interaction.channel_id, payload, uploads, "webhook", interaction=interaction)
        interaction.followup_ids.append(message.id)
        if request.query.get("wait", "").lower() in {"1", "true"}:
            return json_response(self._message_payload(message))
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        return json_response(self._message_payload(message))

    async def _patch_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        payload, uploads = await read_body(request)
        payload.pop("flags", None)  # ephemerality cannot change on edit
        return json_response(self._message_payload(await self._edit(message, payload, uploads, "webhook")))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_message(request)
        await self._delete(message)
        return web.Response(status=204)
