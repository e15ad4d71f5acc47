"""What Discord refuses in a message body, with its error shapes (400, code
50035 "Invalid Form Body" and an `errors` tree naming each bad field)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .constants import (
    ACTION_ROW,
    BUTTON,
    IS_COMPONENTS_V2,
    LINK_BUTTON,
    MAX_ACTION_ROWS,
    MAX_BUTTON_LABEL,
    MAX_CONTENT_CHARS,
    MAX_CUSTOM_ID,
    MAX_MENTION_IDS,
    MAX_NONCE_CHARS,
    MAX_ROW_COMPONENTS,
    PREMIUM_BUTTON,
    STRING_SELECT,
)
from .member_input import select_errors
from .state import Json
from .wire import FormErrors, Path

# What Discord names as allowed in its UNION_TYPE_CHOICES errors, outside and inside an action row.
TOP_LEVEL_TYPES = "(1, 9, 10, 12, 13, 14, 17)"
ROW_CHILD_TYPES = (2, 3, 5, 6, 7, 8)
MENTION_TYPES = ("everyone", "roles", "users")
NOT_AN_OBJECT = ("MODEL_TYPE_CONVERT", "Expected an object/dictionary.")


def check_message(payload: Json, content: str, components: list[Json], flags: int) -> None:
    """Content length, components, allowed_mentions and nonce: every problem at once."""
    errors = FormErrors()
    if len(content) > MAX_CONTENT_CHARS:
        errors.add(["content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT_CHARS} or fewer in length.")
    check_components(components, flags, errors)
    check_allowed_mentions(payload.get("allowed_mentions"), errors)
    check_nonce(payload.get("nonce"), errors)
    errors.raise_any()


def check_components(components: list[Json], flags: int, errors: FormErrors) -> None:
    if not flags & IS_COMPONENTS_V2:
        _check_rows(components, errors)
    seen: set[str] = set()
    for path, component in _walk(components, ["components"]):
        if component.get("type") == BUTTON:
            _check_button(component, path, errors)
        elif component.get("type") == STRING_SELECT:
            select_errors(component, path, errors)
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
            errors.add(
                [*path, "custom_id"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_CUSTOM_ID} in length."
            )
        elif custom_id in seen:
            errors.add(
                [*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id was already specified"
            )
        seen.add(custom_id)


def _check_rows(components: list[Json], errors: FormErrors) -> None:
    """Without the components-v2 flag: at most 5 action rows of 1 to 5 components each."""
    if len(components) > MAX_ACTION_ROWS:
        errors.add(["components"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for i, row in enumerate(components):
        if not isinstance(row, dict):
            errors.add(["components", i], *NOT_AN_OBJECT)
            continue
        if row.get("type") != ACTION_ROW:
            message = f'Value of field "type" must be one of {TOP_LEVEL_TYPES}.'
            errors.add(["components", i], "UNION_TYPE_CHOICES", message)
            continue
        children = row.get("components") or []
        if not 1 <= len(children) <= MAX_ROW_COMPONENTS:
            message = f"Must be between 1 and {MAX_ROW_COMPONENTS} in length."
            errors.add(["components", i, "components"], "BASE_TYPE_BAD_LENGTH", message)
        for j, child in enumerate(children):
            if isinstance(child, dict) and child.get("type") not in ROW_CHILD_TYPES:
                message = f'Value of field "type" must be one of {ROW_CHILD_TYPES}.'
                errors.add(["components", i, "components", j], "UNION_TYPE_CHOICES", message)


def _check_button(button: Json, path: Path, errors: FormErrors) -> None:
    label = button.get("label")
    if isinstance(label, str) and len(label) > MAX_BUTTON_LABEL:
        errors.add([*path, "label"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_BUTTON_LABEL} or fewer in length.")
    if button.get("emoji") is not None and not isinstance(button["emoji"], dict):
        errors.add([*path, "emoji"], *NOT_AN_OBJECT)  # `"emoji": "🔄"` instead of `{"name": "🔄"}`
    if button.get("style") not in (LINK_BUTTON, PREMIUM_BUTTON) and not button.get("custom_id"):
        errors.add([*path, "custom_id"], "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")


def _walk(components: list[Any], path: Path) -> Iterator[tuple[Path, Json]]:
    """Every component with its path in the body (rows' children, sections' accessories)."""
    for i, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        yield [*path, i], component
        yield from _walk(component.get("components") or [], [*path, i, "components"])
        if isinstance(component.get("accessory"), dict):
            yield [*path, i, "accessory"], component["accessory"]


def check_allowed_mentions(value: Any, errors: FormErrors) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(["allowed_mentions"], *NOT_AN_OBJECT)
        return
    parse = value.get("parse") or []
    for i, kind in enumerate(parse):
        if kind not in MENTION_TYPES:
            errors.add(["allowed_mentions", "parse", i], "BASE_TYPE_CHOICES", f"Value must be one of {MENTION_TYPES}.")
    for kind in ("users", "roles"):
        ids = value.get(kind) or []
        if len(ids) > MAX_MENTION_IDS:
            errors.add(
                ["allowed_mentions", kind], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_MENTION_IDS} or fewer in length."
            )
        elif kind in parse and ids:
            message = f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.'
            errors.add(["allowed_mentions"], "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", message)


def check_nonce(value: Any, errors: FormErrors) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors.add(["nonce"], "NONCE_TYPE_INVALID_TYPE", "This field must be a string or integer.")
    elif isinstance(value, str) and len(value) > MAX_NONCE_CHARS:
        errors.add(["nonce"], "NONCE_TYPE_TOO_LONG", f"Must be {MAX_NONCE_CHARS} or fewer characters long.")
