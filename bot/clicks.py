"""The synchronous Redis side of a button click: find the parent job, decide
whether the clicker may use it, and reserve U1–U4 so a second click reuses the
first upscale instead of computing it again. Called through `asyncio.to_thread`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from bot import reactions, submission
from bot.replies import message_link
from shared import keys
from shared.actions import child_job
from shared.custom_id import Action, ButtonRef
from shared.errors import InvalidRequest, JobNotFound
from shared.job import JobRecord, JobState, ReplyTarget
from shared.settings import RECORD_TTL_S, Settings
from shared.store import JobStore

logger = logging.getLogger(__name__)


# A claim on "U<i> of this job" is short-lived until its job is queued, so a
# click whose bot died half way does not block that button for long.
CLAIM_TTL_S = 60


@dataclass
class Earlier:
    """The upscale an earlier click made of the same image."""

    record: JobRecord | None  # None while that click is still queueing it


@dataclass
class ClickPlan:
    """Either a new job to post and submit, or an earlier upscale to point to."""

    child: JobRecord | None = None
    position: int | None = None
    claim: str | None = None  # the key reserving "U<i> of the parent" for `child`
    earlier: Earlier | None = None


def plan_click(
    store: JobStore,
    settings: Settings,
    ref: ButtonRef,
    clicker_id: int,
    clicker_is_admin: bool,
    reply: ReplyTarget,
) -> ClickPlan:
    """Everything a click needs from Redis, in the order a user's mistakes are
    best reported: unreachable queue, vanished job, refusal, bad image, no worker."""
    store.ping()
    with submission.queue_errors():
        parent = load_parent(store, ref.job_id)
        check_may_click(settings, parent, clicker_id, clicker_is_admin)
        child = child_job(parent, ref.action, ref.index, user_id=clicker_id, reply=reply, settings=settings)
        claim = None
        if ref.action is Action.UPSCALE:
            claim = keys.child(parent.id, ref.action.value, ref.index)
            earlier = reserve(store, claim, child.id)
            if earlier is not None:
                return ClickPlan(earlier=earlier)
        try:
            position = submission.check_workers(store)
        except Exception:
            if claim:
                release(store, claim, child.id)
            raise
        return ClickPlan(child=child, position=position, claim=claim)


def load_parent(store: JobStore, job_id: str) -> JobRecord:
    try:
        return store.get(job_id)
    except JobNotFound:
        raise JobNotFound(
            "The job behind this button no longer exists (it expired or was deleted), "
            "so there is nothing to work from. Run `/imagine` again."
        ) from None


def check_may_click(settings: Settings, parent: JobRecord, clicker_id: int, clicker_is_admin: bool) -> None:
    """Anyone may click, unless the admins restricted buttons to the requester."""
    if not settings.clicks_by_requester_only:
        return
    if clicker_id == parent.user_id or clicker_is_admin or clicker_id in settings.admin_user_ids:
        return
    raise InvalidRequest(
        f"On this server only the person who asked for these images ({parent.mention()}) "
        "or an admin can use their buttons. Run `/imagine` to make your own."
    )


def _reusable(earlier: JobRecord) -> bool:
    """An earlier upscale is worth pointing to while it is on its way or once it was posted;
    one that failed, was cancelled or left nothing to link to is made again."""
    if not earlier.state.finished:
        return True
    return earlier.state == JobState.DONE and message_link(earlier.reply) is not None


def reserve(store: JobStore, key: str, job_id: str) -> Earlier | None:
    """Claim `key` ("U<i> of this parent") for `job_id` (None), or return the earlier
    upscale to reuse. SET NX makes two fast clicks produce one job, not two."""
    while True:
        if store.redis.set(key, job_id, nx=True, ex=CLAIM_TTL_S):
            return None
        earlier_id = store.redis.get(key)
        if earlier_id is None:
            continue  # expired between the two calls: claim again
        try:
            earlier = store.get(earlier_id.decode())
        except JobNotFound:
            # No record yet: another click is between claiming and queueing
            # (its claim is still short-lived), or the record expired long ago.
            ttl = store.redis.ttl(key)
            if ttl == -2:
                continue  # gone meanwhile: claim again
            if ttl <= CLAIM_TTL_S:
                return Earlier(record=None)
        else:
            if _reusable(earlier):
                return Earlier(record=earlier)
        # Take the key over from the failed or expired job, unless another click just did.
        with store.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) != earlier_id:
                    continue
                pipe.multi()
                pipe.set(key, job_id, ex=CLAIM_TTL_S)
                pipe.execute()
                return None
            except redis.WatchError:
                continue


def submit_child(store: JobStore, child: JobRecord, claim: str | None) -> None:
    """Queue the child; its claim, if any, then lives as long as job records do."""
    submission.submit(store, child)
    reactions.remember_message(store, child.reply.message_id, child.id)  # for ❌ while it waits
    if claim is None:
        return
    try:
        _settle_claim(store, claim, child.id, keep=True)
    except redis.RedisError:
        # The job is queued; at worst the claim expires and a later click upscales again.
        logger.warning("could not extend the upscale claim of job %s", child.id, exc_info=True)


def release(store: JobStore, claim: str, job_id: str) -> None:
    """Give the claim back when its job could not be queued, so the next click may try."""
    _settle_claim(store, claim, job_id, keep=False)


def _settle_claim(store: JobStore, key: str, job_id: str, *, keep: bool) -> None:
    """Extend (keep) or delete the claim, only if it is still `job_id`'s."""
    with store.redis.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.get(key) != job_id.encode():
                return  # another click's claim now: theirs to keep
            pipe.multi()
            if keep:
                pipe.expire(key, RECORD_TTL_S)
            else:
                pipe.delete(key)
            pipe.execute()
        except redis.WatchError:
            return  # changed under us: another click's claim now
