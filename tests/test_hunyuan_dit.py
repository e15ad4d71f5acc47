"""The family with a Chinese text encoder: Hunyuan-DiT as a tiny random
pipeline (tests/support/tiny_hunyuan.py, its vocabulary written there),
through the real diffusers engine and the worker's pipeline against the real
redis-server. A Chinese prompt is read character by character, counted the
same by the worker and by the bot (the tokenizer it publishes), sampled with
one seed per image, and changes the image when its characters change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import tokens
from shared.errors import PromptTooLong, Unsupported
from shared.fleet import ModelEntry
from shared.job import JobKind, JobState
from shared.models import Task, check_servable
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import make_job
from tests.support.tiny_hunyuan import build_tiny_hunyuan_dit
from worker import pipeline
from worker.delivery import Delivery
from worker.engines.base import Request, WeightedPrompt
from worker.engines.diffusers_engine import DiffusersEngine
from worker.runtime import WorkerRuntime

CHINESE = "夜晚的城市天际线"  # a city skyline at night
OTHER = "红色圆形蓝背景"  # a red circle, blue background


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_tiny_hunyuan_dit(tmp_path_factory.mktemp("hunyuan"))


@pytest.fixture(scope="module")
def engine(folder: Path) -> DiffusersEngine:
    # A small 1:1 size, so that a worker's job samples quickly on a CPU (the family's is 1024).
    return DiffusersEngine(ModelEntry(name="hunyuan", source=str(folder), size=64))


def request(prompt: str, seeds: list[int]) -> Request:
    return Request.text(prompt, seeds, 32, 32, steps=2)


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(im, dtype=np.int16) for im in images]


def test_it_loads_as_hunyuan_dit_with_its_defaults_and_no_image_to_image(engine: DiffusersEngine) -> None:
    spec = engine.spec
    assert (engine.arch, spec.family, spec.title) == ("hunyuan", "hunyuan-dit", "Hunyuan-DiT")
    assert (spec.default_steps, spec.default_guidance, spec.negative_prompt) == (50, 5.0, True)
    assert spec.max_prompt_tokens == 77 and spec.size_multiple == 16
    assert spec.tasks == frozenset({Task.TEXT_TO_IMAGE, Task.TILE})  # --tile wraps every convolution
    variation = make_job(kind=JobKind.VARIATION, parent_id="p" * 32, index=1, model=spec.name)
    with pytest.raises(Unsupported, match="cannot do image-to-image"):
        check_servable(variation, spec, engine.count_tokens)


def test_a_chinese_prompt_is_read_character_by_character_by_the_worker_and_the_bot(engine: DiffusersEngine) -> None:
    ids = engine.tokenizer(CHINESE).input_ids
    assert engine.tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", *CHINESE, "[SEP]"]
    assert engine.tokenizer.unk_token_id not in ids
    published = engine.tokenizer_json()
    assert published is not None
    bot_count = tokens.build(published)
    assert bot_count is not None and bot_count(CHINESE) == engine.count_tokens(CHINESE) == len(CHINESE) + 2


def test_a_chinese_prompt_samples_one_image_per_seed_and_its_characters_matter(engine: DiffusersEngine) -> None:
    first = pixels(engine.generate(request(CHINESE, [1, 2, 3, 4])))
    assert len(first) == 4 and all(a.shape == (32, 32, 3) for a in first)
    assert not np.array_equal(first[0], first[1])  # one generator per image
    again = pixels(engine.generate(request(CHINESE, [1, 9])))
    assert np.array_equal(first[0], again[0])  # image 1 depends on its seed alone
    other = pixels(engine.generate(request(OTHER, [1])))
    assert np.abs(first[0] - other[0]).mean() > 0.5  # the encoder read different characters


@pytest.fixture
def rt(settings: Settings, engine: DiffusersEngine) -> Iterator[WorkerRuntime]:
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=engine, delivery=Delivery(settings, store), name="w-hy", device="cpu"
    )
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def test_a_chinese_imagine_job_runs_through_the_worker(rt: WorkerRuntime) -> None:
    job = rt.store.submit(
        make_job(prompt=CHINESE, model=rt.spec.name, params=Params(steps=2), seeds=[5, 6, 7, 8]), check=False
    )
    assert pipeline.run(rt, job.id, 0) == pipeline.DONE
    done = rt.store.get(job.id)
    assert done.state == JobState.DONE and done.images == 4 and done.width == done.height == 64
    assert rt.store.images.grid(job.id)


def test_the_prompt_limit_is_the_bilingual_encoders(engine: DiffusersEngine) -> None:
    long_prompt = CHINESE * 10  # 80 characters, 82 tokens
    job = make_job(prompt=long_prompt, model=engine.spec.name)
    with pytest.raises(PromptTooLong, match="77"):
        check_servable(job, engine.spec, engine.count_tokens)


def test_chaos_weird_stop_and_weighted_parts_change_the_images_reproducibly(engine: DiffusersEngine) -> None:
    """Its two text encoders are each encoded through the wrapped encode_prompt (each with
    its own offsets); its DDPM scheduler gives the denoised estimate --stop returns."""
    assert engine.spec.unsupported == ()
    plain = pixels(engine.generate(request(CHINESE, [1, 2, 3, 4])))
    both = (WeightedPrompt(CHINESE, 1.0), WeightedPrompt(OTHER, 2.0))
    for change in (dict(chaos=100), dict(weird=3000), dict(stop=0.5), dict(prompts=both)):
        changed = pixels(engine.generate(replace(request(CHINESE, [1, 2, 3, 4]), **change)))
        again = pixels(engine.generate(replace(request(CHINESE, [1, 2, 3, 4]), **change)))
        assert all(np.array_equal(x, y) for x, y in zip(changed, again, strict=True)), change
        assert np.mean([np.abs(x - y).mean() for x, y in zip(changed, plain, strict=True)]) > 0.0, change
