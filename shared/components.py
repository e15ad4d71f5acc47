"""The buttons under a result, as Discord's raw component JSON. The worker
posts these; the bot's `DynamicItem`s match the same custom_ids."""

from __future__ import annotations

from typing import Any

from shared.custom_id import Action, encode

BUTTON = 2
ACTION_ROW = 1
SECONDARY = 2
REROLL_EMOJI = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
CANCEL_EMOJI = "\N{CROSS MARK}"
MAX_ROWS, MAX_PER_ROW = 5, 5  # Discord's limits on a message's components


def _button(label: str | None, custom_id: str, emoji: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": BUTTON, "style": SECONDARY, "custom_id": custom_id}
    if label:
        button["label"] = label
    if emoji:
        button["emoji"] = {"name": emoji}
    return button


def grid_components(job_id: str) -> list[dict[str, Any]]:
    """U1–U4 on the first row; V1–V4 and 🔄 on the second."""
    upscale = [_button(f"U{i}", encode(Action.UPSCALE, job_id, i)) for i in range(1, 5)]
    vary = [_button(f"V{i}", encode(Action.VARY, job_id, i)) for i in range(1, 5)]
    vary.append(_button(None, encode(Action.REROLL, job_id, 0), emoji=REROLL_EMOJI))
    return [{"type": ACTION_ROW, "components": upscale}, {"type": ACTION_ROW, "components": vary}]


def upscale_components(job_id: str, width: int | None = None, height: int | None = None) -> list[dict[str, Any]]:
    """Under a single upscaled image, as in Midjourney: Vary, Upscale, Zoom Out, Pan
    and (when the image is not square) Make Square — five rows at most."""
    vary = [
        _button("Vary (Strong)", encode(Action.VARY_STRONG, job_id, 0)),
        _button("Vary (Subtle)", encode(Action.VARY_SUBTLE, job_id, 0)),
        _button("Vary (Region)", encode(Action.VARY_REGION, job_id, 0)),
    ]
    upscale = [
        _button("Upscale (Subtle)", encode(Action.UPSCALE_SUBTLE, job_id, 0)),
        _button("Upscale (Creative)", encode(Action.UPSCALE_CREATIVE, job_id, 0)),
    ]
    zoom = [
        _button("Zoom Out 2x", encode(Action.ZOOM_2, job_id, 0)),
        _button("Zoom Out 1.5x", encode(Action.ZOOM_15, job_id, 0)),
        _button("Custom Zoom", encode(Action.ZOOM_CUSTOM, job_id, 0)),
    ]
    pan = [_button(None, encode(action, job_id, 0), emoji=emoji) for action, emoji in PAN_BUTTONS]
    rows = [vary, upscale, zoom, pan]
    if width is None or height is None or width != height:
        rows.append([_button("Make Square", encode(Action.SQUARE, job_id, 0))])
    return [{"type": ACTION_ROW, "components": row} for row in rows]


PAN_BUTTONS = (
    (Action.PAN_LEFT, "\N{LEFTWARDS BLACK ARROW}"),
    (Action.PAN_RIGHT, "\N{BLACK RIGHTWARDS ARROW}"),
    (Action.PAN_UP, "\N{UPWARDS BLACK ARROW}"),
    (Action.PAN_DOWN, "\N{DOWNWARDS BLACK ARROW}"),
)
SELECT = 3  # a string select menu


def region_select_components(job_id: str, cells: int = 16) -> list[dict[str, Any]]:
    """Vary (Region)'s select: the numbered cells of the preview, several at once."""
    options = [{"label": f"Cell {i}", "value": str(i)} for i in range(1, cells + 1)]
    select = {
        "type": SELECT,
        "custom_id": encode(Action.REGION_SELECT, job_id, 0),
        "placeholder": "Cells to repaint",
        "min_values": 1,
        "max_values": cells - 1,  # all of them would be Vary (Strong)
        "options": options,
    }
    return [{"type": ACTION_ROW, "components": [select]}]


def cancel_components(job_id: str) -> list[dict[str, Any]]:
    """❌ under a waiting or running job: cancels it (its requester or an admin)."""
    return [
        {"type": ACTION_ROW, "components": [_button("Cancel", encode(Action.CANCEL, job_id, 0), emoji=CANCEL_EMOJI)]}
    ]


def cancel_each_components(jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One ❌ per job, labelled — for a "Queue full" answer: [(job id, label)], at most 25."""
    buttons = [_button(label[:80], encode(Action.CANCEL, job_id, 0), emoji=CANCEL_EMOJI) for job_id, label in jobs]
    buttons = buttons[: MAX_ROWS * MAX_PER_ROW]
    return [
        {"type": ACTION_ROW, "components": buttons[i : i + MAX_PER_ROW]} for i in range(0, len(buttons), MAX_PER_ROW)
    ]


def describe_components(job_id: str) -> list[dict[str, Any]]:
    """Under a /describe answer, as in Midjourney: 1–4 imagine that prompt, 🔄 describes again."""
    picks = [_button(str(i), encode(Action.DESCRIBE_PICK, job_id, i)) for i in range(1, 5)]
    picks.append(_button(None, encode(Action.REROLL, job_id, 0), emoji=REROLL_EMOJI))
    return [{"type": ACTION_ROW, "components": picks}]
