"""Input images are user input: what Daydream accepts, checked before anything
is decoded, and where it fetches them from.

* Files: PNG, JPEG, WebP, or a GIF's first frame; at most INPUT_MAX_BYTES and
  INPUT_MAX_PIXELS. The pixel count is read from the header (`Image.open` is
  lazy) before a single pixel is decoded, so a decompression bomb (a small file
  of a huge image) is refused without the memory it would take; PIL's own
  `DecompressionBombError` is the second line.
* Links: only `https://` on Discord's CDN hosts (INPUT_HOSTS), never an address
  the user chose — no port, no credentials; a redirect is not followed (the bot's
  downloader).
* What is stored is not the user's file but Daydream's own PNG of it, at most
  `MAX_STORED_SIDE` a side: the worker never decodes a hostile file.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image

from shared.errors import BadImage

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
MAX_STORED_SIDE = 1024  # inputs are shrunk to this before they are stored: the models draw ~1 MP at most
LINK = re.compile(r"https?://\S+", re.IGNORECASE)
MAX_LINKS = 5


@dataclass(frozen=True)
class CheckedImage:
    png: bytes  # Daydream's own encoding of the image (RGB)
    width: int
    height: int


def _mib(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def check_declared(name: str, size: int | None, content_type: str | None, max_bytes: int) -> None:
    """What Discord tells of an attachment before it is downloaded: refuse early."""
    if size is not None and size > max_bytes:
        raise BadImage(name, f"`{name}` is {_mib(size)}; the limit is {_mib(max_bytes)}. Send a smaller image.")
    if content_type and not content_type.lower().startswith("image/"):
        raise BadImage(name, f"`{name}` is {content_type}, not an image. Send a PNG, JPEG, WebP or GIF.")


def check_image(name: str, data: bytes, max_bytes: int, max_pixels: int) -> CheckedImage:
    """`data` as a checked RGB image, re-encoded as PNG; BadImage says what was wrong."""
    # 1. Bytes, before anything reads them.
    if len(data) > max_bytes:
        raise BadImage(name, f"`{name}` is {_mib(len(data))}; the limit is {_mib(max_bytes)}. Send a smaller image.")
    if not data:
        raise BadImage(name, f"`{name}` is empty. Send a PNG, JPEG, WebP or GIF.")
    # 2. The header only: format and pixel count.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(name, f"`{name}` has too many pixels to be read safely. Send a smaller image.") from None
    except (OSError, ValueError, SyntaxError):
        raise BadImage(
            name, f"`{name}` is not an image Daydream reads. Send a PNG, JPEG, WebP or GIF (its first frame)."
        ) from None
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise BadImage(
            name,
            f"`{name}` is {width}×{height} pixels; the limit is {max_pixels:,} pixels "
            f"(about {int(max_pixels**0.5)}×{int(max_pixels**0.5)}). Send a smaller image.",
        )
    # 3. Decode (a GIF's first frame) within the pixel budget checked above.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.seek(0)
            image.load()
            rgb = image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(name, f"`{name}` has too many pixels to be read safely. Send a smaller image.") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise BadImage(name, f"`{name}` is damaged or cut short and cannot be read. Send it again.") from None
    rgb.thumbnail((MAX_STORED_SIDE, MAX_STORED_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return CheckedImage(buf.getvalue(), rgb.width, rgb.height)


def check_link(url: str, hosts: frozenset[str]) -> str:
    """`url` if Daydream may fetch it: https on one of `hosts` (Discord's CDN), no port
    or credentials. An `http://host:port` entry in `hosts` allows exactly that (a test stand-in)."""
    shown = url if len(url) <= 80 else url[:77] + "…"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadImage(shown, f"`{shown}` is not a link Daydream can read.") from None
    host = (parts.hostname or "").lower()
    plain = parts.scheme == "https" and port is None and host in hosts
    local = f"{parts.scheme}://{host}:{port}" in hosts if port is not None else False
    if host in hosts and not local and (parts.scheme != "https" or port is not None or parts.username):
        raise BadImage(
            shown, f"`{shown}`: Daydream fetches only plain `https://{host}/…` links (no port, no password)."
        )
    if parts.username or parts.password or not (plain or local):
        where = ", ".join(sorted(h for h in hosts if "://" not in h)) or "Discord's CDN"
        raise BadImage(
            shown,
            f"Daydream fetches images only from Discord ({where}), not from `{host or shown}`. "
            "Upload the image to Discord (attach it, or copy its link from a message) and use that.",
        )
    return url


def split_links(text: str) -> tuple[list[str], str]:
    """Image links at the start of a prompt (Midjourney's image prompts), and the rest."""
    links: list[str] = []
    rest = text.strip()
    while True:
        m = LINK.match(rest)
        if m is None:
            return links, rest
        links.append(m.group(0))
        rest = rest[m.end() :].lstrip()
        if len(links) > MAX_LINKS:
            raise BadImage(m.group(0), f"At most {MAX_LINKS} image links go before a prompt; this has more.")
