"""The record builders: one per way a job is made. `/imagine` (or `daydream
imagine`) makes a new grid; a click on U (upscale), V (variations), 🔄
(re-roll) or a button under an upscale makes a child of an earlier job. The
bot's buttons and the command line build through here, so both make exactly
the same records; a new job kind adds its builder here."""

from __future__ import annotations

from dataclasses import replace

from shared.custom_id import Action
from shared.edits import Edit, check_direction, check_factor, parse_cells
from shared.errors import InvalidRequest
from shared.job import DEFAULT_LANE, EDIT_KINDS, InputImage, JobKind, JobRecord, ReplyTarget, new_job_id
from shared.models import model_name
from shared.params import Params, ParsedPrompt, PromptPart, make_seeds, parse_prompt
from shared.prompt_text import NEGATIVE_WEIGHT
from shared.settings import Settings
from shared.uploads import CheckedImage

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
    if action in EDIT_ACTIONS:
        kind, edit = EDIT_ACTIONS[action]
        return edit_job(parent, kind, edit, 1, user_id, settings, reply=reply, lane=lane)
    if action == Action.REROLL and parent.kind in EDIT_KINDS:
        return edit_again(parent, user_id, settings, reply=reply, lane=lane)
    if action == Action.REROLL and parent.kind == JobKind.DESCRIBE:
        return describe_again(parent, user_id, settings, reply=reply, lane=lane or parent.lane)
    if action == Action.DESCRIBE_PICK:
        job = imagine_job(described_prompt(parent, index), user_id, model_name(parent.model or settings.model),
                          reply=reply, lane=lane or parent.lane)  # fmt: skip
        job.parent_id = parent.id
        return job
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
    inputs: list[InputImage] = []
    if kind == JobKind.REROLL:
        # 🔄 keeps the image prompts (read where the parent stored them), and a blend stays a blend.
        inputs = [replace(i, job=i.job or parent.id) for i in parent.inputs]
        kind = JobKind.BLEND if parent.kind == JobKind.BLEND else kind
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
        inputs=inputs,
    )


# -- edits of one image (issue 19) ---------------------------------------------------
EDIT_ACTIONS: dict[Action, tuple[JobKind, Edit]] = {
    Action.ZOOM_2: (JobKind.ZOOM, Edit(factor=2.0)),
    Action.ZOOM_15: (JobKind.ZOOM, Edit(factor=1.5)),
    Action.PAN_LEFT: (JobKind.PAN, Edit(direction="left")),
    Action.PAN_RIGHT: (JobKind.PAN, Edit(direction="right")),
    Action.PAN_UP: (JobKind.PAN, Edit(direction="up")),
    Action.PAN_DOWN: (JobKind.PAN, Edit(direction="down")),
    Action.SQUARE: (JobKind.SQUARE, Edit()),
}


def edit_job(
    parent: JobRecord,
    kind: JobKind,
    edit: Edit,
    index: int,
    user_id: int | None,
    settings: Settings,
    *,
    prompt: str | None = None,
    reply: ReplyTarget | None = None,
    lane: str | None = None,
) -> JobRecord:
    """The record of an edit of image `index` of `parent`: four new seeds, the
    parent's prompt (Vary (Region) may give a new one) and what to change."""
    if kind not in EDIT_KINDS:
        raise ValueError(f"not an edit kind: {kind}")
    count = max(parent.images, 1)
    if not 1 <= index <= count:
        raise InvalidRequest(f"Image {index} does not exist in that result; it has {count} image(s).")
    if kind == JobKind.REGION:
        edit = replace(edit, cells=parse_cells(edit.cells))
    elif kind == JobKind.ZOOM:
        edit = replace(edit, factor=check_factor(edit.factor if edit.factor is not None else 2.0))
    elif kind == JobKind.PAN:
        edit = replace(edit, direction=check_direction(edit.direction or ""))
    elif kind == JobKind.SQUARE and parent.width is not None and parent.width == parent.height:
        raise InvalidRequest("This image is square already: Make Square has nothing to add.")
    text = parent.prompt if prompt is None or not prompt.strip() else prompt.strip()
    return JobRecord(
        id=new_job_id(),
        kind=kind,
        prompt=text,
        negative_prompt=parent.negative_prompt,
        params=replace(parent.params, strength=None, seed=None),
        seeds=make_seeds(replace(parent.params, seed=None)),
        loras=list(parent.loras),
        user_id=user_id,
        parent_id=parent.id,
        index=index,
        model=model_name(parent.model or settings.model),
        lane=lane or parent.lane,
        reply=reply or ReplyTarget(),
        edit=edit,
    )


