"""Discord's HTTP conventions: JSON answers, its error bodies, and request
bodies as JSON or multipart (`payload_json` + `files[n]`)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from aiohttp import BodyPartReader, web

from .state import Json, Upload


def json_response(body: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", no charset: discord.py decodes JSON only for that header value.
    return web.Response(body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"})


class ApiError(Exception):
    """An error answer shaped as Discord's: `{"message", "code"[, "errors"]}`."""

    def __init__(self, status: int, message: str, code: int, errors: Json | None = None) -> None:
        super().__init__(f"{status} {message} ({code})")
        self.status, self.message, self.code, self.errors = status, message, code, errors

    def response(self) -> web.Response:
        body: Json = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def form_error(path: list[str | int], code: str, message: str) -> ApiError:
    """400 Invalid Form Body (50035) with the error at `path` in Discord's `errors` tree."""
    errors: Json = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return ApiError(400, "Invalid Form Body", 50035, errors)


async def read_body(request: web.Request) -> tuple[Json, dict[int, Upload]]:
    """JSON, or multipart with `payload_json` and `files[n]` (how Discord takes attachments)."""
    try:
        if request.content_type.startswith("multipart/"):
            payload: Json = {}
            uploads: dict[int, Upload] = {}
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.name and (m := re.fullmatch(r"files\[(\d+)\]", part.name)):
                    uploads[int(m[1])] = Upload(part.filename or f"file{m[1]}", bytes(await part.read()))
            return payload, uploads
        if request.body_exists:
            return await request.json(), {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body contains invalid JSON.", 50109) from None
    return {}, {}


def image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image  # Daydream depends on Pillow; the stand-in works without it
    except ImportError:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except OSError:
        return None, None
