"""Discord's HTTP conventions: JSON answers, its error bodies, and request
bodies as JSON or multipart (`payload_json` + `files[n]`)."""

from __future__ import annotations

import email.policy
import io
import json
import re
from email.parser import BytesParser
from typing import Any

from aiohttp import web

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


Path = list[str | int]


def form_error(path: Path, code: str, message: str) -> ApiError:
    """400 Invalid Form Body (50035) with the error at `path` in Discord's `errors` tree."""
    errors = FormErrors()
    errors.add(path, code, message)
    return errors.error()


class FormErrors:
    """Every problem of one body, gathered into one `errors` tree, as Discord reports them:
    `{"components": {"0": {"components": {"1": {"label": {"_errors": [{code, message}]}}}}}}`."""

    def __init__(self) -> None:
        self.tree: Json = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def error(self) -> ApiError:
        return ApiError(400, "Invalid Form Body", 50035, self.tree)

    def raise_any(self) -> None:
        if self.tree:
            raise self.error()


def parse_body(content_type: str, raw: bytes) -> tuple[Any, dict[int, Upload]]:
    """JSON, or multipart with `payload_json` and `files[n]` (how Discord takes attachments)."""
    try:
        if content_type.startswith("multipart/"):
            payload: Any = {}
            uploads: dict[int, Upload] = {}
            header = f"Content-Type: {content_type}\r\n\r\n".encode()
            for part in BytesParser(policy=email.policy.HTTP).parsebytes(header + raw).iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True)
                if not isinstance(data, bytes):
                    continue
                if name == "payload_json":
                    payload = json.loads(data.decode())
                elif isinstance(name, str) and (m := re.fullmatch(r"files\[(\d+)\]", name)):
                    uploads[int(m[1])] = Upload(part.get_filename() or f"file{m[1]}", data)
            return payload, uploads
        return (json.loads(raw.decode()) if raw else {}), {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body contains invalid JSON.", 50109) from None


async def read_body(request: web.Request) -> tuple[Json, dict[int, Upload]]:
    """The request's body, parsed (the middleware read it already: the same bytes, cached by aiohttp)."""
    payload, uploads = parse_body(request.headers.get("Content-Type", ""), await request.read())
    return payload, uploads


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
