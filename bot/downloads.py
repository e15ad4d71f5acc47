"""Time-limited, size-capped downloads of input images, from Discord's CDN only.

Every URL is checked against INPUT_HOSTS first (shared/uploads.py), redirects
are not followed (a redirect could point anywhere), the body is read in chunks
and dropped as soon as it passes INPUT_MAX_BYTES, and the whole download is
given up after INPUT_TIMEOUT_S. One aiohttp session for the bot's life."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import aiohttp
import discord

from shared.errors import BadImage
from shared.settings import Settings
from shared.uploads import CheckedImage, check_declared, check_image, check_link

if TYPE_CHECKING:
    from bot.app import DaydreamBot

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024


class Downloader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "Daydream (image inputs)"})
        return self._session

    async def fetch(
        self, url: str, name: str, *, declared: int | None = None, content_type: str | None = None
    ) -> bytes:
        """The bytes at `url` (named `name` in every refusal), or BadImage saying why not."""
        settings = self.settings
        check_link(url, settings.input_hosts)
        check_declared(name, declared, content_type, settings.input_max_bytes)
        try:
            async with asyncio.timeout(settings.input_timeout_s):
                async with self._client().get(url, allow_redirects=False) as resp:
                    if resp.status != 200:
                        raise BadImage(
                            name,
                            f"Discord answered {resp.status} for `{name}`: the link may have expired or be wrong. "
                            "Upload the image again.",
                        )
                    check_declared(name, resp.content_length, resp.content_type, settings.input_max_bytes)
                    data = bytearray()
                    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                        data += chunk
                        if len(data) > settings.input_max_bytes:
                            check_declared(name, len(data), None, settings.input_max_bytes)  # raises
                    return bytes(data)
        except TimeoutError:
            raise BadImage(
                name,
                f"Downloading `{name}` took longer than {settings.input_timeout_s:g} s. Try again, or send a smaller image.",
            ) from None
        except aiohttp.ClientError as exc:
            logger.info("download of %s failed: %s", name, exc)
            raise BadImage(name, f"`{name}` could not be downloaded ({type(exc).__name__}). Upload it again.") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def precheck(links: list[str], attachments: list[discord.Attachment], settings: Settings) -> None:
    """Everything about the inputs that needs no download (BadImage otherwise)."""
    for url in links:
        check_link(url, settings.input_hosts)
    for att in attachments:
        check_declared(att.filename, att.size, att.content_type, settings.input_max_bytes)
        check_link(att.url, settings.input_hosts)


async def fetch_images(
    interaction: discord.Interaction, links: list[str], attachments: list[discord.Attachment], settings: Settings
) -> list[CheckedImage]:
    """Download (attachments first, then links, in order) and check each image."""
    bot = cast("DaydreamBot", interaction.client)
    sources = [(a.url, a.filename, a.size, a.content_type) for a in attachments]
    sources += [(url, url.rsplit("/", 1)[-1].split("?", 1)[0] or url, None, None) for url in links]
    datas = await asyncio.gather(
        *(bot.downloads.fetch(url, name, declared=size, content_type=kind) for url, name, size, kind in sources)
    )
    return [
        await asyncio.to_thread(check_image, name, data, settings.input_max_bytes, settings.input_max_pixels)
        for (_, name, _, _), data in zip(sources, datas, strict=True)
    ]
