"""Input images through real discord.py interactions against the real Redis: /imagine
with an attachment and a CDN link, /blend, /describe, and every refusal of bad input
(answered privately). A small HTTP server plays Discord's CDN, named in INPUT_HOSTS as
an `http://host:port` entry; anything else is never fetched."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from shared import keys
from shared.job import JobKind, JobRecord
from shared.settings import Settings
from tests.support.discord_api import DEFERRED_THINKING, Harness, ids, interaction_payload, start_bot, worker_alive

ATTACHMENT = 11  # the option type of an attachment
MiB = 1024 * 1024


def png(colour=(200, 30, 30), size=(48, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Cdn:
    """Discord's CDN as far as the bot meets it: files by name, and misbehaving paths."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    never: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(name)
        if name == "slow.png":
            await self.never.wait()  # answers only after the bot has given up
        if name == "moved.png":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data")
        if name == "endless.png":  # no Content-Length, more bytes than allowed
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            await resp.prepare(request)
            for _ in range(64):
                await resp.write(b"\0" * 65536)
            return resp
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name], content_type="image/png")


@pytest.fixture
async def cdn() -> AsyncIterator[Cdn]:
    state = Cdn()
    app = web.Application()
    app.router.add_get("/attachments/{name}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"http://127.0.0.1:{port}"
    yield state
    state.never.set()
    await runner.cleanup()


@pytest.fixture
async def harness(settings: Settings, cdn: Cdn) -> AsyncIterator[Harness]:
    configured = replace(settings, input_hosts=frozenset({cdn.base}), input_timeout_s=0.5, input_max_bytes=1 * MiB)
    async for h in start_bot(configured):
        worker_alive(h.store)
        yield h


def attachment(cdn: Cdn, name: str, data: bytes | None = None, **over: Any) -> dict[str, Any]:
    if data is not None:
        cdn.files[name] = data
    size = len(data) if data is not None else 1000
    return {
        "id": str(next(ids)), "filename": name, "size": size, "url": f"{cdn.base}/attachments/{name}",
        "proxy_url": f"{cdn.base}/attachments/{name}", "content_type": "image/png", **over,
    }  # fmt: skip


async def command(h: Harness, name: str, options: dict[str, Any]) -> None:
    """A slash command whose attachment options are resolved, as Discord sends them."""
    opts, resolved = [], {}
    for key, value in options.items():
        if isinstance(value, dict):
            opts.append({"name": key, "type": ATTACHMENT, "value": value["id"]})
            resolved[value["id"]] = value
        else:
            opts.append({"name": key, "type": 3, "value": value})
    data: dict[str, Any] = {"id": str(next(ids)), "name": name, "type": 1, "options": opts}
    if resolved:
        data["resolved"] = {"attachments": resolved}
    await h.deliver(interaction_payload(2, data))


def queued(h: Harness) -> list[JobRecord]:
    return [h.store.get(raw.decode()) for raw in reversed(h.store.redis.lrange(keys.RECENT, 0, -1))]


def private_texts(h: Harness) -> str:
    return "\n".join(h.discord.ephemeral_texts())


def stored_inputs(h: Harness, job: JobRecord) -> list[Image.Image]:
    return [Image.open(io.BytesIO(h.store.images.input(job.id, i.name))) for i in job.inputs]


async def test_imagine_with_an_attachment_and_a_cdn_link(harness: Harness, cdn: Cdn) -> None:
    cdn.files["link.png"] = png((30, 200, 30))
    image = attachment(cdn, "att.png", png((200, 30, 30)))
    await command(harness, "imagine", {"prompt": f"{cdn.base}/attachments/link.png a red star --iw 2", "image": image})
    [job] = queued(harness)
    assert job.prompt == "a red star" and job.params.image_weight == 2.0
    assert [i.name for i in job.inputs] == ["image1", "image2"] and job.inputs[0].width == 48
    first, second = stored_inputs(harness, job)
    assert first.format == "PNG" and first.getpixel((5, 5))[0] > 150  # the attachment first
    assert second.getpixel((5, 5))[1] > 150  # then the link
    assert sorted(cdn.requests) == ["att.png", "link.png"]


async def test_blend_takes_two_to_five_images_and_a_shape(harness: Harness, cdn: Cdn) -> None:
    images = {f"image{i}": attachment(cdn, f"b{i}.png", png((60 * i, 30, 30))) for i in range(1, 4)}
    await command(harness, "blend", {**images, "dimensions": "portrait"})
    [job] = queued(harness)
    assert job.kind == JobKind.BLEND and len(job.inputs) == 3 and job.params.aspect == "2:3"
    assert job.prompt == "" and harness.discord.calls[-1].content.startswith("**/blend** (3 images)")


async def test_describe_takes_one_image(harness: Harness, cdn: Cdn) -> None:
    await command(harness, "describe", {"image": attachment(cdn, "d.png", png())})
    [job] = queued(harness)
    assert job.kind == JobKind.DESCRIBE and len(job.inputs) == 1 and len(job.seeds) == 4


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda c: attachment(c, "huge.png", size=5 * MiB), "is 5.0 MiB; the limit is 1.0 MiB"),
        (lambda c: attachment(c, "doc.pdf", b"%PDF-1.4", content_type="application/pdf"), "not an image"),
        (lambda c: attachment(c, "x.png", png(), url="https://example.com/x.png"), "not from `example.com`"),
    ],
)
async def test_what_discord_declares_is_refused_before_any_download(harness: Harness, cdn: Cdn, make, text) -> None:
    await command(harness, "describe", {"image": make(cdn)})
    [answer] = harness.discord.calls  # one private answer, nothing deferred
    assert answer.payload["type"] == 4 and answer.ephemeral and text in answer.content
    assert queued(harness) == [] and cdn.requests == []


