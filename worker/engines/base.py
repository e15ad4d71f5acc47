"""One request type and one interface for every engine.

A `Request` holds everything a sampler needs (prompts with weights, the
negative prompt, one seed per image, size, steps, guidance, init images and
their strength, a mask, tiling, early stop, an upscale factor); an engine
declares what it can do in its `ModelSpec` (shared/models.py) and refuses
the rest with `check_request`. Progress reports carry a *callable* preview:
building one costs a decode, so it is made only when an edit is due."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from shared.errors import Unsupported
from shared.loras import LoraRef
from shared.models import ModelSpec, Task

# preview() -> the current estimate of the images (a 2×2 grid for four), or None.
PreviewFn = Callable[[], Image.Image | None]
# progress(fraction 0..1, preview or None) -> None; raising GenerationCancelled
# inside stops sampling.
ProgressFn = Callable[[float, PreviewFn | None], None]


class GenerationCancelled(Exception):
    """Raised by a progress callback to stop sampling (cooperative cancel)."""


@dataclass(frozen=True)
class WeightedPrompt:
    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class Request:
    prompts: tuple[WeightedPrompt, ...]
    seeds: tuple[int, ...]  # one per image; image i depends on seeds[i] alone
    width: int
    height: int
    negative_prompt: str = ""
    steps: int | None = None  # None: the model's default
    guidance: float | None = None
    init_images: tuple[Image.Image, ...] = field(default=(), compare=False)  # one, or one per seed
    strength: float = 1.0  # of the init images' noising: 0 keeps them, 1 ignores them
    mask: Image.Image | None = field(default=None, compare=False)  # white: repaint; black: keep
    upscale: int = 1  # >1: enlarge the one init image by this factor, restoring detail
    tile: bool = False  # seamless: the image wraps at its edges
    stop: float | None = None  # finish at this fraction of the steps (the denoised estimate)
    loras: tuple[LoraRef, ...] = ()  # adapters on, at their weights, for this request only
    chaos: int = 0  # 0–100: how far each image's text conditioning moves, by its own seed (--chaos)
    weird: int = 0  # 0–3000: how far one offset, common to the images, moves it (--weird)

    @classmethod
    def text(cls, prompt: str, seeds: list[int] | tuple[int, ...], width: int, height: int, **kw: object) -> Request:
        return cls(prompts=(WeightedPrompt(prompt),), seeds=tuple(seeds), width=width, height=height, **kw)  # type: ignore[arg-type]

    @property
    def prompt(self) -> str:
        """The text for engines that take one prompt: the positive parts, in order."""
        return ", ".join(p.text for p in self.prompts if p.weight > 0)

    def tasks(self) -> frozenset[Task]:
        if self.upscale > 1:
            needed = {Task.UPSCALE}
        elif self.mask is not None:
            needed = {Task.INPAINT}
        elif self.init_images:
            needed = {Task.IMAGE_TO_IMAGE}
        else:
            needed = {Task.TEXT_TO_IMAGE}
        if self.tile:
            needed.add(Task.TILE)
        return frozenset(needed)


def check_request(spec: ModelSpec, req: Request) -> None:
    """Refuse what the model cannot do: a task it lacks, a size it cannot make."""
    missing = req.tasks() - spec.tasks
    if missing:
        raise Unsupported(spec.name, f"The model `{spec.name}` cannot do {', '.join(sorted(missing))}.")
    m = spec.size_multiple
    if req.upscale == 1 and (req.width % m or req.height % m or req.width <= 0 or req.height <= 0):
        raise Unsupported(
            spec.name, f"The model `{spec.name}` makes sizes in multiples of {m}, not {req.width}×{req.height}."
        )
    if not req.seeds:
        raise ValueError("a request needs at least one seed")
    flags = (("chaos", req.chaos), ("weird", req.weird), ("stop", req.stop is not None))
    ignored = [name for name, used in flags if used and name in spec.unsupported]
    if ignored:
        raise Unsupported(spec.name, f"The model `{spec.name}` cannot do --{ignored[0]}.")
    unknown = [r.name for r in req.loras if r.name not in spec.loras]
    if unknown:
        raise Unsupported(spec.name, f"The model `{spec.name}` has no LoRA `{unknown[0]}`.")


@dataclass(frozen=True)
class Understanding:
    """What an engine read in a prompt (engines that can say: `understand(prompt)`)."""

    text: str  # what it draws, e.g. "a red circle, top left, on blue"
    in_world: bool  # False: the prompt names nothing the model can draw
    unread: tuple[str, ...] = ()  # words it could not place
    # The words the model was conditioned on, where not the prompt as typed (a
    # translation's caption, a small star reworded); None: the prompt itself.
    drawn: str | None = None


# rank(prompt, images) -> one score per image, higher = closer to the prompt.
RankFn = Callable[[str, list[Image.Image]], list[float]]


class Engine(Protocol):
    spec: ModelSpec

    def count_tokens(self, prompt: str) -> int: ...

    def tokenizer_json(self) -> str | None:
        """The model's tokenizer in the `tokenizers` JSON form, published so the bot
        can count tokens at submit (None: only the worker checks)."""
        ...

    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        """One image per seed (one for an upscale), sampled in one batch."""
        ...
