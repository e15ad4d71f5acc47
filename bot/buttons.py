"""The buttons under every result: U1–U4, V1–V4, 🔄, and Vary/Upscale under an upscale.

One `DynamicItem` matches them all by custom_id regex, so buttons on messages
a worker posted, or posted before a bot restart, reach the bot: the custom_id
is the whole state (shared/custom_id.py)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot import permissions, replies
from bot.store import AsyncStore
from shared import messages
from shared.builders import child_job
from shared.custom_id import PATTERN, Action, ButtonRef, decode
from shared.errors import DaydreamError, InvalidRequest, JobNotFound
from shared.job import JobRecord
from shared.settings import Settings

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
            await replies.tell_privately(interaction, self.problem or messages.UNKNOWN_BUTTON)
            return
        bot = cast("DaydreamBot", interaction.client)
        await handle_click(interaction, self.ref, bot.settings, bot.jobs)


async def handle_click(interaction: discord.Interaction, ref: ButtonRef, settings: Settings, store: AsyncStore) -> None:
    """Turn a click into a child job owned by the clicker. Every failure is
    answered ephemerally: discord.py only logs what escapes a dynamic item."""
    # 1. The result must be deliverable here after the 15-minute token expires.
    refusal = permissions.missing_bot_permissions(interaction)
    if refusal:
        await replies.tell_privately(interaction, refusal)
        return

    # 2. Acknowledge silently within 3 s: the message with the buttons stays as it is.
    await interaction.response.defer()

    claim: tuple[str, str, int, str] | None = None  # "U<i> of the parent", reserved for the child
    submitted = False
    try:
        # 3. The parent, the right to click it, the image.
        parent = await load_parent(store, ref.job_id)
        user_id = interaction.user.id
        admin = permissions.interaction_admin(settings, interaction)
        permissions.check_may_click(settings, parent, user_id, admin)
        reply = replies.reply_target(interaction, settings.token_lifetime_s)
        child = child_job(parent, ref.action, ref.index, user_id=user_id, settings=settings, reply=reply)
        # 4. U<i> is made once: a second click points to the first upscale.
        if ref.action is Action.UPSCALE:
            earlier = await store.reserve_child(parent.id, ref.action.value, ref.index, child.id)
            if earlier is not None:
                await replies.tell_privately(interaction, messages.earlier_upscale(earlier.record, ref.index))
                return
            claim = (parent.id, ref.action.value, ref.index, child.id)
        # 5. A worker for the model, and a job it can run.
        position = await store.prepare(child)
        # 6. Post the waiting line, then queue the job knowing that message.
        await post_and_submit(interaction, child, position, store)
        submitted = True
        logger.info("queued %s job %s (parent %s) for user %s", child.kind, child.id, ref.job_id, child.user_id)
        if claim is not None:
            await _settle(store, claim, keep=True)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
    except Exception:
        logger.exception("click %s on job %s failed", ref.action, ref.job_id)
        await replies.tell_privately(interaction, messages.GENERIC_ERROR)
    finally:
        if claim is not None and not submitted:
            await _settle(store, claim, keep=False)


async def load_parent(store: AsyncStore, job_id: str) -> JobRecord:
    try:
        return await store.get(job_id)
    except JobNotFound:
        raise JobNotFound(job_id, messages.PARENT_GONE) from None


async def post_and_submit(interaction: discord.Interaction, child: JobRecord, position: int, store: AsyncStore) -> None:
    """The worker edits this follow-up by its id (the original response of a
    click is the parent's message). The id is on the record before the job is
    enqueued, so a worker can never start the job without knowing it."""
    message = await interaction.followup.send(
        messages.waiting(child, position), wait=True, allowed_mentions=replies.only_mention(child.user_id)
    )
    child.reply.message_id = message.id
    try:
        await store.submit(child, message.id)
    except Exception:
        try:
            await interaction.followup.delete_message(message.id)
        except discord.HTTPException:
            logger.warning("could not delete the waiting message %s", message.id, exc_info=True)
        raise


async def _settle(store: AsyncStore, claim: tuple[str, str, int, str], *, keep: bool) -> None:
    """Keep the U<i> claim for as long as records live (its job is queued), or give
    it back (it is not). Best effort: an unsettled claim expires by itself."""
    try:
        if keep:
            await store.keep_child(*claim)
        else:
            await store.release_child(*claim)
    except DaydreamError:
        logger.warning("could not %s the upscale claim of job %s", "keep" if keep else "release", claim[3])
