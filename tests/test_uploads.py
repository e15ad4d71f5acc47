"""Input images as hostile input (shared/uploads.py): the formats accepted, every
limit checked before decoding (a decompression bomb is refused from its header),
and links only from Discord's CDN. Each refusal names what was wrong."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from shared.errors import BadImage
from shared.settings import Settings
from shared.uploads import MAX_STORED_SIDE, check_declared, check_image, check_link, split_links

MiB = 1024 * 1024
HOSTS = Settings().input_hosts


def encoded(fmt: str, size=(40, 30), colour=(200, 30, 30), **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR announcing width×height, then a tiny IDAT: a bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_read_and_stored_as_our_own_png(fmt) -> None:
    checked = check_image(f"a.{fmt.lower()}", encoded(fmt), 10 * MiB, 4096**2)
    image = Image.open(io.BytesIO(checked.png))
    assert image.format == "PNG" and image.mode == "RGB" and (checked.width, checked.height) == (40, 30)
    r, g, b = image.getpixel((20, 15))
    assert r > 150 and g < 80 and b < 80


def test_a_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((0, 200, 0), (200, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    checked = check_image("anim.gif", buf.getvalue(), 10 * MiB, 4096**2)
    r, g, _ = Image.open(io.BytesIO(checked.png)).getpixel((10, 10))
    assert g > 150 and r < 50


def test_a_large_image_is_shrunk_before_it_is_stored() -> None:
    checked = check_image("big.png", encoded("PNG", size=(3000, 1500)), 10 * MiB, 4096**2)
    assert (checked.width, checked.height) == (MAX_STORED_SIDE, MAX_STORED_SIDE // 2)


def test_too_many_bytes_is_refused_before_reading() -> None:
    with pytest.raises(BadImage, match=r"`a.png` is \d+ bytes; the limit is 100 bytes"):
        check_image("a.png", encoded("PNG"), 100, 4096**2)
    with pytest.raises(BadImage, match=r"is 12\.0 MiB; the limit is 10\.0 MiB"):
        check_declared("huge.png", 12 * MiB, "image/png", 10 * MiB)


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch) -> None:
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 200  # a tiny file...
    with pytest.raises(BadImage, match=r"too many pixels|100000×100000"):
        check_image("bomb.png", bomb, 10 * MiB, 4096**2)
    # ...of more pixels than allowed, though within PIL's own bomb limit: our limit, from the header.
    with pytest.raises(BadImage, match=r"5000×5000 pixels; the limit is 16,777,216"):
        check_image("big.png", png_claiming(5000, 5000), 10 * MiB, 4096**2)
    assert decoded == []  # never decoded


@pytest.mark.parametrize(
    ("name", "data", "text"),
    [
        ("notes.txt", b"hello, not an image", "not an image Daydream reads"),
        ("a.bmp", encoded("BMP"), "not an image Daydream reads"),
        ("empty.png", b"", "is empty"),
        ("cut.png", encoded("PNG", size=(300, 300))[:200], "damaged or cut short"),
    ],
)
def test_what_is_not_a_readable_image_is_refused_by_name(name, data, text) -> None:
    with pytest.raises(BadImage, match=text) as err:
        check_image(name, data, 10 * MiB, 4096**2)
    assert err.value.source == name and name in str(err.value)


def test_a_declared_type_that_is_not_an_image_is_refused_before_download() -> None:
    with pytest.raises(BadImage, match="is application/pdf, not an image"):
        check_declared("doc.pdf", 1000, "application/pdf", 10 * MiB)
    check_declared("a.png", 1000, "image/png", 10 * MiB)  # fine


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.discordapp.com/attachments/1/2/a.png?ex=65&is=66&hm=ab",
        "https://media.discordapp.net/attachments/1/2/a.webp",
    ],
)
def test_links_on_discords_cdn_are_fetched(url) -> None:
    assert check_link(url, HOSTS) == url


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("https://example.com/cat.png", "not from `example.com`"),
        ("https://cdn.discordapp.com.evil.example/a.png", "not from `cdn.discordapp.com.evil.example`"),
        ("http://cdn.discordapp.com/a.png", "only plain `https://cdn.discordapp.com/"),
        ("https://cdn.discordapp.com:8443/a.png", "no port"),
        ("https://user:pw@cdn.discordapp.com/a.png", "no password"),
        ("https://169.254.169.254/latest/meta-data", "not from `169.254.169.254`"),
        ("http://127.0.0.1:6379/", "not from `127.0.0.1`"),
    ],
)
def test_any_other_address_is_never_fetched(url, text) -> None:
    with pytest.raises(BadImage, match=text):
        check_link(url, HOSTS)


def test_a_local_stand_in_is_allowed_only_when_named_with_its_port() -> None:
    hosts = HOSTS | {"http://127.0.0.1:8123"}
    assert check_link("http://127.0.0.1:8123/attachments/a.png", hosts)
    with pytest.raises(BadImage):
        check_link("http://127.0.0.1:6379/", hosts)


def test_links_at_the_start_of_a_prompt_are_image_prompts() -> None:
    links, rest = split_links("https://cdn.discordapp.com/a.png  https://cdn.discordapp.com/b.png a red star --iw 2")
    assert links == ["https://cdn.discordapp.com/a.png", "https://cdn.discordapp.com/b.png"]
    assert rest == "a red star --iw 2"
    assert split_links("a red star https://cdn.discordapp.com/a.png") == (
        [],
        "a red star https://cdn.discordapp.com/a.png",
    )
