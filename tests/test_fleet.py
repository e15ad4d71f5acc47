"""The fleet file (models.toml): entries read with their defaults, lanes and
LoRAs; every mistake a ConfigError naming the file and the entry; and a real
`daydream worker --model NAME` serving one entry — FLUX.1-shaped, with a
LoRA — to `daydream imagine` through the real queue."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daydream.redis_server import RedisServer
from shared.errors import FleetFileError
from shared.fleet import ModelEntry, load_fleet, resolve
from shared.settings import Settings
from shared.store import JobStore
from tests.support import tiny_families
from tests.support.workers import ROOT, start_worker, stop_worker, worker_env

FLEET = """
[models.flux-schnell]
source = "black-forest-labs/FLUX.1-schnell"
lanes = ["turbo", "fast"]
loras = ["pixel-art"]

[models.sdxl]
source = "./checkpoints/sdxl"
family = "sdxl"
steps = 30
guidance = 6
size = 1024
loras = { ink = "./loras/ink.safetensors" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_entries_are_read_with_their_defaults_lanes_and_loras(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, FLEET))
    assert list(fleet) == ["flux-schnell", "sdxl"]
    flux, sdxl = fleet["flux-schnell"], fleet["sdxl"]
    assert (flux.source, flux.family, flux.lanes, flux.loras) == (
        "black-forest-labs/FLUX.1-schnell",
        None,
        ("turbo", "fast"),
        ("pixel-art",),
    )
    # Relative paths are the file's folder's; a whole-number guidance is a number.
    assert sdxl.source == str(tmp_path / "checkpoints" / "sdxl")
    assert (sdxl.family, sdxl.steps, sdxl.guidance, sdxl.size) == ("sdxl", 30, 6.0, 1024)
    assert sdxl.lora_files == {"ink": str(tmp_path / "loras" / "ink.safetensors")}


def test_an_inpainting_variant_is_read_relative_to_the_file(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, "[models.sd]\nsource = './sd15'\ninpaint = './sd15-inpainting'"))
    assert fleet["sd"].inpaint == str(tmp_path / "sd15-inpainting")
    assert load_fleet(write(tmp_path, "[models.sd]\nsource = 'x'"))["sd"].inpaint is None


def test_a_worker_resolves_its_model_by_name_or_from_model(tmp_path: Path) -> None:
    settings = Settings(models_file=str(write(tmp_path, FLEET)), model="sdxl")
    assert resolve(settings).name == "sdxl"
    assert resolve(settings, "flux-schnell").lanes == ("turbo", "fast")
    # A folder or hub id that the file does not name is still one model, as without a file.
    assert resolve(settings, "stabilityai/sdxl-turbo") == ModelEntry(name="sdxl-turbo", source="stabilityai/sdxl-turbo")
    with pytest.raises(FleetFileError) as err:
        resolve(settings, "flux-dev")
    assert str(err.value) == f"{tmp_path / 'models.toml'} has no model `flux-dev`; it has `flux-schnell`, `sdxl`."
    assert (err.value.file, err.value.entry, err.value.variable) == (
        str(tmp_path / "models.toml"),
        "flux-dev",
        "MODELS_FILE",
    )
    # No file at all: MODEL is the model, as before.
    assert resolve(Settings(model="embedded")).source == "embedded"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[models.a\nsource = 1", "is not valid TOML"),
        ("title = 'x'", "unknown top-level key `title`; models go in [models.NAME]."),
        ("[other]", "unknown top-level key `other`"),
        ("", "names no models; add a [models.NAME] table with a `source`."),
        ("[models.Big]\nsource = 'x'", "[models.Big]: a model's name is lower-case letters"),
        ("[models.a]\nfamily = 'sdxl'", "[models.a]: needs `source`: a diffusers folder or a hub id"),
        ("[models.a]\nsource = 'x'\nstesp = 4", "[models.a]: unknown key `stesp`; an entry takes source, family,"),
        ("[models.a]\nsource = 'x'\nfamily = 'flux'", "[models.a]: unknown family `flux`; Daydream knows `sd`,"),
        ("[models.a]\nsource = 'x'\nsteps = 0", "[models.a]: `steps` must be a whole number from 1 to 100, got 0."),
        ("[models.a]\nsource = 'x'\nguidance = 'high'", "`guidance` must be a number from 0 to 30, got 'high'."),
        ("[models.a]\nsource = 'x'\nsize = 1000.5", "`size` must be a whole number of pixels, a multiple of 8"),
        ("[models.a]\nsource = 'x'\nlanes = ['slow']", "`lanes` must list some of turbo, fast, relax, got ['slow']."),
        ("[models.a]\nsource = 'x'\nlanes = []", "`lanes` must list some of turbo, fast, relax, got []."),
        ("[models.a]\nsource = 'x'\nloras = 'ink'", "`loras` must be a list of names in LORA_DIR, or a table"),
        ("[models.a]\nsource = 'x'\nloras = ['ink.v2']", "`loras`: `ink.v2` is not a LoRA name"),
        ("[models.a]\nsource = 'x'\ninpaint = 1", "`inpaint` is the inpainting variant's folder or hub id"),
    ],
)
def test_every_mistake_names_the_file_and_the_entry(tmp_path: Path, text: str, said: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FleetFileError) as err:
        load_fleet(path)
    assert str(err.value).startswith(str(path)) and said in str(err.value)
    assert err.value.exit_code == 2


