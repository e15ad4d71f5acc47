"""What an edit of one image asks for: Vary (Region), Zoom Out, Pan, Make Square.

An `Edit` rides on the job record (`JobRecord.edit`) and says which cells to
repaint, how far to zoom out or which way to pan; shared/canvas.py turns it
and the source image into the canvas and the mask the engine paints. The
checks here are the ones the bot, the CLI and the worker all make."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidRequest
from shared.params import ASPECT_RATIOS

REGION_GRID = 4  # Vary (Region) picks cells of a 4×4 grid, numbered 1–16 left to right, top to bottom
REGION_CELLS = REGION_GRID * REGION_GRID
MIN_ZOOM, MAX_ZOOM = 1.0, 2.0  # Custom Zoom's range, as Midjourney's
ZOOM_BUTTONS = (2.0, 1.5)  # Zoom Out 2x, Zoom Out 1.5x
PAN_GROWTH = 0.5  # a pan grows the canvas by half in its direction
DIRECTIONS = ("left", "right", "up", "down")


@dataclass(frozen=True)
class Edit:
    cells: tuple[int, ...] = ()  # region: the cells (1–16) to repaint
    factor: float | None = None  # zoom: how much larger the canvas is than the image
    direction: str | None = None  # pan: left | right | up | down
    aspect: str | None = None  # zoom: the canvas's new aspect ratio (Custom Zoom's --ar); None keeps it
    unknown: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # record.py


def parse_cells(raw: str | list[str] | tuple[int, ...]) -> tuple[int, ...]:
    """`1,2,5` (or the values of the region select) → (1, 2, 5), each checked."""
    parts = raw.replace(" ", ",").split(",") if isinstance(raw, str) else [str(p) for p in raw]
    cells: set[int] = set()
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= REGION_CELLS:
            raise InvalidRequest(
                f"`{part}` is not a cell: the image is cut into a {REGION_GRID}×{REGION_GRID} grid, "
                f"cells 1 to {REGION_CELLS} from the top left, row by row. Name them like `1,2,5`."
            )
        cells.add(int(part))
    if not cells:
        raise InvalidRequest(f"Name at least one cell to repaint (1 to {REGION_CELLS}), like `1,2,5`.")
    if len(cells) == REGION_CELLS:
        raise InvalidRequest("All 16 cells would repaint the whole image: use Vary (Strong) for that.")
    return tuple(sorted(cells))


def check_factor(raw: str | float) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"The zoom must be a number from {MIN_ZOOM:g} to {MAX_ZOOM:g}, like 1.5; got `{raw}`."
        ) from None
    if not MIN_ZOOM <= value <= MAX_ZOOM:
        raise InvalidRequest(f"The zoom must be from {MIN_ZOOM:g} to {MAX_ZOOM:g} (like 1.5), got `{raw}`.")
    return value


def check_direction(raw: str) -> str:
    value = raw.strip().lower()
    if value not in DIRECTIONS:
        raise InvalidRequest(f"Pan `{raw}`? Pan left, right, up or down.")
    return value


def check_aspect(raw: str | None) -> str | None:
    """Custom Zoom's optional `--ar W:H` (the `--ar` itself may be left out)."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip().removeprefix("--ar").removeprefix("--aspect").strip()
    if value not in ASPECT_RATIOS:
        raise InvalidRequest(
            f"`--ar {value}` is not an aspect ratio Daydream makes; use one of {', '.join(ASPECT_RATIOS)}."
        )
    return value
