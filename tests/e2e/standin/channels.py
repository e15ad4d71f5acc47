"""Channels beyond the one text channel: the bot's DMs, threads, forum channels and
their posts; what a member posts in them; and which permission posting needs where
(Send Messages in a text channel, Send Messages in Threads in a thread or forum post)."""

from __future__ import annotations

from datetime import UTC, datetime

from .constants import (
    GUILD_FORUM,
    GUILD_TEXT,
    INTENT_GUILDS,
    PUBLIC_THREAD,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    THREAD_TYPES,
)
from .messages import Messages
from .state import Json, Message, User
from .wire import ApiError

AUTO_ARCHIVE_MINUTES = 1440


class Channels(Messages):
    # --- made by the test (as a member or an admin would) -----------------------------------

    def open_dm(self, user: User) -> int:
        """The DM channel between the bot and `user`, opened now if it was not yet."""
        channel_id = self.dm_channel_id(user)
        if channel_id is None:
            channel_id = self._snowflake()
            self.dm_channels[channel_id] = self._dm_channel(channel_id, recipient=user)
            self._changed()
        return channel_id

    async def add_thread(self, name: str, parent_id: int | None = None, *, owner: User | None = None) -> int:
        """A public thread in a text channel (the main one by default), announced by THREAD_CREATE."""
        parent_id = parent_id or self.channel_id
        if self.channels[parent_id]["type"] != GUILD_TEXT:
            raise LookupError(f"channel {parent_id} is not a text channel")
        return await self._new_thread(name, parent_id, owner or self.member)

    async def add_text_channel(self, name: str, *, nsfw: bool = False) -> int:
        """Another text channel, announced by CHANNEL_CREATE; `nsfw`: marked age-restricted."""
        channel_id = self._snowflake()
        channel = {**self._channel(channel_id, name, len(self.channels)), "nsfw": nsfw}
        self.channels[channel_id] = channel
        await self._dispatch_with_intent(INTENT_GUILDS, "CHANNEL_CREATE", channel)
        self._changed()
        return channel_id

    async def set_nsfw(self, channel_id: int, nsfw: bool) -> None:
        """Mark a channel age-restricted (CHANNEL_UPDATE). Discord keeps the flag on text,
        voice and forum channels; a thread has none (it follows its parent) and a DM none."""
        channel = self.channels.get(channel_id)
        if channel is None or channel["type"] in THREAD_TYPES:
            raise ApiError(400, "Invalid Form Body: nsfw is not a field of this channel type", 50035)
        channel["nsfw"] = nsfw
        await self._dispatch_with_intent(INTENT_GUILDS, "CHANNEL_UPDATE", channel)
        self._changed()

    async def add_forum(self, name: str) -> int:
        """A forum channel (type 15): members post in it; nobody sends messages to it directly."""
        channel_id = self._snowflake()
        forum = {
            **self._channel(channel_id, name, len(self.channels)),
            "type": GUILD_FORUM,
            "available_tags": [],
            "default_reaction_emoji": None,
            "default_thread_rate_limit_per_user": 0,
            "default_sort_order": None,
            "default_forum_layout": 0,
        }
        self.channels[channel_id] = forum
        await self._dispatch_with_intent(INTENT_GUILDS, "CHANNEL_CREATE", forum)
        self._changed()
        return channel_id

    async def add_forum_post(self, forum_id: int, name: str, content: str, *, author: User | None = None) -> int:
        """A member's post in a forum: a thread whose first message (same id) is theirs."""
        if self.channels[forum_id]["type"] != GUILD_FORUM:
            raise LookupError(f"channel {forum_id} is not a forum channel")
        author = author or self.member
        thread_id = await self._new_thread(name, forum_id, author)
        await self.post_as(author, thread_id, content, message_id=thread_id)
        return thread_id

    async def post_as(self, user: User, channel_id: int, content: str, *, message_id: int | None = None) -> Message:
        """`user` (a member, not the bot) posts `content` in a channel: MESSAGE_CREATE follows."""
        message = self._new_message(channel_id, "member", author=user)
        if message_id is not None:
            message.id = message_id
        self._apply(message, {"content": content}, {}, "member", created=True)
        self._messages[message.id] = message
        await self._announce("MESSAGE_CREATE", message)
        self._changed()
        return message

    async def _new_thread(self, name: str, parent_id: int, owner: User) -> int:
        thread_id = self._snowflake()
        now = datetime.now(UTC).isoformat()
        thread: Json = {
            "id": str(thread_id),
            "type": PUBLIC_THREAD,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner.id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "archive_timestamp": now,
                "auto_archive_duration": AUTO_ARCHIVE_MINUTES,
                "locked": False,
                "create_timestamp": now,
            },
        }
        self.channels[thread_id] = thread
        await self._dispatch_with_intent(INTENT_GUILDS, "THREAD_CREATE", {**thread, "newly_created": True})
        self._changed()
        return thread_id

    # --- what posting needs ---------------------------------------------------------------

    def _is_thread(self, channel_id: int) -> bool:
        return channel_id in self.channels and self.channels[channel_id]["type"] in THREAD_TYPES

    def _send_permission(self, channel_id: int) -> int:
        """The permission a post in this guild channel needs; a forum takes no messages at all."""
        if self.channels[channel_id]["type"] == GUILD_FORUM:
            raise ApiError(400, "Cannot send messages in a non-text channel", 50008)
        return SEND_MESSAGES_IN_THREADS if self._is_thread(channel_id) else SEND_MESSAGES
