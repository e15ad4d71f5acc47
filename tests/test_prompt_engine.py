"""Each prompt parameter changes what the engine receives, and where an image
property can be measured it is measured: a real worker (its runtime and
pipeline, against the real redis-server) runs jobs resolved from prompts
(shared/resolution.py) on the embedded model.

Measured on the embedded model (64×64, 8 steps, seeds 11–14 and the next ones;
2-core CPU, 2026-12): mean pairwise tile distance 0.055 at --chaos 0, 0.073 at
--chaos 100; wrap jump / inside jump 1.16 plain, 0.92 with --tile; distance to
the full run 0.049 at --stop 30, 0.024 at --stop 70; --weird 2000 moves the
images 0.062 from plain. So:
* --chaos 100 spreads the four tiles apart (mean pairwise distance) more than --chaos 0;
* --tile makes the left/right and top/bottom edges continue each other: the jump
  across the wrap is no larger than between neighbouring columns inside;
* --stop 30 is less finished than --stop 70 (further from the full run);
* --weird changes the images, the same way every time.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from shared.grid import decode_image
from shared.preferences import ChannelDefaults, UserPrefs
from shared.resolution import resolve
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import EMBEDDED_SPEC
from worker import pipeline
from worker.delivery import Delivery
from worker.engines.base import Request
from worker.engines.embedded import EmbeddedEngine
from worker.runtime import WorkerRuntime

# Few steps: the suite shares two cores; every property below holds at 8 steps as at 20.
STEPS = 8
CIRCLE = f"a red circle on a blue background --seed 11 --steps {STEPS}"


class Recording:
    """The real embedded engine, noting each request it gets."""

    def __init__(self, engine: EmbeddedEngine) -> None:
        self.engine = engine
        self.spec = engine.spec
        self.requests: list[Request] = []

    def count_tokens(self, prompt: str) -> int:
        return self.engine.count_tokens(prompt)

    def tokenizer_json(self) -> str | None:
        return None

    def generate(self, req, progress=None):
        self.requests.append(req)
        return self.engine.generate(req, progress)


@pytest.fixture(scope="module")
def embedded() -> EmbeddedEngine:
    return EmbeddedEngine()


@pytest.fixture
def rt(settings: Settings, embedded: EmbeddedEngine) -> Iterator[WorkerRuntime]:
    settings = dataclasses.replace(settings, progress_interval_s=60.0)
    store = JobStore(settings)
    runtime = WorkerRuntime(
        settings=settings,
        store=store,
        engine=Recording(embedded),
        delivery=Delivery(settings, store),
        name="w-flags",
        device="cpu",
    )
    yield runtime
    runtime.delivery.close()
    store.redis.close()


def run_prompt(rt: WorkerRuntime, text: str) -> list[list[np.ndarray]]:
    """Resolve `text` as /imagine would, run each job through the worker's pipeline,
    and return each job's four images as float arrays in [0, 1]."""
    jobs = resolve(
        text,
        user_id=5,
        prefs=UserPrefs(),
        channel=ChannelDefaults(),
        default_model="embedded",
        lane_of=lambda lane: lane or "fast",
        spec_of=lambda name: EMBEDDED_SPEC,
    ).jobs
    out = []
    for job in jobs:
        rt.store.submit(job, check=False)
        assert pipeline.run(rt, job.id, 0) == "done", rt.store.get(job.id).error
        images = [decode_image(rt.store.images.image(job.id, i)) for i in range(1, 5)]
        out.append([np.asarray(im.convert("RGB"), dtype=np.float32) / 255 for im in images])
    return out


def spread(tiles: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(tiles, 2)]))


