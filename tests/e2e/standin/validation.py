"""What Discord refuses in a message body, with its error shapes (400, code
50035 "Invalid Form Body" and an `errors` tree naming the field)."""

from __future__ import annotations

from .constants import IS_COMPONENTS_V2, MAX_ACTION_ROWS, MAX_CONTENT_CHARS, MAX_CUSTOM_ID, MAX_ROW_COMPONENTS
from .state import Json, walk_components
from .wire import form_error


def check_content(content: str) -> None:
    if len(content) > MAX_CONTENT_CHARS:
        raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")


def check_components(components: list[Json], flags: int) -> None:
    seen: set[str] = set()
    for row_index, row in enumerate(components):
        if not flags & IS_COMPONENTS_V2:
            if row_index >= MAX_ACTION_ROWS:
                raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
            if len(row.get("components", [])) > MAX_ROW_COMPONENTS:
                raise form_error(
                    ["components", row_index, "components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                )
    for component in walk_components(components):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
            raise form_error(
                ["components", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if custom_id in seen:
            raise form_error(
                ["components", "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
