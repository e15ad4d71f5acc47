"""What a model can do, as data both sides read.

A worker's engine describes its model in a `ModelSpec` (tasks, prompt-token
limit, sizes, defaults) and announces it in Redis with its heartbeat
(shared/dispatch.py). The bot and the CLI read the spec of the model a job
names and refuse, at submit time, what that model cannot serve
(`check_servable`); the worker runs the same check against its engine before
sampling. A user never waits in the queue for a job that fails on arrival.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared import record
from shared.errors import PromptTooLong, UnknownLora, Unsupported
from shared.job import JobKind, JobRecord
from shared.params import image_size

EMBEDDED = "embedded"


class Task(StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_IMAGE = "image-to-image"
    INPAINT = "inpaint"
    UPSCALE = "upscale"
    TILE = "tile"
    DESCRIBE = "describe"


# What each job kind asks of the model. A new kind adds its row here.
KIND_TASKS: dict[str, frozenset[Task]] = {
    JobKind.IMAGINE: frozenset({Task.TEXT_TO_IMAGE}),
    JobKind.REROLL: frozenset({Task.TEXT_TO_IMAGE}),
    JobKind.VARIATION: frozenset({Task.IMAGE_TO_IMAGE}),
    JobKind.UPSCALE: frozenset({Task.UPSCALE}),
    # Edits paint through a mask: an inpainting checkpoint, or masked denoising on any model.
    JobKind.REGION: frozenset({Task.INPAINT}),
    JobKind.ZOOM: frozenset({Task.INPAINT}),
    JobKind.PAN: frozenset({Task.INPAINT}),
    JobKind.SQUARE: frozenset({Task.INPAINT}),
    JobKind.BLEND: frozenset({Task.IMAGE_TO_IMAGE}),
    JobKind.DESCRIBE: frozenset({Task.DESCRIBE}),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    tasks: frozenset[Task]
    max_prompt_tokens: int
    base_size: int  # the side of a 1:1 image at the default size
    size_multiple: int
    default_steps: int
    default_guidance: float
    tokenizer: str | None = None  # digest of the tokenizer published beside it (shared/tokens.py)
    # Fields added with the model families (shared/families.py); their defaults are how
    # earlier workers' models behaved, so a spec they announce reads as before.
    negative_prompt: bool = True  # reads a negative prompt (`--no`)
    cfg_above: float = 1.0  # `--no` takes effect only with guidance above this
    loras: tuple[str, ...] = ()  # the LoRAs its worker has loaded (shared/loras.py)
    other_loras: dict[str, str] = field(default_factory=dict)  # LoRA name -> the architecture it is for
    lanes: tuple[str, ...] = ()  # the lanes its workers serve (empty: every lane)
    title: str = ""  # the family, as a user reads it ("FLUX.1 [schnell]")
    unsupported: tuple[str, ...] = ()  # prompt flags its engine cannot honour (refused at submit)
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py

    def image_size(self, aspect: str) -> tuple[int, int]:
        return image_size(aspect, self.base_size, self.size_multiple)


def model_name(source: str) -> str:
    """The name jobs and queues use for the model at `source` (MODEL): `embedded`,
    or the last part of a folder path or hub id (`stabilityai/sdxl-turbo` →
    `sdxl-turbo`), lower-cased."""
    source = source.strip().rstrip("/")
    if source in {"", EMBEDDED}:
        return EMBEDDED
    return source.replace("\\", "/").rsplit("/", 1)[-1].lower()


def needs(job: JobRecord) -> frozenset[Task]:
    tasks = KIND_TASKS.get(job.kind, frozenset())
    if job.inputs and job.kind in {JobKind.IMAGINE, JobKind.REROLL}:
        tasks = tasks | {Task.IMAGE_TO_IMAGE}  # an image prompt: image-to-image from it
    return tasks


def check_servable(job: JobRecord, spec: ModelSpec, count_tokens: Callable[[str], int] | None) -> None:
    """Raise Unsupported / PromptTooLong unless `spec`'s model can run `job`.
    `count_tokens` is the model's tokenizer (None when it is not known here:
    the worker then checks it on arrival)."""
    if job.kind not in KIND_TASKS:
        raise Unsupported(spec.name, f"This version of Daydream does not know how to run a `{job.kind}` job.")
    missing = needs(job) - spec.tasks
    if missing:
        what = ", ".join(sorted(missing))
        raise Unsupported(spec.name, f"The model `{spec.name}` cannot do {what}, which this job needs.")
    _check_negative(job, spec)
    _check_loras(job, spec)
    _check_flags(job, spec)
    if spec.lanes and job.lane not in spec.lanes:
        lanes = ", ".join(f"`{lane}`" for lane in spec.lanes)
        raise Unsupported(spec.name, f"The model `{spec.name}` is served in the {lanes} lane(s), not `{job.lane}`.")
    if count_tokens is not None:
        for part, text in (("prompt", job.prompt), ("negative", job.negative_prompt)):
            tokens = count_tokens(text) if text else 0
            if tokens > spec.max_prompt_tokens:
                raise PromptTooLong(tokens, spec.max_prompt_tokens, spec.name, part)


def _check_negative(job: JobRecord, spec: ModelSpec) -> None:
    if not job.negative_prompt:
        return
    what = f"`{spec.name}`" + (f" ({spec.title})" if spec.title else "")
    if not spec.negative_prompt:
        raise Unsupported(
            spec.name,
            f"The model {what} does not read a negative prompt, so `--no` would do nothing. "
            "Remove `--no …` and describe what you want instead.",
        )
    guidance = spec.default_guidance if job.params.guidance is None else job.params.guidance
    if guidance <= spec.cfg_above:
        raise Unsupported(
            spec.name,
            f"The model {what} reads `--no` only with guidance above {spec.cfg_above:g}, and this job's is "
            f"{guidance:g}. Add `--cfg {max(2.0, spec.cfg_above + 1):g}` (slower), or remove `--no …`.",
        )


def used_flags(job: JobRecord) -> list[str]:
    """The prompt flags of `job` an engine must act on (shared/flags.py names them)."""
    p = job.params
    used = [name for name in ("chaos", "weird") if getattr(p, name)]
    used += [name for name in ("tile", "stop") if getattr(p, name) not in (None, False, 100)]
    if len({part.weight for part in job.prompts if part.weight > 0}) > 1:
        used.append("weights")
    return used


def _check_flags(job: JobRecord, spec: ModelSpec) -> None:
    refused = [name for name in used_flags(job) if name in spec.unsupported]
    if refused:
        what = "weighted prompt parts (`text::2`)" if refused[0] == "weights" else f"`--{refused[0]}`"
        raise Unsupported(
            spec.name,
            f"The model `{spec.name}` cannot do {what}, so it would change nothing. Remove it, or pick another "
            "model with `--model`.",
        )


def _check_loras(job: JobRecord, spec: ModelSpec) -> None:
    for ref in job.loras:
        if ref.name in spec.loras:
            continue
        arch = spec.other_loras.get(ref.name)
        if arch is not None:
            raise UnknownLora(
                ref.name,
                spec.name,
                list(spec.loras),
                f"The LoRA `{ref.name}` is for `{arch}` models; `{spec.name}` is a `{spec.family}` model "
                "and cannot use it. Pick a model it was trained for, or another LoRA.",
            )
        have = ", ".join(f"`{name}`" for name in spec.loras)
        raise UnknownLora(
            ref.name,
            spec.name,
            list(spec.loras),
            f"The model `{spec.name}` has no LoRA `{ref.name}`. "
            + (f"Its LoRAs: {have}." if have else "It has no LoRAs."),
        )


def spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    return record.load(ModelSpec, data)
