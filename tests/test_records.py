"""Records that survive upgrades: bots and workers of two versions share one
Redis, so a record from the future (more fields, at any level) and one from
the past (fields missing) must both load, run and keep what they carry."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from PIL import Image

from shared import keys
from shared.grid import encode_png
from shared.job import JobKind, JobRecord, JobState, ReplyTarget
from shared.models import EMBEDDED, ModelSpec, spec_from_dict
from shared.params import Params
from shared.settings import Settings
from shared.store import JobStore
from tests.support.fake_engine import FakeEngine
from tests.support.jobs import make_job
from worker import pipeline
from worker.delivery import Delivery
from worker.runtime import WorkerRuntime

FUTURE = {
    "id": "a" * 32,
    "kind": "imagine",
    "prompt": "a red circle",
    "params": {"aspect": "1:1", "seed": 3, "sharpness": 250, "mood": 40},  # params of a newer parser
    "seeds": [3, 4, 5, 6],
    "model": EMBEDDED,
    "lane": "relax",
    "state": "queued",
    "user_id": None,
    "reply": {"channel_id": None, "thread_of": 99},
    "palette": "warm",  # a field this version does not have
    "inputs": [{"name": "a", "role": "image", "crop": [0, 0, 1, 1]}],
}

# A record as the first version wrote it: no lane, no inputs, no params.strength.
PAST = {
    "id": "b" * 32,
    "kind": "imagine",
    "prompt": "a blue square",
    "params": {"aspect": "1:1", "seed": None, "steps": None, "guidance": None},
    "seeds": [1, 2, 3, 4],
    "user_id": None,
    "model": "embedded",
    "state": "queued",
    "attempts": 0,
    "created_at": 1764000000.0,
    "reply": {},
}


def test_a_record_from_the_future_loads_and_keeps_what_it_does_not_know() -> None:
    job = JobRecord.from_json(json.dumps(FUTURE))
    assert job.params.seed == 3 and job.lane == "relax"
    assert job.params.unknown == {"sharpness": 250, "mood": 40}
    assert job.unknown == {"palette": "warm"}
    assert job.reply.unknown == {"thread_of": 99}
    assert job.inputs[0].unknown == {"crop": [0, 0, 1, 1]}
    again = json.loads(dataclasses.replace(job, progress=0.5).to_json())
    assert again["params"]["sharpness"] == 250 and again["palette"] == "warm"
    assert again["reply"]["thread_of"] == 99 and again["inputs"][0]["crop"] == [0, 0, 1, 1]
    assert job.public()["params"]["mood"] == 40


def test_a_record_from_the_past_loads_with_defaults() -> None:
    job = JobRecord.from_json(json.dumps(PAST))
    assert (job.lane, job.inputs, job.params.strength, job.images) == ("fast", [], None, 0)
    assert job.reply == ReplyTarget()
    assert job.unknown == {} and job.params.unknown == {}


def test_a_kind_and_state_from_the_future_stay_text() -> None:
    job = JobRecord.from_json(json.dumps({**FUTURE, "kind": "storyboard", "state": "paused"}))
    assert job.kind == "storyboard" and not isinstance(job.kind, JobKind)
    assert not job.finished  # an unknown state is not a final one
    assert json.loads(job.to_json())["kind"] == "storyboard"


def test_a_model_spec_from_the_future_loads() -> None:
    spec = spec_from_dict(
        {
            "name": "m",
            "family": "flux",
            "tasks": ["text-to-image", "outpaint"],
            "max_prompt_tokens": 512,
            "base_size": 1024,
            "size_multiple": 16,
            "default_steps": 4,
            "default_guidance": 0.0,
            "loras": ["a"],
            "quantization": "fp8",
        }
    )
    assert isinstance(spec, ModelSpec) and spec.unknown == {"quantization": "fp8"}
    assert spec.loras == ("a",)
    assert "outpaint" in spec.tasks and spec.image_size("1:1") == (1024, 1024)


def test_records_round_trip_and_equality_ignores_nothing_known() -> None:
    job = make_job(parent_id="p" * 32, index=2, params=Params(aspect="3:2", strength=0.4))
    assert JobRecord.from_json(job.to_json()) == job
    assert job.state == JobState.QUEUED


# -- both run to completion on a worker ---------------------------------------------
@pytest.fixture
def rt(settings: Settings) -> Iterator[WorkerRuntime]:
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings, store=store, engine=FakeEngine(), delivery=Delivery(settings, store), name="w", device="cpu"
    )
    yield runtime
    runtime.delivery.close()


@pytest.mark.parametrize("raw", [FUTURE, PAST], ids=["future", "past"])
def test_records_of_other_versions_run_to_completion(rt: WorkerRuntime, raw: dict) -> None:
    rt.store.redis.set(keys.job(raw["id"]), json.dumps(raw))
    for ref in raw.get("inputs", []):  # the image prompt the other version stored beside it
        rt.store.images.put_input(raw["id"], ref["name"], encode_png(Image.new("RGB", (64, 64), (200, 30, 30))))
    assert pipeline.run(rt, raw["id"], 0) == pipeline.DONE
    stored = json.loads(rt.store.redis.get(keys.job(raw["id"])))
    assert stored["state"] == "done" and stored["images"] == 4
    assert set(raw) <= set(stored)  # nothing the other version wrote was dropped on the way
    if raw is FUTURE:
        assert stored["params"]["sharpness"] == 250 and stored["palette"] == FUTURE["palette"]
