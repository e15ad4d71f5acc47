"""The custom_id codec: a button's whole state in ≤ 100 characters.

`dd:<action>:<job id>:<index>` — the bot routes clicks by the regex alone
(discord.py `DynamicItem`), so buttons on messages posted by a worker, or
before a bot restart, keep working."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import InvalidRequest

MAX_CUSTOM_ID = 100  # Discord's limit


class Action(StrEnum):
    UPSCALE = "u"
    VARY = "v"
    REROLL = "r"
    VARY_STRONG = "vs"
    VARY_SUBTLE = "vt"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"
    CANCEL = "x"  # ❌ under a waiting or running job's message, or in a Queue full answer
    # Under an upscale (issue 19): edits of its one image.
    VARY_REGION = "vr"  # opens the region select (a private message with the numbered cells)
    REGION_SELECT = "rs"  # the region select itself: its values are the cells
    ZOOM_2 = "z2"
    ZOOM_15 = "z15"
    ZOOM_CUSTOM = "zc"  # opens the Custom Zoom modal
    PAN_LEFT = "pl"
    PAN_RIGHT = "pr"
    PAN_UP = "pu"
    PAN_DOWN = "pd"
    SQUARE = "sq"
    # Under a /describe answer (issue 19): imagine prompt 1–4 (the index).
    DESCRIBE_PICK = "dp"
    APPEAL = "ap"  # under a blocked prompt's answer: the case goes to the mod log
    ALLOW = "al"  # in the mod log: the moderator lets the held job run
    UPHOLD = "uh"  # in the mod log: the block stands


# Loose on purpose: anything that looks like ours reaches the bot, which then
# answers a malformed one clearly instead of Discord's "This interaction failed".
# discord.py routes a click to a DynamicItem only when the whole custom_id
# matches, so every part is optional here and `decode` does the checking.
PATTERN = r"dd:(?P<action>[^:]{0,8})(?::(?P<job>[^:]{0,64}))?(?::(?P<index>[^:]{0,8}))?(?P<extra>.*)"
_STRICT = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ButtonRef:
    action: Action
    job_id: str
    index: int  # 1-4 for U/V, 0 for re-roll and the buttons under an upscale


def encode(action: Action, job_id: str, index: int = 0) -> str:
    value = f"dd:{action.value}:{job_id}:{index}"
    if len(value) > MAX_CUSTOM_ID:
        raise ValueError(f"custom_id too long: {value!r}")
    return value


def decode(action: str | None, job_id: str | None, index: str | None, extra: str | None = None) -> ButtonRef:
    """Validate the parts matched by PATTERN; raise InvalidRequest if forged."""
    if job_id is None or index is None or extra:
        raise InvalidRequest("This button's id is incomplete or malformed. Run `/imagine` again.")
    try:
        act = Action(action)
    except ValueError:
        raise InvalidRequest("This button is not one Daydream knows. Run `/imagine` again.") from None
    if not _STRICT.fullmatch(job_id):
        raise InvalidRequest("This button points to a malformed job id. Run `/imagine` again.")
    if not index.isdigit() or not 0 <= int(index) <= 4:
        raise InvalidRequest(f"This button names image `{index}`; a grid has images 1 to 4.")
    idx = int(index)
    if act in {Action.UPSCALE, Action.VARY} and idx == 0:
        raise InvalidRequest("This button names no image; U and V buttons name images 1 to 4.")
    return ButtonRef(act, job_id, idx)


def parse(custom_id: str) -> ButtonRef:
    m = re.fullmatch(PATTERN, custom_id)
    if not m:
        raise InvalidRequest("This button is not one Daydream knows. Run `/imagine` again.")
    return decode(m["action"], m["job"], m["index"], m["extra"])
