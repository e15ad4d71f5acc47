"""Step 3b of the pipeline: the moderation policy applied to a result before it
is stored and posted. Outside a channel Discord marks NSFW, the image check
scores every tile; a flagged one is posted as the channel's policy says
(shared/moderation.py): as it is (`allowed`), as a blurred notice tile with a
line saying why (`blur`), or not at all (`refuse`: the job fails with that
reason). The mod log receives the flagged result, blurred. Results in a
spoiler channel are posted as spoilers (the SPOILER_ file name prefix)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from shared import mod_messages
from shared.errors import DaydreamError, ImageRefused
from shared.grid import compose_grid, encode_png
from shared.job import JobRecord, Venue
from shared.messages import file_stem, message_link
from shared.moderation import ChannelPolicy
from worker.handlers import Result
from worker.imagecheck import Verdict, notice_tile

if TYPE_CHECKING:
    from worker.runtime import WorkerRuntime

logger = logging.getLogger(__name__)

SPOILER_PREFIX = "SPOILER_"  # Discord shows an attachment so named behind a spoiler


@dataclass
class Checked:
    result: Result
    policy: ChannelPolicy
    verdict: Verdict | None = None  # None: not checked (NSFW channel, allowed, no check)


def venue_of(job: JobRecord) -> Venue | None:
    """Where the job is judged. Records from before moderation carry no venue: their
    reply target says where they came from. A command-line job without --guild is the
    host's own: none."""
    venue = job.venue
    if venue.guild_id or venue.dm or venue.channel_id:
        return venue
    if job.reply.is_discord:
        return Venue(guild_id=job.reply.guild_id, channel_id=job.reply.channel_id, dm=job.reply.guild_id is None)
    return None


def check_result(rt: WorkerRuntime, job: JobRecord, result: Result) -> Checked:
    venue = venue_of(job)
    moderation = rt.store.moderation
    if venue is None:
        return Checked(result, ChannelPolicy(images="allowed"))
    policy = moderation.channel_policy(venue)
    check = rt.image_check
    if venue.nsfw or policy.images == "allowed" or check is None or not result.images:
        return Checked(result, policy)
    verdict = check.judge(result.images, moderation.threshold(venue.guild_id))
    logger.info(
        "job %s: image check %s (threshold %.2f, %.0f ms)",
        job.id, ", ".join(f"{s:.3f}" for s in verdict.scores), verdict.threshold, verdict.seconds * 1000,
    )  # fmt: skip
    if not verdict.flagged:
        return Checked(result, policy, verdict)
    images = [notice_tile(im) if i in verdict.flagged else im for i, im in enumerate(result.images)]
    _to_modlog(rt, job, venue, images, result.grid, len(verdict.flagged), policy.images)
    said = mod_messages.flagged_images(len(verdict.flagged), len(images), policy.images)
    if policy.images == "refuse":
        raise ImageRefused(said, len(verdict.flagged))
    shown = replace(result, images=images, content=f"{result.content}\n{said}")
    return Checked(shown, policy, verdict)


def upload_name(filename: str, policy: ChannelPolicy) -> str:
    return SPOILER_PREFIX + filename if policy.spoiler and not filename.startswith(SPOILER_PREFIX) else filename


def _to_modlog(
    rt: WorkerRuntime, job: JobRecord, venue: Venue, images: list, grid: bool, count: int, policy: str
) -> None:
    """The flagged result, blurred, in the server's mod log. Best effort."""
    try:
        channel = rt.store.moderation.modlog(venue.guild_id)
        if channel is None:
            return
        shown = compose_grid(images) if grid and len(images) == 4 else images[0]
        where = message_link(job.reply) or (f"<#{venue.channel_id}>" if venue.channel_id else None)
        content = mod_messages.log_flagged(job.user_id, job.id, count, policy, where)
        rt.delivery.notice(channel, content, (f"SPOILER_{file_stem(job)}_flagged.png", encode_png(shown)))
    except DaydreamError as exc:
        logger.warning("job %s: could not post the flagged result to the mod log: %s", job.id, exc)
