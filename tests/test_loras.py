"""LoRAs and negative prompts at submit: `--lora name:0.8` and `<lora:name:0.8>`
read from the prompt (shared/loras.py), kept on the record and its children,
and refused against the real store (real Redis) when the model a live worker
announces has no such LoRA, has it only for another architecture, or reads
no negative prompt."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from shared import keys
from shared.builders import child_job, imagine_job
from shared.custom_id import Action
from shared.errors import InvalidRequest, UnknownLora, Unsupported
from shared.job import JobRecord, JobState
from shared.loras import LoraRef, extract_loras
from shared.models import ModelSpec, Task
from shared.params import parse_prompt
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker

FLUX = ModelSpec(
    name="flux-schnell",
    family="flux-schnell",
    title="FLUX.1 [schnell]",
    tasks=frozenset({Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.UPSCALE}),
    max_prompt_tokens=256,
    base_size=1024,
    size_multiple=16,
    default_steps=4,
    default_guidance=0.0,
    negative_prompt=False,
    loras=("pixel-art", "ink"),
    other_loras={"film-grain": "sdxl"},
)
SDXL_TURBO = dataclasses.replace(
    FLUX, name="sdxl-turbo", family="sdxl-turbo", title="SDXL-Turbo", negative_prompt=True, loras=(), other_loras={}
)


def test_both_forms_are_read_and_taken_out_of_the_prompt() -> None:
    parsed = parse_prompt("a fox <lora:Pixel-Art:0.7> in snow --ar 3:2 --lora ink --seed 3")
    assert parsed.prompt == "a fox in snow"
    assert parsed.loras == (LoraRef("pixel-art", 0.7), LoraRef("ink", 1.0))
    assert (parsed.params.aspect, parsed.params.seed) == ("3:2", 3)
    assert parse_prompt("a fox \u2014lora ink:-0.5").loras == (LoraRef("ink", -0.5),)  # a phone's em dash
    assert extract_loras("a plain  prompt\nwith lines") == ("a plain  prompt\nwith lines", [])  # untouched


@pytest.mark.parametrize(
    ("prompt", "said"),
    [
        ("a fox --lora", "`--lora` needs a LoRA's name."),
        ("a fox --lora --ar 3:2", "`--lora` needs a LoRA's name."),
        ("a fox --lora ink:strong", "The weight in `--lora ink:strong` must be a number, e.g. `ink:0.8`."),
        ("a fox <lora:ink:3>", "The weight in `<lora:ink:3>` must be between -2 and 2, got 3."),
        ("a fox <lora:ink.v2>", "`<lora:ink.v2>` does not name a LoRA."),
        ("a fox --lora ink --lora ink:0.5", "The LoRA `ink` is named twice; name each LoRA once, with one weight."),
        ("a --lora a --lora b --lora c --lora d --lora e", "A prompt may use at most 4 LoRAs; this one names 5."),
        ("<lora:ink:0.5>", "Your prompt is empty."),
    ],
)
def test_a_bad_reference_is_a_clear_error(prompt: str, said: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_prompt(prompt)
    assert str(err.value).startswith(said)


def test_the_record_keeps_its_loras_and_its_children_inherit_them(settings: Settings) -> None:
    parent = imagine_job(parse_prompt("a fox --lora ink:0.6"), user_id=1, model="flux-schnell")
    assert parent.loras == [LoraRef("ink", 0.6)]
    assert parent.public()["loras"] == [{"name": "ink", "weight": 0.6}]
    assert JobRecord.from_json(parent.to_json()).loras == [LoraRef("ink", 0.6)]
    parent = dataclasses.replace(parent, state=JobState.DONE, images=4)
    for action in (Action.UPSCALE, Action.VARY, Action.REROLL):
        assert child_job(parent, action, 2, 1, settings).loras == [LoraRef("ink", 0.6)]
    # A record of an earlier version (no `loras`) reads as one without LoRAs.
    old = json.loads(parent.to_json())
    del old["loras"]
    assert JobRecord.from_json(json.dumps(old)).loras == []


@pytest.fixture
def store(settings: Settings) -> JobStore:
    store = JobStore(settings)
    announce_worker(store, "w-flux", spec=FLUX)
    announce_worker(store, "w-turbo", spec=SDXL_TURBO)
    return store


def submit(store: JobStore, prompt: str, model: str = "flux-schnell") -> JobRecord:
    return store.submit(imagine_job(parse_prompt(prompt), user_id=7, model=model))


def assert_nothing_queued(store: JobStore) -> None:
    assert store.dispatch.depth() == 0 and store.redis.zcard(keys.QUEUED) == 0


def test_a_lora_the_model_has_is_accepted(store: JobStore) -> None:
    job = submit(store, "a fox <lora:pixel-art:0.8> --lora ink")
    assert store.get(job.id).loras == [LoraRef("pixel-art", 0.8), LoraRef("ink")]


def test_an_unknown_lora_is_refused_at_submit_with_the_models_loras(store: JobStore) -> None:
    with pytest.raises(UnknownLora) as err:
        submit(store, "a fox --lora watercolour")
    assert str(err.value) == "The model `flux-schnell` has no LoRA `watercolour`. Its LoRAs: `pixel-art`, `ink`."
    assert err.value.to_dict()["available"] == ["pixel-art", "ink"] and err.value.exit_code == 2
    with pytest.raises(UnknownLora, match=re.escape("`sdxl-turbo` has no LoRA `ink`. It has no LoRAs.")):
        submit(store, "a fox --lora ink", model="sdxl-turbo")
    assert_nothing_queued(store)


def test_a_lora_for_another_architecture_is_refused_saying_so(store: JobStore) -> None:
    with pytest.raises(UnknownLora) as err:
        submit(store, "a fox <lora:film-grain>")
    assert str(err.value) == (
        "The LoRA `film-grain` is for `sdxl` models; `flux-schnell` is a `flux-schnell` model and cannot use it. "
        "Pick a model it was trained for, or another LoRA."
    )
    assert_nothing_queued(store)


def test_no_negative_prompt_for_a_family_that_reads_none(store: JobStore) -> None:
    with pytest.raises(Unsupported) as err:
        submit(store, "a fox --no snow")
    assert str(err.value) == (
        "The model `flux-schnell` (FLUX.1 [schnell]) does not read a negative prompt, so `--no` would do nothing. "
        "Remove `--no …` and describe what you want instead."
    )
    assert_nothing_queued(store)


def test_a_negative_prompt_needs_guidance_where_guidance_is_off_by_default(store: JobStore) -> None:
    with pytest.raises(Unsupported) as err:
        submit(store, "a fox --no snow", model="sdxl-turbo")
    assert str(err.value) == (
        "The model `sdxl-turbo` (SDXL-Turbo) reads `--no` only with guidance above 1, and this job's is 0. "
        "Add `--cfg 2` (slower), or remove `--no …`."
    )
    assert submit(store, "a fox --no snow --cfg 2", model="sdxl-turbo").negative_prompt == "snow"


def test_a_spec_of_an_earlier_worker_reads_negative_prompts_as_before(store: JobStore) -> None:
    old = {k: v for k, v in json.loads(store.redis.get(keys.model_spec("sdxl-turbo"))).items()}
    for field in ("negative_prompt", "cfg_above", "loras", "other_loras", "lanes", "title"):
        old.pop(field)
    old["default_guidance"] = 7.0
    store.redis.set(keys.model_spec("sdxl-turbo"), json.dumps(old))
    assert submit(store, "a fox --no snow", model="sdxl-turbo").negative_prompt == "snow"


def test_a_lane_the_model_is_not_served_in_is_refused(store: JobStore) -> None:
    announce_worker(store, "w-flux", spec=dataclasses.replace(FLUX, lanes=("turbo",)))
    with pytest.raises(Unsupported, match="served in the `turbo` lane"):
        submit(store, "a fox")  # new jobs go to the `fast` lane
