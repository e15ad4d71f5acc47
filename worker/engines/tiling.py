"""--tile: convolutions that pad by wrapping around, so an image continues
across its edges. Switched on a shared model for one call at a time (the
model serves every job)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def circular_padding(*modules: torch.nn.Module | None, on: bool) -> Iterator[None]:
    """--tile: every convolution pads by wrapping around (the image continues across its
    edges), for this call only (the model is shared by every job)."""
    convs = [
        m
        for module in (modules if on else ())
        if module is not None
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0)
    ]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv in convs:
            conv.padding_mode = "zeros"


def tile_shift(i: int, x) -> tuple[int, int]:
    """--tile's roll at step `i`: steps of co-prime sizes put every seam in the middle of some step's view."""
    h, w = x.shape[2], x.shape[3]
    return ((i * 5 + h // 2) % h, (i * 7 + w // 2) % w)
