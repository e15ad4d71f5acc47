"""Jobs made from other jobs: U (upscale), V (variations), 🔄 (re-roll) and the
buttons under an upscale. Shared by the bot's buttons and the command line so
both make exactly the same records."""

from __future__ import annotations

from dataclasses import replace

from shared.custom_id import Action
from shared.errors import InvalidRequest
from shared.job import JobKind, JobRecord, ReplyTarget, new_job_id
from shared.params import ParsedPrompt, make_seeds
from shared.settings import Settings


def imagine_job(parsed: ParsedPrompt, user_id: int | None, model: str, reply: ReplyTarget | None = None) -> JobRecord:
    """The record for `/imagine` (or `daydream imagine`): four new seeds."""
    return JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        params=parsed.params,
        seeds=make_seeds(parsed.params),
        user_id=user_id,
        model=model,
        reply=reply or ReplyTarget(),
    )


def child_job(
    parent: JobRecord,
    action: Action,
    index: int,
    user_id: int | None,
    reply: ReplyTarget | None = None,
    settings: Settings | None = None,
    strength: float | None = None,
) -> JobRecord:
    """The record for a click on `action` (image `index`) under `parent`."""
    if action in {Action.UPSCALE, Action.VARY}:
        if not 1 <= index <= max(parent.images, 1) or (parent.images and index > parent.images):
            raise InvalidRequest(f"Image {index} does not exist in that result; it has {parent.images} image(s).")
    elif action == Action.REROLL:
        index = 0
    else:
        # The buttons under an upscale act on its one image.
        index = 1
    strengths = settings or Settings()
    kind: JobKind
    chosen = strength
    if action in {Action.UPSCALE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE}:
        kind = JobKind.UPSCALE
        strength = strengths.upscale_creative if action == Action.UPSCALE_CREATIVE else strengths.upscale_subtle
        # An upscale keeps the seed of the image it enlarges: deterministic.
        seeds = [parent.seeds[index - 1] if index - 1 < len(parent.seeds) else parent.seeds[0]]
    elif action in {Action.VARY, Action.VARY_STRONG, Action.VARY_SUBTLE}:
        kind = JobKind.VARIATION
        strength = strengths.vary_subtle if action == Action.VARY_SUBTLE else strengths.vary_strong
        seeds = make_seeds(replace(parent.params, seed=None))
    else:
        kind = JobKind.REROLL
        seeds = make_seeds(replace(parent.params, seed=None))
    if chosen is not None:
        strength = chosen
    return JobRecord(
        id=new_job_id(),
        kind=kind,
        prompt=parent.prompt,
        negative_prompt=parent.negative_prompt,
        # A new grid forgets the parent's --seed: its seeds are new.
        params=replace(parent.params, strength=strength, seed=parent.params.seed if kind == JobKind.UPSCALE else None),
        seeds=seeds,
        user_id=user_id,
        parent_id=parent.id,
        index=index or None,
        model=parent.model,
        reply=reply or ReplyTarget(),
    )
