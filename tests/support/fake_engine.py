"""A fake engine: the Engine interface (worker/engines/base.py) without a model.

It draws each image as a flat colour from its seed (so results are
deterministic and tell seeds apart), reports progress over `steps` steps with
a callable preview, records every request it gets, and can be told to fail,
run out of memory, or report at a step where the test does something (a
cancel, a takeover by another attempt). For the pipeline's branches; the
queue's own claims are tested with the real engines."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from shared.models import ModelSpec
from tests.support.jobs import EMBEDDED_SPEC
from worker.engines.base import ProgressFn, Request, check_request

VOCAB = ["[UNK]", "[CLS]", "[SEP]", "a", "red", "blue", "circle", "square", "on", "background", "the"]


def fake_tokenizer(max_tokens: int = EMBEDDED_SPEC.max_prompt_tokens) -> Tokenizer:
    """A real `tokenizers` tokenizer over a tiny vocabulary ([CLS] … [SEP], like MiniLM's)."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    return tok


def colour_of(seed: int) -> tuple[int, int, int]:
    return (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)


@dataclass
class FakeEngine:
    spec: ModelSpec = EMBEDDED_SPEC
    steps: int = 4
    fail_with: BaseException | None = None  # raised by generate() after its first step
    at_step: Callable[[int], None] | None = None  # called before each step is reported
    requests: list[Request] = field(default_factory=list)
    previews_made: int = 0

    def __post_init__(self) -> None:
        self._tokenizer = fake_tokenizer()

    def count_tokens(self, prompt: str) -> int:
        return len(self._tokenizer.encode(prompt).ids)

    def tokenizer_json(self) -> str | None:
        return self._tokenizer.to_str()

    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        check_request(self.spec, req)
        self.requests.append(req)
        if req.upscale > 1:
            source = req.init_images[0]
            size = (source.width * req.upscale, source.height * req.upscale)
            images = [source.convert("RGB").resize(size)]
        else:
            images = [Image.new("RGB", (req.width, req.height), colour_of(s)) for s in req.seeds]
        for step in range(self.steps):
            if self.at_step is not None:
                self.at_step(step)
            if step == 1 and self.fail_with is not None:
                raise self.fail_with
            if progress is not None:
                progress((step + 1) / self.steps, self._preview(images))
        return images

    def _preview(self, images: list[Image.Image]) -> Callable[[], Image.Image]:
        def preview() -> Image.Image:
            self.previews_made += 1
            return images[0]

        return preview

    def with_spec(self, **changes: object) -> FakeEngine:
        self.spec = replace(self.spec, **changes)  # type: ignore[arg-type]
        return self


class TimedFakeEngine(FakeEngine):
    """The fake engine with a fixed cost per job, for real worker processes
    (`MODEL=python:tests.support.fake_engine:TimedFakeEngine`): the queue's
    tests, where the image does not matter but the time a job holds a worker
    does. FAKE_ENGINE_JOB_S sets that time (0.2 s by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.job_s = float(os.environ.get("FAKE_ENGINE_JOB_S", "0.2"))

    def generate(self, req: Request, progress: ProgressFn | None = None) -> list[Image.Image]:
        per_step = self.job_s / self.steps

        def costly(fraction: float, preview: object) -> None:
            time.sleep(per_step)  # the GPU time this fake stands for, not a wait for anything
            if progress is not None:
                progress(fraction, preview)  # type: ignore[arg-type]

        return super().generate(req, costly)