def edit_again(
    parent: JobRecord,
    user_id: int | None,
    settings: Settings,
    *,
    reply: ReplyTarget | None = None,
    lane: str | None = None,
) -> JobRecord:
    """🔄 under an edit's grid: the same edit of the same image, four new seeds."""
    if parent.parent_id is None or parent.edit is None:
        raise InvalidRequest("This result names no image it was made from; it cannot be edited again.")
    return JobRecord(
        id=new_job_id(),
        kind=parent.kind,
        prompt=parent.prompt,
        negative_prompt=parent.negative_prompt,
        params=parent.params,
        seeds=make_seeds(replace(parent.params, seed=None)),
        loras=list(parent.loras),
        user_id=user_id,
        parent_id=parent.parent_id,
        index=parent.index,
        model=model_name(parent.model or settings.model),
        lane=lane or parent.lane,
        reply=reply or ReplyTarget(),
        edit=parent.edit,
    )


# -- input images: image prompts, /blend, /describe (issue 19) ---------------------------
BLEND_DIMENSIONS = {"portrait": "2:3", "square": "1:1", "landscape": "3:2"}
MIN_BLEND, MAX_BLEND = 2, 5


def with_inputs(job: JobRecord, images: list[CheckedImage]) -> list[tuple[str, bytes]]:
    """Name `images` on `job` (in order) and return (name, PNG) to store beside it
    (ImageStore.put_input) before it is submitted."""
    stored = []
    for i, image in enumerate(images, start=1):
        name = f"image{i}"
        job.inputs.append(InputImage(name=name, width=image.width, height=image.height))
        stored.append((name, image.png))
    return stored


def check_image_prompt(params: Params, images: int) -> None:
    """`--iw` without an image prompt is a mistake to point out, not to ignore."""
    if params.image_weight is not None and images == 0:
        raise InvalidRequest(
            "`--iw` weighs image prompts, and this prompt has none: attach an image or start the prompt "
            "with a Discord image link, or remove `--iw`."
        )


def blend_job(
    count: int,
    dimensions: str | None,
    user_id: int | None,
    model: str,
    reply: ReplyTarget | None = None,
    lane: str = DEFAULT_LANE,
) -> JobRecord:
    """/blend: four images mixing `count` inputs (with_inputs names them), no text."""
    if not MIN_BLEND <= count <= MAX_BLEND:
        raise InvalidRequest(f"/blend mixes {MIN_BLEND} to {MAX_BLEND} images; it got {count}.")
    shape = (dimensions or "square").strip().lower()
    if shape not in BLEND_DIMENSIONS:
        raise InvalidRequest(f"`dimensions` is portrait, square or landscape, not `{dimensions}`.")
    params = Params(aspect=BLEND_DIMENSIONS[shape])
    return JobRecord(
        id=new_job_id(), kind=JobKind.BLEND, prompt="", params=params, seeds=make_seeds(params),
        user_id=user_id, model=model, lane=lane, reply=reply or ReplyTarget(),
    )  # fmt: skip


def describe_job(
    user_id: int | None, model: str, reply: ReplyTarget | None = None, lane: str = DEFAULT_LANE
) -> JobRecord:
    """/describe: four prompts for one input image (with_inputs names it). The seeds pick wordings."""
    return JobRecord(
        id=new_job_id(), kind=JobKind.DESCRIBE, prompt="", seeds=make_seeds(Params()),
        user_id=user_id, model=model, lane=lane, reply=reply or ReplyTarget(),
    )  # fmt: skip


def describe_again(parent: JobRecord, user_id: int | None, settings: Settings, **kw: object) -> JobRecord:
    """🔄 under /describe: the same image (read where the parent stored it), other wordings."""
    job = describe_job(user_id, model_name(parent.model or settings.model), **kw)  # type: ignore[arg-type]
    job.parent_id = parent.id
    job.inputs = [replace(i, job=i.job or parent.id) for i in parent.inputs]
    return job


def described_prompt(parent: JobRecord, index: int) -> ParsedPrompt:
    """Button `index` under /describe: its prompt, read like a typed one (its --ar included)."""
    if parent.kind != JobKind.DESCRIBE or not 1 <= index <= len(parent.described):
        raise InvalidRequest(f"Prompt {index} does not exist in that /describe answer.")
    return parse_prompt(parent.described[index - 1])
