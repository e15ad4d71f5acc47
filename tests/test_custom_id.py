from __future__ import annotations

import re

import pytest

from shared.components import grid_components, upscale_components
from shared.custom_id import MAX_CUSTOM_ID, PATTERN, Action, ButtonRef, encode, parse
from shared.errors import InvalidRequest
from shared.job import new_job_id


@pytest.mark.parametrize("action", list(Action))
def test_round_trip(action):
    job = new_job_id()
    index = 0 if action not in {Action.UPSCALE, Action.VARY} else 3
    cid = encode(action, job, index)
    assert len(cid) <= MAX_CUSTOM_ID
    assert re.fullmatch(PATTERN, cid)
    assert parse(cid) == ButtonRef(action, job, index)


@pytest.mark.parametrize(
    "cid",
    [
        "dd:u:nothex:1",
        "dd:zz:" + "a" * 32 + ":1",
        "dd:u:" + "a" * 32 + ":9",
        "dd:u:" + "a" * 32 + ":0",
        "dd:v:" + "a" * 32 + ":x",
        "dd:u:" + "A" * 32 + ":1",
        "something-else",
        "dd:u:" + "a" * 32,
        "dd:u:" + "a" * 32 + ":1:extra",
        "dd:",
    ],
)
def test_tampered_ids_are_rejected_with_a_message(cid):
    with pytest.raises(InvalidRequest) as err:
        parse(cid)
    assert str(err.value)


def test_grid_buttons_follow_discord_limits():
    job = new_job_id()
    rows = grid_components(job)
    assert len(rows) == 2
    labels = [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in rows]
    assert labels == [
        ["U1", "U2", "U3", "U4"],
        ["V1", "V2", "V3", "V4", "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"],
    ]
    ids = [b["custom_id"] for row in rows for b in row["components"]]
    assert len(ids) == len(set(ids))  # unique within the message
    assert all(len(row["components"]) <= 5 for row in rows)
    assert [parse(i).action for i in ids] == [Action.UPSCALE] * 4 + [Action.VARY] * 4 + [Action.REROLL]
    assert [parse(i).index for i in ids[:4]] == [1, 2, 3, 4]


def _labels(rows: list[dict]) -> list[list[str]]:
    return [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in rows]


def test_upscale_buttons():
    rows = upscale_components(new_job_id(), 128, 96)
    assert _labels(rows) == [
        ["Vary (Strong)", "Vary (Subtle)", "Vary (Region)"],
        ["Upscale (Subtle)", "Upscale (Creative)"],
        ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom"],
        [
            "\N{LEFTWARDS BLACK ARROW}",
            "\N{BLACK RIGHTWARDS ARROW}",
            "\N{UPWARDS BLACK ARROW}",
            "\N{DOWNWARDS BLACK ARROW}",
        ],
        ["Make Square"],
    ]
    # Within Discord's limits: five rows of five, unique ids of at most 100 characters.
    assert len(rows) <= 5 and all(len(row["components"]) <= 5 for row in rows)
    ids = [b["custom_id"] for row in rows for b in row["components"]]
    assert len(ids) == len(set(ids)) and all(len(i) <= 100 for i in ids)
    assert {parse(i).action for i in ids} >= {Action.VARY_REGION, Action.ZOOM_CUSTOM, Action.PAN_DOWN, Action.SQUARE}


def test_a_square_upscale_has_no_make_square():
    rows = upscale_components(new_job_id(), 128, 128)
    assert len(rows) == 4 and all("Make Square" not in row for row in _labels(rows))


@pytest.mark.parametrize(
    ("minted", "action", "index"),
    [
        # custom_ids as posted under results by every version so far (`dd:<action>:<job>:<index>`)
        ("dd:u:0123456789abcdef0123456789abcdef:2", Action.UPSCALE, 2),
        ("dd:v:0123456789abcdef0123456789abcdef:4", Action.VARY, 4),
        ("dd:r:0123456789abcdef0123456789abcdef:0", Action.REROLL, 0),
        ("dd:vt:0123456789abcdef0123456789abcdef:0", Action.VARY_SUBTLE, 0),
        ("dd:uc:0123456789abcdef0123456789abcdef:0", Action.UPSCALE_CREATIVE, 0),
    ],
)
def test_buttons_minted_by_earlier_versions_still_parse(minted: str, action: Action, index: int) -> None:
    assert parse(minted) == ButtonRef(action, "0123456789abcdef0123456789abcdef", index)
    assert encode(action, "0123456789abcdef0123456789abcdef", index) == minted  # and are what we mint today
