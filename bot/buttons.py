"""The buttons under every result: U1–U4, V1–V4, 🔄, and Vary/Upscale under an upscale.

One `DynamicItem` matches them all by custom_id regex, so buttons on messages
a worker posted, or posted before a bot restart, reach the bot: the custom_id
is the whole state (shared/custom_id.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import discord

from bot import moderation, permissions, remix, replies
from bot.store import AsyncStore
from shared import messages
from shared.builders import child_job
from shared.components import CANCEL_EMOJI, MAX_PER_ROW, MAX_ROWS
from shared.custom_id import PATTERN, Action, ButtonRef, decode, encode
from shared.errors import DaydreamError, InvalidRequest, JobNotFound, QueueFull
from shared.job import JobRecord, ReplyTarget
from shared.settings import Settings
from shared.store import WaitingStatus

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)


class ResultButton(discord.ui.DynamicItem[discord.ui.Button], template=PATTERN):
    """A click on any Daydream button. A forged or malformed custom_id still
    becomes an item, whose callback explains the problem: an exception in
    `from_custom_id` would leave the user with "This interaction failed"."""

    def __init__(
        self,
        custom_id: str,
        *,
        ref: ButtonRef | None = None,
        problem: str | None = None,
        label: str | None = None,
        emoji: str | None = None,
    ) -> None:
        super().__init__(discord.ui.Button(custom_id=custom_id, label=label, emoji=emoji))
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
        if self.ref.action in moderation.ACTIONS:  # Appeal, Allow, Uphold (bot/moderation.py)
            await moderation.on_click(interaction, self.ref)
            return
        if self.ref.action is Action.CANCEL:
            await cancel_by_button(interaction, self.ref.job_id, bot.settings, bot.jobs)
            return
        opener = OPENERS.get(self.ref.action)
        if opener is not None:  # it answers with a select or a modal, not a job (bot/edits.py)
            await opener(interaction, self.ref, bot.settings, bot.jobs)
            return
        await handle_click(interaction, self.ref, bot.settings, bot.jobs)


# Actions whose click opens something (a select, a modal) before any job: filled by the
# features that own them (bot/edits.py), so this module needs not know them.
Opener = Callable[[discord.Interaction, ButtonRef, Settings, AsyncStore], Awaitable[None]]
OPENERS: dict[Action, Opener] = {}
# build(parent, user_id, reply, lane) -> the child's record; None: the button's own (child_job).
Build = Callable[[JobRecord, int, ReplyTarget, str], JobRecord]


def cancel_view(job_id: str) -> discord.ui.View:
    """❌ under a waiting line: a dynamic item, so it works after a restart too."""
    view = discord.ui.View(timeout=None)
    view.add_item(ResultButton(encode(Action.CANCEL, job_id, 0), label="Cancel", emoji=CANCEL_EMOJI))
    return view


def cancel_each_view(jobs: list[JobRecord]) -> discord.ui.View:
    """One ❌ per job (a "Queue full" answer), labelled with the start of its prompt."""
    view = discord.ui.View(timeout=None)
    for job in jobs[: MAX_ROWS * MAX_PER_ROW]:
        label = f"{job.prompt[:60]} ({job.state})"
        view.add_item(ResultButton(encode(Action.CANCEL, job.id, 0), label=label, emoji=CANCEL_EMOJI))
    return view


async def cancel_by_button(
    interaction: discord.Interaction, job_id: str, settings: Settings, store: AsyncStore
) -> None:
    """❌: the requester or an admin cancels; anyone else is told so, privately."""
    try:
        job = await store.get(job_id)
        admin = permissions.interaction_admin(settings, interaction)
        if not permissions.may_cancel(job, interaction.user.id, admin):
            await replies.tell_privately(interaction, messages.cancel_refused(job))
            return
        if job.finished:
            await replies.tell_privately(interaction, messages.already_ended(job))
            return
        ephemeral = bool(interaction.message and interaction.message.flags.ephemeral)
        await interaction.response.defer(ephemeral=ephemeral, thinking=ephemeral)
        cancelled = await store.cancel(job.id, interaction.user.id)
        if ephemeral:  # a ❌ in a "Queue full" answer: say so there, the waiting line follows
            await interaction.followup.send(messages.cancelled_privately(job, cancelled is not None), ephemeral=True)
        elif cancelled is not None:  # it was waiting: the line says so; a running one its worker ends
            await interaction.edit_original_response(
                content=messages.cancelled_by(cancelled, interaction.user.id),
                view=None,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        logger.info("job %s cancelled by user %s (a button)", job.id, interaction.user.id)
    except DaydreamError as exc:
        await replies.tell_privately(interaction, str(exc))
    except Exception:
        logger.exception("cancel of job %s failed", job_id)
        await replies.tell_privately(interaction, messages.GENERIC_ERROR)


async def handle_click(
    interaction: discord.Interaction,
    ref: ButtonRef,
    settings: Settings,
    store: AsyncStore,
    build: Build | None = None,
) -> None:
    """Turn a click (or a modal's submit) into a child job owned by the clicker. Every
    failure is answered ephemerally: discord.py only logs what escapes a dynamic item."""
    # 1. The result must be deliverable here after the 15-minute token expires.
    refusal = permissions.missing_bot_permissions(interaction)
    if refusal:
        await replies.tell_privately(interaction, refusal)
        return

    # 1b. Remix mode: V1–V4, 🔄 and Vary open a modal to edit the prompt first (bot/remix.py).
    if build is None and ref.action in remix.REMIXABLE and await remix.is_on(store, interaction.user.id):
        await remix.open_modal(interaction, ref, settings, store)
        return

    # 2. Acknowledge silently within 3 s: the message with the buttons stays as it is.
    await interaction.response.defer()
    await queue_click(interaction, ref, settings, store, build=build)


async def queue_click(
    interaction: discord.Interaction,
    ref: ButtonRef,
    settings: Settings,
    store: AsyncStore,
    remix_text: str | None = None,
    build: Build | None = None,
) -> None:
    """Steps 3–6 of a click, once it is acknowledged; `remix_text`: the prompt the
    Remix modal returned, which the child takes instead of its parent's; `build`: an
    edit's own record (bot/edits.py), instead of the button's."""
    claim: tuple[str, str, int, str] | None = None  # "U<i> of the parent", reserved for the child
    submitted = False
    try:
        # 3. The parent, the right to click it, the image.
        parent = await load_parent(store, ref.job_id)
        user_id = interaction.user.id
        admin = permissions.interaction_admin(settings, interaction)
        permissions.check_may_click(settings, parent, user_id, admin)
        reply = replies.reply_target(interaction, settings.token_lifetime_s)
        roles = permissions.roles_of(interaction.user)
        lane = await store.resolve_lane(user_id, roles, None)
        if build is not None:
            child = build(parent, user_id, reply, lane)
        else:
            child = child_job(parent, ref.action, ref.index, user_id=user_id, settings=settings, reply=reply, lane=lane)
        child.venue = moderation.venue_of(interaction)  # judged where it is posted
        if remix_text is not None:
            child = remix.remixed(child, ref.action, remix_text)
            child.venue = moderation.venue_of(interaction)
            await store.call(store.sync.moderation.screen, child)  # a new prompt: the word filter too
        else:
            await store.call(store.sync.moderation.check_user, child.venue.guild_id, user_id)  # banned, cooling down
        # 4. U<i> is made once: a second click points to the first upscale.
        if ref.action is Action.UPSCALE:
            earlier = await store.reserve_child(parent.id, ref.action.value, ref.index, child.id)
            if earlier is not None:
                await replies.tell_privately(interaction, messages.earlier_upscale(earlier.record, ref.index))
                return
            claim = (parent.id, ref.action.value, ref.index, child.id)
        # 5. A worker for the model, and a job it can run.
        status = await store.prepare(child)
        # 6. Post the waiting line, then queue the job knowing that message.
        await post_and_submit(interaction, child, status, store, roles)
        submitted = True
        logger.info("queued %s job %s (parent %s) for user %s", child.kind, child.id, ref.job_id, child.user_id)
        if claim is not None:
            await _settle(store, claim, keep=True)
    except QueueFull as exc:
        await replies.tell_privately(interaction, str(exc), view=cancel_each_view(exc.jobs))
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


async def post_and_submit(
    interaction: discord.Interaction,
    child: JobRecord,
    status: WaitingStatus,
    store: AsyncStore,
    role_ids: frozenset[int] = frozenset(),
) -> None:
    """The worker edits this follow-up by its id (the original response of a
    click is the parent's message). The id is on the record before the job is
    enqueued, so a worker can never start the job without knowing it."""
    line = messages.waiting(child, status.position, status.eta_s, running=status.running, paused=status.paused)
    message = await interaction.followup.send(
        line, wait=True, allowed_mentions=replies.only_mention(child.user_id), view=cancel_view(child.id)
    )
    child.reply.message_id = message.id
    try:
        await store.submit(child, message.id, role_ids, shown=line)
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