def test_each_parameter_reaches_the_engine(rt: WorkerRuntime) -> None:
    engine: Recording = rt.engine  # type: ignore[assignment]
    run_prompt(rt, "a red circle::2 a blue background --ar 3:2 --no text --q .25 --s 400 --seed 11 --c 30 --w 200")
    [req] = engine.requests
    assert (req.width, req.height) == (80, 48)  # 3:2 at about 64² pixels, multiples of 16
    assert [(p.text, p.weight) for p in req.prompts] == [
        ("a red circle", 2.0),
        ("a blue background", 1.0),
        ("text", -0.5),
    ]
    assert req.negative_prompt == "text"
    assert (req.steps, req.guidance) == (3, 6.0)  # the default 12 steps × .25; 4 × (0.5 + 0.5·√4)
    assert req.seeds == (11, 12, 13, 14)
    assert (req.chaos, req.weird, req.tile, req.stop) == (30, 200, False, None)
    run_prompt(rt, "a red circle --tile --stop 40 --steps 4 --cfg 3")
    req = engine.requests[-1]
    assert (req.tile, req.stop, req.steps, req.guidance) == (True, 0.4, 4, 3.0)


def test_permutations_run_as_two_jobs_with_their_prompts(rt: WorkerRuntime) -> None:
    engine: Recording = rt.engine  # type: ignore[assignment]
    red, blue = run_prompt(rt, f"a {{red, blue}} circle on a white background --seed 11 --steps {STEPS}")
    assert [r.prompt for r in engine.requests] == [
        "a red circle on a white background",
        "a blue circle on a white background",
    ]
    # The measured colour follows each prompt: more red than blue in the first, the other way in the second.
    red_mean, blue_mean = np.mean(red, axis=(0, 1, 2)), np.mean(blue, axis=(0, 1, 2))
    assert red_mean[0] - red_mean[2] > blue_mean[0] - blue_mean[2]


def test_more_chaos_spreads_the_four_images_apart(rt: WorkerRuntime) -> None:
    calm = [spread(t) for t in run_prompt(rt, f"{CIRCLE} --r 2 --c 0")]
    wild = [spread(t) for t in run_prompt(rt, f"{CIRCLE} --r 2 --c 100")]
    assert np.mean(wild) > 1.2 * np.mean(calm), (calm, wild)


def wrap_ratio(tile: np.ndarray) -> float:
    """The jump across the wrap (last column to first, last row to first) over the
    mean jump between neighbouring columns and rows inside: ≈1 when the edges continue."""
    across = (np.abs(tile[:, 0] - tile[:, -1]).mean() + np.abs(tile[0] - tile[-1]).mean()) / 2
    inside = (np.abs(np.diff(tile, axis=1)).mean() + np.abs(np.diff(tile, axis=0)).mean()) / 2
    return float(across / inside)


def test_tile_makes_the_edges_continue_each_other(rt: WorkerRuntime) -> None:
    prompts = ("a green star on a yellow background", "a red circle on a blue background")
    plain = [wrap_ratio(t) for p in prompts for t in run_prompt(rt, f"{p} --seed 11 --steps {STEPS}")[0]]
    tiled = [wrap_ratio(t) for p in prompts for t in run_prompt(rt, f"{p} --seed 11 --steps {STEPS} --tile")[0]]
    assert np.mean(tiled) < 1.0 and np.mean(tiled) < 0.85 * np.mean(plain), (plain, tiled)


def test_an_earlier_stop_is_less_finished(rt: WorkerRuntime) -> None:
    prompt = CIRCLE
    [full] = run_prompt(rt, prompt)
    [early] = run_prompt(rt, prompt + " --stop 30")
    [late] = run_prompt(rt, prompt + " --stop 70")

    def distance(a: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, full, strict=True)]))

    assert distance(early) > distance(late) > 0


def test_weird_twists_the_images_reproducibly(rt: WorkerRuntime) -> None:
    prompt = CIRCLE
    [plain] = run_prompt(rt, prompt)
    [weird] = run_prompt(rt, prompt + " --weird 2000")
    [again] = run_prompt(rt, prompt + " --weird 2000")
    moved = np.mean([np.abs(a - b).mean() for a, b in zip(plain, weird, strict=True)])
    assert moved > 0.02
    assert all(np.array_equal(a, b) for a, b in zip(weird, again, strict=True))
