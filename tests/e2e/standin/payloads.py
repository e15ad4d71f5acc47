"""Discord's JSON for what the stand-in holds: members, roles, the guild,
attachments, messages, interactions and the application."""

from __future__ import annotations

import hashlib

from .constants import (
    APPLICATION_COMMAND,
    BOT_ROLE_ID,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    DM_APP_PERMISSIONS,
    INTENT_GUILD_MEMBERS,
    READ_MESSAGE_HISTORY,
    TEXT_PERMISSIONS,
    THREAD_TYPES,
    USE_APPLICATION_COMMANDS,
    VIEW_CHANNEL,
)
from .core import StandinCore
from .state import Attachment, Json, Message, User


class Payloads(StandinCore):
    def _member(self, user: User, *, permissions: int | None = None) -> Json:
        member: Json = {
            "user": user.payload(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(BOT_ROLE_ID)] if user.bot else [],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            member["permissions"] = str(permissions)
        return member

    def _role(self, role_id: int, name: str, permissions: int, *, bot: bool = False) -> Json:
        role: Json = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 1 if bot else 0,
            "permissions": str(permissions),
            "managed": bot,
            "mentionable": False,
            "flags": 0,
        }
        if bot:
            role["tags"] = {"bot_id": str(self.application_id)}
        return role

    def _guild(self, intents: int) -> Json:
        # Without the GUILD_MEMBERS intent Discord sends only the bot's own member.
        users = self.users.values() if intents & INTENT_GUILD_MEMBERS else [self.bot_user]
        members = [self._member(u) for u in users]
        channels = [
            {k: v for k, v in c.items() if k != "guild_id"}
            for c in self.channels.values()
            if c["type"] not in THREAD_TYPES
        ]
        threads = [c for c in self.channels.values() if c["type"] in THREAD_TYPES]  # the active ones
        return {
            "id": str(self.guild_id),
            "name": "Daydream stand-in",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.member.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "features": [],
            "roles": [
                self._role(self.guild_id, "@everyone", VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS),
                self._role(BOT_ROLE_ID, self.bot_user.username, self.bot_permissions, bot=True),
            ],
            "emojis": [],
            "stickers": [],
            "joined_at": self.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.users),
            "members": members,
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _attachment_payload(self, message: Message, a: Attachment) -> Json:
        url = f"{self.url}/attachments/{message.channel_id}/{a.id}/{a.filename}"
        payload: Json = {
            "id": str(a.id),
            "filename": a.filename,
            "size": a.size,
            "url": url,
            "proxy_url": url,
            "content_type": a.content_type,
            "flags": 0,
        }
        if a.width is not None:
            payload["width"], payload["height"] = a.width, a.height
        if a.description is not None:
            payload["description"] = a.description
        return payload

    def _message_payload(self, m: Message) -> Json:
        payload: Json = {
            "id": str(m.id),
            "type": m.type,
            "channel_id": str(m.channel_id),
            "author": m.author.payload(),
            "content": m.content,
            "timestamp": self._timestamp(m.id),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": m.mention_everyone,
            "mentions": [self.users[u].payload() for u in m.mentions],
            "mention_roles": [str(r) for r in m.mention_roles],
            "attachments": [self._attachment_payload(m, a) for a in m.attachments],
            "embeds": m.embeds,
            "components": m.components,
            "pinned": False,
            "flags": m.flags,
        }
        if m.nonce is not None:
            payload["nonce"] = m.nonce
        if m.edited_timestamp is not None:
            payload["edited_timestamp"] = m.edited_timestamp
        if m.guild_id is not None:
            payload["guild_id"] = str(m.guild_id)
        if m.reactions:
            payload["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.application_id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for emoji, users in m.reactions.items()
            ]
        if m.via in ("interaction", "webhook"):
            payload["webhook_id"] = str(self.application_id)
            payload["application_id"] = str(self.application_id)
        if m.interaction_id is not None:
            it = self._interactions[m.interaction_id]
            metadata: Json = {
                "id": str(it.id),
                "type": it.type,
                "user": it.user.payload(),
                "authorizing_integration_owners": {"0": str(it.guild_id or 0)},
            }
            if it.type == APPLICATION_COMMAND:
                metadata["name"] = it.payload["data"]["name"]
                metadata["command_type"] = it.payload["data"].get("type", 1)
            if it.message_id is not None:
                metadata["interacted_message_id"] = str(it.message_id)
            if it.original_message_id is not None and it.original_message_id != m.id:
                metadata["original_response_message_id"] = str(it.original_message_id)
            payload["interaction_metadata"] = metadata
        return payload

    def _interaction_payload(
        self, interaction_id: int, token: str, kind: int, data: Json, user: User, channel_id: int
    ) -> Json:
        if channel_id in self.dm_channels:
            # In the bot's DM: the user, no member and no guild; context 1; "0" for the guild install.
            return {
                "id": str(interaction_id),
                "application_id": str(self.application_id),
                "type": kind,
                "data": data,
                "channel": self.dm_channels[channel_id],
                "channel_id": str(channel_id),
                "user": user.payload(),
                "token": token,
                "version": 1,
                "app_permissions": str(DM_APP_PERMISSIONS),
                "locale": "en-US",
                "entitlements": [],
                "entitlement_sku_ids": [],
                "authorizing_integration_owners": {"0": "0"},
                "context": CONTEXT_BOT_DM,
                "attachment_size_limit": self.upload_limit_bytes,
            }
        channel = self.channels[channel_id]
        return {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "guild_id": str(self.guild_id),
            "channel": {**channel, "permissions": str(TEXT_PERMISSIONS)},
            "channel_id": str(channel_id),
            "member": self._member(user, permissions=self.member_permissions.get(user.id, TEXT_PERMISSIONS)),
            "token": token,
            "version": 1,
            "app_permissions": str(self.bot_permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": CONTEXT_GUILD,
            "attachment_size_limit": self.upload_limit_bytes,
        }

    def _me_payload(self) -> Json:
        return {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None, "flags": 0}

    def _application_payload(self) -> Json:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot": self.bot_user.payload(),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(str(self.application_id).encode()).hexdigest(),
            "owner": self.member.payload(),
            "team": None,
            "flags": 0,
            "hook": True,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
            "integration_types_config": {"0": {}},
        }
