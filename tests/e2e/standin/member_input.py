"""What a member hands the bot besides text, as Discord's client sends it and with
Discord's rules: files in attachment options (resolved into the interaction and
served from the CDN route), the values picked in a select menu, and the fields of
a modal the bot opened. What the client would not send is refused (ValueError),
what Discord would refuse of the bot (a bad modal) is its 400."""

from __future__ import annotations

import io
import mimetypes
from typing import Any

from .constants import (
    ACTION_ROW,
    LABEL,
    MAX_CUSTOM_ID,
    MAX_INPUT_LABEL,
    MAX_MODAL_ROWS,
    MAX_MODAL_TITLE,
    MAX_SELECT_OPTIONS,
    MEMBER_UPLOAD_LIMIT_BYTES,
    STRING_SELECT,
    TEXT_INPUT,
)
from .state import Attachment, Json, Upload
from .wire import FormErrors


def attachment_from(upload: Upload, attachment_id: int) -> Attachment:
    """A member's file as Discord stores it: its type from its name, an image's size read."""
    if len(upload.data) > MEMBER_UPLOAD_LIMIT_BYTES:
        raise ValueError(f"{upload.filename}: {len(upload.data)} bytes; Discord's client refuses files this large")
    content_type = mimetypes.guess_type(upload.filename)[0]
    width = height = None
    if content_type and content_type.startswith("image/"):
        try:
            from PIL import Image

            with Image.open(io.BytesIO(upload.data)) as im:
                width, height = im.size
        except Exception:  # Discord reports no size for what it cannot read
            width = height = None
    return Attachment(attachment_id, upload.filename, upload.data, content_type, width, height)


def check_select(component: Json, values: list[str]) -> None:
    """The values a member can pick in `component` (a string select)."""
    if component.get("type") != STRING_SELECT:
        raise ValueError(f"component {component.get('custom_id')!r} is not a select menu")
    offered = [o.get("value") for o in component.get("options") or []]
    if any(v not in offered for v in values) or len(set(values)) != len(values):
        raise ValueError(f"values {values} are not among the select's options {offered}")
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(values) <= high:
        raise ValueError(f"a select of {low} to {high} values: Discord's client would not send {len(values)}")


def select_errors(component: Json, path: list[Any], errors: FormErrors) -> None:
    """What Discord refuses in a string select the bot sends."""
    options = component.get("options") or []
    if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
        errors.add([*path, "options"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_SELECT_OPTIONS} in length.")
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not 0 <= low <= high <= max(len(options), 1):
        errors.add([*path, "max_values"], "BASE_TYPE_BAD_LENGTH", "min_values ≤ max_values ≤ the options")
    if not component.get("custom_id"):
        errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")


def modal_inputs(modal: Json) -> list[Json]:
    """The text inputs of a modal, in order (in action rows, or in labels)."""
    inputs = []
    for row in modal.get("components") or []:
        if row.get("type") == LABEL and isinstance(row.get("component"), dict):
            inputs.append(row["component"])
        for child in row.get("components") or []:
            if child.get("type") == TEXT_INPUT:
                inputs.append(child)
    return inputs


def check_modal(modal: Json) -> None:
    """A modal the bot opens, as Discord checks it (400 with its errors tree)."""
    errors = FormErrors()
    title = modal.get("title") or ""
    if not 1 <= len(title) <= MAX_MODAL_TITLE:
        errors.add(["data", "title"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_MODAL_TITLE} in length.")
    if not 1 <= len(modal.get("custom_id") or "") <= MAX_CUSTOM_ID:
        errors.add(["data", "custom_id"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_CUSTOM_ID} in length.")
    rows = modal.get("components") or []
    if not 1 <= len(rows) <= MAX_MODAL_ROWS:
        errors.add(["data", "components"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_MODAL_ROWS} in length.")
    for i, row in enumerate(rows):
        if row.get("type") not in (ACTION_ROW, LABEL):
            errors.add(["data", "components", i], "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1, 18).')
    for i, text in enumerate(modal_inputs(modal)):
        label = text.get("label") or ""
        if len(label) > MAX_INPUT_LABEL:
            errors.add(
                ["data", "components", i, "label"],
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_INPUT_LABEL} or fewer in length.",
            )
        if not text.get("custom_id"):
            errors.add(["data", "components", i, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    errors.raise_any()


def modal_submission(modal: Json, values: list[str]) -> Json:
    """The MODAL_SUBMIT data for `values`, one per text input, as the client checks them."""
    inputs = modal_inputs(modal)
    if len(values) != len(inputs):
        raise ValueError(f"the modal has {len(inputs)} fields, not {len(values)}")
    rows = []
    for text, value in zip(inputs, values, strict=True):
        if text.get("required", True) and not value:
            raise ValueError(f"field {text.get('label')!r} is required: Discord's client would not submit it empty")
        if len(value) > text.get("max_length", 4000) or len(value) < text.get("min_length", 0):
            raise ValueError(f"field {text.get('label')!r}: {len(value)} characters is outside its limits")
        rows.append(
            {"type": ACTION_ROW, "components": [{"type": TEXT_INPUT, "custom_id": text["custom_id"], "value": value}]}
        )
    return {"custom_id": modal["custom_id"], "components": rows}
