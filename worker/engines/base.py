"""One small interface for every engine: text-to-image for a batch with one
seed per image, image-to-image at a strength, upscale ×2, and a progress
callback that gets a cheap preview."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

# progress(fraction 0..1, preview image or None) -> None; raising
# GenerationCancelled inside stops sampling.
ProgressFn = Callable[[float, Image.Image | None], None]


class GenerationCancelled(Exception):
    """Raised by a progress callback to stop sampling (cooperative cancel)."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seeds: list[int]
    width: int
    height: int
    negative_prompt: str = ""
    steps: int | None = None  # None: the engine's default
    guidance: float | None = None


class Engine(Protocol):
    name: str
    base_size: int  # the side of a 1:1 image at the default size
    size_multiple: int
    max_prompt_tokens: int

    def count_tokens(self, prompt: str) -> int: ...

    def txt2img(self, req: GenerationRequest, progress: ProgressFn | None = None) -> list[Image.Image]: ...

    def img2img(
        self, images: list[Image.Image], req: GenerationRequest, strength: float, progress: ProgressFn | None = None
    ) -> list[Image.Image]: ...

    def upscale(
        self, image: Image.Image, req: GenerationRequest, strength: float, progress: ProgressFn | None = None
    ) -> Image.Image: ...
