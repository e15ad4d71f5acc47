"""/describe on a diffusers model: the captioner the admin configures (DESCRIBE_MODEL,
BLIP through transformers), here a tiny random BLIP built from configs in code and a
tiny random SD pipeline, loaded through the worker's registry as a worker loads them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from shared.builders import describe_job, with_inputs
from shared.errors import ModelUnavailable, Unsupported
from shared.models import check_servable
from shared.settings import Settings
from shared.store import JobStore
from shared.uploads import check_image
from tests.support.tiny_blip import WORDS, build_tiny_blip
from tests.support.tiny_sd import build_tiny_sd
from worker import handlers
from worker.engines.registry import load_engine


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("describe")
    return build_tiny_sd(root), build_tiny_blip(root)


@pytest.fixture(scope="module")
def engine(folders):
    sd, blip = folders
    return load_engine(str(sd), "cpu", Settings(describe_model=str(blip)))


IMAGE = Image.new("RGB", (48, 32), (200, 30, 30))


def test_describe_model_gives_a_diffusers_model_four_captions_per_image(engine) -> None:
    assert "describe" in engine.spec.tasks
    first = engine.describe(IMAGE, [1, 2, 3])
    assert len(first) == 4 and all(isinstance(p, str) and p for p in first)
    assert engine.describe(IMAGE, [1, 2, 3]) == first  # each caption depends on its seed alone...
    other = engine.describe(IMAGE, [7, 8, 9])
    assert other[0] == first[0] and other[1:] != first[1:]  # ...the beam-searched first one on none
    words = {w for p in first[1:] + other[1:] for w in p.split()}
    assert words and words <= set(WORDS)  # words of the captioner's own vocabulary


def test_without_describe_model_describe_is_refused_at_submit(folders) -> None:
    sd, _ = folders
    plain = load_engine(str(sd), "cpu", Settings())
    assert "describe" not in plain.spec.tasks
    with pytest.raises(Unsupported, match="cannot do describe"):
        check_servable(describe_job(1, plain.spec.name), plain.spec, None)
    with pytest.raises(Unsupported, match="DESCRIBE_MODEL"):
        plain.describe(IMAGE, [1])


def test_a_describe_model_that_is_not_there_says_so(folders, tmp_path) -> None:
    sd, _ = folders
    with pytest.raises(ModelUnavailable, match=r"DESCRIBE_MODEL=.*could not be loaded.*BLIP"):
        load_engine(str(sd), "cpu", Settings(describe_model=str(tmp_path / "nothing")))


def test_the_describe_handler_answers_with_the_image_numbered_prompts_and_buttons(engine, settings) -> None:
    store = JobStore(settings)
    job = describe_job(42, engine.spec.name)
    [(name, data)] = with_inputs(job, [check_image("a.png", _png(IMAGE), 1 << 20, 1 << 24)])
    store.images.put_input(job.id, name, data)
    result = handlers.describe(handlers.Context(engine, store, replace(settings)), job, None)
    assert result.images[0].size == (48, 32) and not result.grid
    assert len(result.prompts) == 4 and all(p.endswith("--ar 3:2") for p in result.prompts)  # 48×32
    assert result.content.startswith("1\N{COMBINING ENCLOSING KEYCAP} ") and "<@42>" in result.content
    labels = [b.get("label") or b["emoji"]["name"] for b in result.components[0]["components"]]
    assert labels[:4] == ["1", "2", "3", "4"] and len(labels) == 5


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
