"""Messages: created, edited and deleted by the REST handlers and interaction
callbacks, each change recorded as a revision and announced on the gateway;
and what members do to them (reactions)."""

from __future__ import annotations

import mimetypes
import re
import time
from datetime import UTC, datetime

from .constants import (
    CLIENT_FLAGS,
    DEFAULT_MESSAGE,
    DEFAULT_WAIT_S,
    EPHEMERAL,
    INTENT_DIRECT_MESSAGE_REACTIONS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    IS_COMPONENTS_V2,
    LOADING,
    NORMAL_REACTION,
    SUPPRESS_EMBEDS,
)
from .gateway import Gateway
from .state import Attachment, Interaction, Json, Message, Revision, Upload, User, Via
from .validation import MENTION_TYPES, check_message
from .wire import ApiError, form_error, image_size


class Messages(Gateway):
    # --- what members do ----------------------------------------------------------------

    async def react(
        self,
        message_id: int,
        emoji: str,
        user: User | None = None,
        *,
        wait_connected: bool = True,
        timeout: float = DEFAULT_WAIT_S,
    ) -> Json:
        """A member adds the Unicode reaction `emoji` to a recorded message: recorded on the
        message, and MESSAGE_REACTION_ADD goes to sessions with the reactions intent.
        Returns the event's payload, shaped as Discord documents it."""
        if wait_connected:
            await self.wait_connected(timeout)
        user = user or self.member
        message = self._messages[message_id]
        if message.deleted or message.ephemeral:
            raise LookupError(f"message {message_id} cannot be reacted to (deleted or ephemeral)")
        message.reactions.setdefault(emoji, set()).add(user.id)
        data: Json = {
            "user_id": str(user.id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": None, "name": emoji},
            "message_author_id": str(message.author.id),
            "burst": False,
            "type": NORMAL_REACTION,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            data["member"] = self._member(user)
            intent = INTENT_GUILD_MESSAGE_REACTIONS
        else:
            intent = INTENT_DIRECT_MESSAGE_REACTIONS
        await self._dispatch_with_intent(intent, "MESSAGE_REACTION_ADD", data)
        self._changed()
        return data

    # --- creating, editing, deleting ------------------------------------------------------

    def _new_attachments(
        self, payload: Json, uploads: dict[int, Upload], existing: list[Attachment]
    ) -> list[Attachment]:
        """Apply Discord's rule: without `attachments`, uploads are appended; with it,
        only the listed existing ones are kept, plus the uploads (referenced by index)."""
        for upload in uploads.values():
            if len(upload.data) > self.upload_limit_bytes:
                raise ApiError(413, "Request entity too large", 40005)
        entries: list[Json] | None = payload.get("attachments")
        # Listed, uploads are kept only if listed too (`{"id": <n of files[n]>}`): the others are dropped.
        kept_existing = list(existing) if entries is None else []
        by_id = {a.id: a for a in existing}
        meta: dict[int, Json] = {}
        for position, entry in enumerate(entries or []):
            ref = int(entry["id"])
            if ref in by_id:
                kept_existing.append(by_id[ref])
            elif ref in uploads:
                meta[ref] = entry
            else:
                raise form_error(["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", "Unknown attachment.")
        added = []
        for index in sorted(uploads) if entries is None else sorted(meta):
            upload, entry = uploads[index], meta.get(index, {})
            filename = entry.get("filename") or upload.filename
            width, height = image_size(upload.data)
            added.append(
                Attachment(
                    id=self._snowflake(),
                    filename=filename,
                    data=upload.data,
                    content_type=mimetypes.guess_type(filename)[0],
                    width=width,
                    height=height,
                    description=entry.get("description"),
                )
            )
        return kept_existing + added

    def _apply(self, message: Message, payload: Json, uploads: dict[int, Upload], via: Via, *, created: bool) -> None:
        """Set the fields a create or edit payload carries, check Discord's limits, record a revision."""
        content = (payload["content"] if "content" in payload else message.content) or ""
        flags = message.flags
        if "flags" in payload and payload["flags"] is not None:
            # Ephemerality is fixed at creation; the others are the client's to choose.
            settable = CLIENT_FLAGS if created else SUPPRESS_EMBEDS | IS_COMPONENTS_V2
            flags = (flags & ~settable) | (int(payload["flags"]) & settable)
        components = (payload["components"] or []) if "components" in payload else message.components
        check_message(payload, content, components, flags)
        embeds = (payload["embeds"] or []) if "embeds" in payload else message.embeds
        attachments = self._new_attachments(payload, uploads, message.attachments)
        if not (content or embeds or attachments or components or payload.get("sticker_ids") or payload.get("poll")):
            raise ApiError(400, "Cannot send an empty message", 50006)
        message.content, message.flags, message.components = content, flags & ~LOADING, components
        if created or "content" in payload or "allowed_mentions" in payload:
            message.mentions, message.mention_roles, message.mention_everyone = self._mentions(
                content, payload.get("allowed_mentions")
            )
        if created:
            message.nonce = payload.get("nonce")
        message.embeds = [{"type": "rich", **e} for e in embeds]
        message.attachments = attachments
        if not created:
            message.edited_at, message.edited_timestamp = time.monotonic(), datetime.now(UTC).isoformat()
        self._record_revision(message, via)

    def _mentions(self, content: str, allowed: Json | None) -> tuple[list[int], list[int], bool]:
        """Who the content pings (users, roles, @everyone/@here) once `allowed_mentions` is applied;
        without it, Discord parses them all."""
        parse = set(MENTION_TYPES if allowed is None else allowed.get("parse") or [])
        users = {int(u) for u in (allowed or {}).get("users") or []}
        roles = {int(r) for r in (allowed or {}).get("roles") or []}
        named_users = dict.fromkeys(int(u) for u in re.findall(r"<@!?(\d+)>", content))  # in order, once each
        named_roles = dict.fromkeys(int(r) for r in re.findall(r"<@&(\d+)>", content))
        return (
            [u for u in named_users if u in self.users and ("users" in parse or u in users)],
            [r for r in named_roles if "roles" in parse or r in roles],
            "everyone" in parse and bool(re.search(r"@(everyone|here)\b", content)),
        )

    def _record_revision(self, message: Message, via: Via) -> None:
        message.revisions.append(
            Revision(
                at=time.monotonic(),
                via=via,
                content=message.content,
                filenames=tuple(a.filename for a in message.attachments),
                custom_ids=tuple(message.custom_ids),
                flags=message.flags,
            )
        )

    def _new_message(
        self,
        channel_id: int,
        via: Via,
        *,
        kind: int = DEFAULT_MESSAGE,
        interaction: Interaction | None = None,
        author: User | None = None,
    ) -> Message:
        return Message(
            id=self._snowflake(),
            channel_id=channel_id,
            guild_id=None if channel_id in self.dm_channels else self.guild_id,
            author=author or self.bot_user,
            via=via,
            type=kind,
            interaction_id=interaction.id if interaction else None,
        )

    async def _create(
        self,
        channel_id: int,
        payload: Json,
        uploads: dict[int, Upload],
        via: Via,
        *,
        interaction: Interaction | None = None,
        kind: int = DEFAULT_MESSAGE,
    ) -> Message:
        message = self._new_message(channel_id, via, kind=kind, interaction=interaction)
        if via == "bot":
            payload = {**payload, "flags": int(payload.get("flags") or 0) & ~EPHEMERAL}
        self._apply(message, payload, uploads, via, created=True)
        self._messages[message.id] = message
        await self._announce("MESSAGE_CREATE", message)
        return message

    async def _edit(self, message: Message, payload: Json, uploads: dict[int, Upload], via: Via) -> Message:
        self._apply(message, payload, uploads, via, created=False)
        await self._announce("MESSAGE_UPDATE", message)
        return message

    async def _delete(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            data = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            intent = INTENT_DIRECT_MESSAGES if message.guild_id is None else INTENT_GUILD_MESSAGES
            await self._dispatch_with_intent(intent, "MESSAGE_DELETE", data)

    async def _announce(self, event: str, message: Message) -> None:
        # Ephemeral messages and loading states never reach the gateway.
        if message.ephemeral or message.loading:
            return
        data = self._message_payload(message)
        if message.guild_id is None:  # a DM: no member, and another intent
            await self._dispatch_with_intent(INTENT_DIRECT_MESSAGES, event, data)
            return
        data["member"] = {k: v for k, v in self._member(message.author).items() if k != "user"}
        await self._dispatch_with_intent(INTENT_GUILD_MESSAGES, event, data)
