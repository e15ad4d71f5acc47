"""A prompt that makes more jobs than the channel's threshold (`{a, b, c}`,
`--repeat`) waits for its author's ✅ first: the prompt is kept in Redis for a
while under a random token, which the button's custom_id carries (`ddc:<token>`,
outside the result buttons' `dd:` pattern). A click by its author queues it
exactly as /imagine would; anyone else is told it is not theirs."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot import replies
from bot.store import AsyncStore
from shared import messages
from shared.resolution import Resolution

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

PATTERN = r"ddc:(?P<token>[0-9a-f]{32})"


async def ask_to_confirm(
    interaction: discord.Interaction, text: str, resolution: Resolution, store: AsyncStore
) -> None:
    token = await store.call(store.sync.pending.keep, text, interaction.user.id, interaction.channel_id)
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label=f"Queue {len(resolution.jobs)} jobs", emoji="✅", custom_id=f"ddc:{token}"))
    await replies.tell_privately(interaction, messages.confirm_many(resolution.jobs, resolution.limits), view=view)


class ConfirmButton(discord.ui.DynamicItem[discord.ui.Button], template=PATTERN):
    def __init__(self, token: str) -> None:
        super().__init__(discord.ui.Button(custom_id=f"ddc:{token}", emoji="✅"))
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ConfirmButton:
        return cls(match["token"])

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.imagine import imagine  # it asks this module to confirm

        bot: DaydreamBot = interaction.client  # type: ignore[assignment]
        store = bot.jobs
        pending = await store.call(store.sync.pending.peek, self.token)
        if pending is not None and pending["user_id"] != interaction.user.id:
            await replies.tell_privately(interaction, messages.CONFIRM_NOT_YOURS)
            return
        # One click queues it: a second (or a double click) finds the token gone.
        pending = await store.call(store.sync.pending.take, self.token)
        if pending is None:
            await replies.tell_privately(interaction, messages.CONFIRM_EXPIRED)
            return
        await imagine(interaction, pending["text"], bot.settings, store, confirmed=True)