@pytest.mark.parametrize(
    ("name", "data", "text"),
    [
        ("notes.png", b"just some text", "not an image Daydream reads"),
        ("slow.png", None, "took longer than 0.5 s"),
        ("moved.png", None, "Discord answered 302"),
        ("endless.png", None, "the limit is 1.0 MiB"),
        ("gone.png", None, "Discord answered 404"),
    ],
)
async def test_what_a_download_reveals_is_refused_privately(harness: Harness, cdn: Cdn, name, data, text) -> None:
    await command(harness, "describe", {"image": attachment(cdn, name, data)})
    assert harness.discord.answers[0].payload["type"] == DEFERRED_THINKING
    assert text in private_texts(harness) and queued(harness) == []
    assert cdn.requests == [name]  # the redirect was not followed


async def test_a_link_to_any_other_host_is_never_requested(harness: Harness, cdn: Cdn) -> None:
    await command(harness, "imagine", {"prompt": "http://127.0.0.1:6379/x.png a red star"})
    assert "Daydream fetches images only from Discord" in private_texts(harness)
    assert harness.discord.answers[0].payload["type"] == 4 and queued(harness) == []


async def test_iw_without_an_image_is_refused(harness: Harness) -> None:
    await command(harness, "imagine", {"prompt": "a red star --iw 2"})
    assert "`--iw` weighs image prompts" in private_texts(harness) and queued(harness) == []


async def test_a_decompression_bomb_is_refused_without_decoding(harness: Harness, cdn: Cdn) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    await command(harness, "describe", {"image": attachment(cdn, "bomb.png", bomb)})
    assert "too many pixels" in private_texts(harness) or "60000×60000" in private_texts(harness)
    assert queued(harness) == []


def described(h: Harness) -> JobRecord:
    """A finished /describe as a worker leaves it: its input stored, its four prompts on the record."""
    from shared.builders import describe_job, with_inputs
    from shared.job import JobState
    from shared.uploads import check_image

    job = describe_job(user_id=700000000000000004, model="embedded")
    [(name, data)] = with_inputs(job, [check_image("d.png", png(), MiB, 4096**2)])
    h.store.images.put_input(job.id, name, data)
    job.state, job.images = JobState.DONE, 1
    job.described = ["a red star on a blue background", "a red star --ar 3:2", "a scarlet star over navy", "x"]
    h.store.save(job)
    return job


async def test_the_buttons_under_describe_imagine_a_prompt_or_describe_again(harness: Harness) -> None:
    from shared.components import describe_components
    from shared.custom_id import Action, encode

    parent = described(harness)
    rows = describe_components(parent.id)
    assert [b.get("label") for b in rows[0]["components"]][:4] == ["1", "2", "3", "4"]
    await harness.click(encode(Action.DESCRIBE_PICK, parent.id, 2), rows)
    [picked] = queued(harness)
    assert picked.kind == JobKind.IMAGINE and picked.prompt == "a red star" and picked.params.aspect == "3:2"
    await harness.click(encode(Action.REROLL, parent.id, 0), rows)
    again = queued(harness)[-1]
    assert again.kind == JobKind.DESCRIBE and again.parent_id == parent.id and again.seeds != parent.seeds
    # The image is read where the first /describe stored it: nothing copied, nothing lost.
    assert [(i.name, i.job) for i in again.inputs] == [("image1", parent.id)]