def test_a_models_file_that_is_not_there_is_said_so(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match=r"MODELS_FILE=.*: there is no such file\."):
        resolve(Settings(models_file=str(tmp_path / "nope.toml")))


# -- a real worker serving a fleet entry --------------------------------------------------
@pytest.fixture(scope="module")
def flux_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, dict[str, str]]]:
    root = tmp_path_factory.mktemp("fleet")
    model = tiny_families.build_tiny_flux(root)
    tiny_families.make_lora(model, root / "loras" / "flux" / "pixel-art.safetensors")
    tiny_families.make_lora(tiny_families.build_tiny_sd3(root), root / "loras" / "sd3" / "grain.safetensors")
    fleet = root / "models.toml"
    fleet.write_text(f'[models.schnell]\nsource = "{model}"\nfamily = "flux-schnell"\nsize = 32\nsteps = 2\n')
    env = {"MODELS_FILE": str(fleet), "LORA_DIR": str(root / "loras"), "CPU_THREADS": "1"}
    with RedisServer() as server:
        proc = start_worker(server.url, "flux-worker", "--model", "schnell", **env)
        yield server, env
        stop_worker(proc)


def imagine(server: RedisServer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daydream", "imagine", *args, "--json", "--worker-timeout", "5"],
        cwd=ROOT,
        env=worker_env(server.url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_worker_announces_its_entry_with_its_family_and_loras(flux_fleet) -> None:
    server, _ = flux_fleet
    spec = JobStore(Settings(redis_url=server.url)).dispatch.served_specs()["schnell"]
    assert spec is not None
    assert (spec.family, spec.title, spec.negative_prompt, spec.base_size, spec.default_steps) == (
        "flux-schnell",
        "FLUX.1 [schnell]",
        False,
        32,
        2,
    )
    assert spec.loras == ("pixel-art",) and spec.other_loras == {"grain": "sd3"}


def test_imagine_with_a_lora_on_the_fleets_model(flux_fleet, tmp_path: Path) -> None:
    server, env = flux_fleet
    grids = {}
    for run, prompt in enumerate(["a red circle <lora:pixel-art:0.8>", "a red circle", "a red circle"]):
        out = tmp_path / f"grid{run}.png"
        r = imagine(server, env, f"{prompt} --seed 5", "--model", "schnell", "-o", str(out))
        assert r.returncode == 0, r.stderr
        record = json.loads(r.stdout.strip().splitlines()[-1])
        assert (record["model"], record["state"]) == ("schnell", "done")
        grids[run] = (record["loras"], np.asarray(Image.open(out).convert("RGB"), dtype=np.int16))
    assert grids[0][0] == [{"name": "pixel-art", "weight": 0.8}] and grids[1][0] == []
    assert grids[0][1].shape == (64, 64, 3)  # a 2×2 grid of 32×32 images
    # The LoRA changed the job it was named in, and only that one.
    assert np.abs(grids[0][1] - grids[1][1]).mean() > 0.1
    assert np.array_equal(grids[1][1], grids[2][1])


@pytest.mark.parametrize(
    ("prompt", "said"),
    [
        ("a red circle --no blue", "`schnell` (FLUX.1 [schnell]) does not read a negative prompt"),
        ("a red circle --lora grain", "The LoRA `grain` is for `sd3` models; `schnell` is a `flux-schnell` model"),
        ("a red circle --lora ink", "The model `schnell` has no LoRA `ink`. Its LoRAs: `pixel-art`."),
    ],
)
def test_what_the_model_cannot_do_is_refused_before_queueing(flux_fleet, prompt: str, said: str) -> None:
    server, env = flux_fleet
    r = imagine(server, env, prompt, "--model", "schnell")
    assert r.returncode == 2 and said in r.stderr, r.stderr
    assert JobStore(Settings(redis_url=server.url)).dispatch.depth("schnell") == 0


def test_daydream_models_lists_the_file_and_what_is_served(flux_fleet) -> None:
    server, env = flux_fleet
    r = subprocess.run(
        [sys.executable, "-m", "daydream", "models"],
        cwd=ROOT,
        env=worker_env(server.url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert f"fleet file: {env['MODELS_FILE']}" in r.stdout
    assert "schnell" in r.stdout and "FLUX.1 [schnell]" in r.stdout and "LoRAs: pixel-art" in r.stdout
