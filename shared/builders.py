"""The record builders: one per way a job is made. `/imagine` (or `daydream
imagine`) makes a new grid; a click on U (upscale), V (variations), 🔄
(re-roll) or a button under an upscale makes a child of an earlier job. The
bot's buttons and the command line build through here, so both make exactly
the same records; a new job kind adds its builder here."""

from __future__ import annotations

from dataclasses import replace

from shared.custom_id import Action
from shared.errors import InvalidRequest
from shared.job import DEFAULT_LANE, JobKind, JobRecord, ReplyTarget, new_job_id
from shared.models import model_name
from shared.params import ParsedPrompt, PromptPart, make_seeds
from shared.prompt_text import NEGATIVE_WEIGHT
from shared.settings import Settings

UPSCALES = frozenset({Action.UPSCALE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE})
VARIATIONS = frozenset({Action.VARY, Action.VARY_STRONG, Action.VARY_SUBTLE})


def imagine_job(
    parsed: ParsedPrompt,
    user_id: int | None,
    model: str,
    reply: ReplyTarget | None = None,
    lane: str = DEFAULT_LANE,
    seeds: list[int] | None = None,
) -> JobRecord:
    """The record for `/imagine`: four new seeds (consecutive from `--seed`), in
    the lane the queue's policy resolved (shared/policy.py). Its weighted parts are
    the prompt's, then each `--no` thing at -0.5."""
    return JobRecord(
        id=new_job_id(),
        kind=JobKind.IMAGINE,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        params=parsed.params,
        seeds=seeds if seeds is not None else make_seeds(parsed.params),
        loras=list(parsed.loras),
        user_id=user_id,
        model=model,
        lane=lane,
        reply=reply or ReplyTarget(),
        prompts=list(parsed.prompts) + [PromptPart(thing, NEGATIVE_WEIGHT) for thing in parsed.avoid],
    )


def strength_of(action: Action, settings: Settings) -> float | None:
    """The image-to-image strength a button stands for (None: text to image)."""
    if action in UPSCALES:
        return settings.upscale_creative if action == Action.UPSCALE_CREATIVE else settings.upscale_subtle
    if action in VARIATIONS:
        return settings.vary_subtle if action == Action.VARY_SUBTLE else settings.vary_strong
    return None


def child_job(
    parent: JobRecord,
    action: Action,
    index: int,
    user_id: int | None,
    settings: Settings,
    reply: ReplyTarget | None = None,
    strength: float | None = None,
    lane: str | None = None,
) -> JobRecord:
    """The record for a click on `action` (image `index`) under `parent`.
    `strength` overrides the button's own (`daydream vary --subtle`); `lane`: the
    clicker's (the parent's when None)."""
    if action in {Action.UPSCALE, Action.VARY}:
        if not 1 <= index <= max(parent.images, 1) or (parent.images and index > parent.images):
            raise InvalidRequest(f"Image {index} does not exist in that result; it has {parent.images} image(s).")
    elif action == Action.REROLL:
        index = 0
    else:
        index = 1  # the buttons under an upscale act on its one image
    if action in UPSCALES:
        kind = JobKind.UPSCALE
        # An upscale keeps the seed of the image it enlarges: deterministic.
        seeds = [parent.seeds[index - 1] if index - 1 < len(parent.seeds) else parent.seeds[0]]
    else:
        kind = JobKind.VARIATION if action in VARIATIONS else JobKind.REROLL
        seeds = make_seeds(replace(parent.params, seed=None))
    if strength is None:
        strength = strength_of(action, settings)
    return JobRecord(
        id=new_job_id(),
        kind=kind,
        prompt=parent.prompt,
        negative_prompt=parent.negative_prompt,
        prompts=list(parent.prompts),
        # A new grid forgets the parent's --seed: its seeds are new.
        params=replace(parent.params, strength=strength, seed=parent.params.seed if kind == JobKind.UPSCALE else None),
        seeds=seeds,
        loras=list(parent.loras),  # a child looks like its parent: the same LoRAs
        user_id=user_id,
        parent_id=parent.id,
        index=index or None,
        # Records of earlier versions name the MODEL source (a path, a hub id) or nothing.
        model=model_name(parent.model or settings.model),
        lane=lane or parent.lane,
        reply=reply or ReplyTarget(),
    )
