"""The buttons under every result: U1–U4, V1–V4, 🔄, and Vary/Upscale under an upscale.

One `DynamicItem` matches them all by custom_id regex, so buttons on messages
a worker posted, or posted before a bot restart, reach the bot: the custom_id
is the whole state (shared/custom_id.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot import clicks, replies
from shared.custom_id import PATTERN, ButtonRef, decode, encode
from shared.errors import DaydreamError, InvalidRequest
from shared.job import JobState
from shared.settings import Settings
from shared.store import JobStore

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)


class ResultButton(discord.ui.DynamicItem[discord.ui.Button], template=PATTERN):
    """A click on any Daydream button. A forged or malformed custom_id still
    becomes an item, whose callback explains the problem: an exception in
    `from_custom_id` would leave the user with "This interaction failed"."""

    def __init__(self, custom_id: str, *, ref: ButtonRef | None = None, problem: str | None = None) -> None:
        super().__init__(discord.ui.Button(custom_id=custom_id))
        self.ref = ref
        self.problem = problem

    @classmethod
    def for_ref(cls, ref: ButtonRef) -> ResultButton:
        return cls(encode(ref.action, ref.job_id, ref.index), ref=ref)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        try:
            ref = decode(match["action"], match["job"], match["index"], match["extra"])
        except InvalidRequest as exc:
            logger.info("unusable custom_id %r from user %s: %s", match.string, interaction.user.id, exc)
            return cls(match.string, problem=str(exc))
        return cls(match.string, ref=ref)

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.ref is None:
            await replies.tell_privately(interaction, self.problem or "This button is not one Daydream knows.")
            return
        bot = cast("DaydreamBot", interaction.client)
        await handle_click(interaction, self.ref, bot.settings, bot.store)


async def handle_click(interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: JobStore) -> None:
    """Turn a click into a child job owned by the clicker. Every failure is
    answered ephemerally: discord.py only logs what escapes a dynamic item."""
    # 1. The result must be deliverable here after the 15-minute token expires.
    refusal = replies.missing_permissions(interaction)
    if refusal:
        await replies.tell_privately(interaction, refusal)
        return

    # 2. Acknowledge silently within 3 s: the message with the buttons stays as it is.
    await interaction.response.defer()

    plan: clicks.ClickPlan | None = None
    submitted = False
    try:
        # 3. Parent, permission to click, image index, an earlier U<i>, a live worker.
        plan = await asyncio.to_thread(
            clicks.plan_click,
            store,
            settings,
            ref,
            interaction.user.id,
            interaction.permissions.administrator,
            replies.reply_target(interaction, settings.token_lifetime_s),
        )
        if plan.earlier is not None:
            await replies.tell_privately(interaction, earlier_upscale_text(plan.earlier, ref.index))
            return
        assert plan.child is not None
        # 4. Post the waiting line, then queue the job knowing that message.
        await post_and_submit(interaction, plan, store)
        submitted = True
        logger.info(
            "queued %s job %s (parent %s) for user %s", plan.child.kind, plan.child.id, ref.job_id, plan.child.user_id
        )
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
    except Exception:
        logger.exception("click %s on job %s failed", ref.action, ref.job_id)
        await replies.tell_privately(interaction, replies.GENERIC_ERROR)
    finally:
        if plan is not None and plan.child is not None and plan.claim is not None and not submitted:
            await _release(store, plan.claim, plan.child.id)


async def post_and_submit(interaction: discord.Interaction, plan: clicks.ClickPlan, store: JobStore) -> None:
    """The worker edits this follow-up by its id (the original response of a
    click is the parent's message). The id is on the record before the job is
    enqueued, so a worker can never start the job without knowing it."""
    child = plan.child
    assert child is not None
    message = await interaction.followup.send(
        replies.waiting_text(child, plan.position), wait=True, allowed_mentions=replies.only_mention(child.user_id)
    )
    child.reply.message_id = message.id
    try:
        await asyncio.to_thread(clicks.submit_child, store, child, plan.claim)
    except Exception:
        try:
            await interaction.followup.delete_message(message.id)
        except discord.HTTPException:
            logger.warning("could not delete the waiting message %s", message.id, exc_info=True)
        raise


def earlier_upscale_text(earlier: clicks.Earlier, index: int) -> str:
    record = earlier.record
    link = replies.message_link(record.reply) if record else None
    if record is not None and record.state == JobState.DONE:
        head = f"Image #{index} was already upscaled"
    else:
        head = f"Image #{index} is already being upscaled"
    return f"{head}: {link}" if link else f"{head}; it will appear in this channel shortly."


async def _release(store: JobStore, claim: str, job_id: str) -> None:
    try:
        await asyncio.to_thread(clicks.release, store, claim, job_id)
    except Exception:
        # Redis is likely what failed in the first place; the claim expires by itself (CLAIM_TTL_S).
        logger.warning("could not release the upscale claim of job %s", job_id, exc_info=True)
