"""The fleet file (`models.toml`): the models a Daydream installation serves.

    [models.flux-schnell]
    source = "black-forest-labs/FLUX.1-schnell"   # a hub id, or a diffusers folder
    family = "flux-schnell"                         # optional: read from the checkpoint and its name
    steps = 4                                       # optional: the family's defaults otherwise
    guidance = 0.0
    size = 1024                                     # optional: the side of a 1:1 image
    lanes = ["turbo", "fast"]                       # optional: every lane
    loras = ["pixel-art"]                           # optional: every LoRA in LORA_DIR/<architecture>/

`loras` may also be a table of name = "path/to/file.safetensors". Relative
paths are read from the file's folder. A worker loads one entry
(`daydream worker --model flux-schnell`, default MODEL); the entry's name is
what it announces and what jobs name. Without a fleet file, MODEL is one
model's folder or hub id, as before. Anything the file gets wrong is a
`FleetFileError` naming the file and the entry."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import FleetFileError
from shared.families import FAMILIES, names
from shared.job import LANES
from shared.loras import LORA_NAME
from shared.models import EMBEDDED, model_name
from shared.params import MAX_GUIDANCE, MAX_STEPS, MIN_GUIDANCE, MIN_STEPS
from shared.settings import Settings

DEFAULT_FILE = "models.toml"
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
KEYS = ("source", "family", "steps", "guidance", "size", "lanes", "loras", "inpaint")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # a diffusers folder, a hub id, or `embedded`
    family: str | None = None  # None: from the checkpoint (shared/families.py)
    steps: int | None = None
    guidance: float | None = None
    size: int | None = None
    lanes: tuple[str, ...] = ()  # empty: every lane
    # None: every LoRA in LORA_DIR/<architecture>/; names: those of them; paths: these files.
    loras: tuple[str, ...] | None = None
    lora_files: dict[str, str] = field(default_factory=dict)
    file: str | None = None  # the fleet file it came from
    inpaint: str | None = None  # its inpainting variant (folder or hub id), for region edits


def fleet_path(settings: Settings) -> Path | None:
    """MODELS_FILE, or ./models.toml when there is one; None: no fleet file."""
    if settings.models_file:
        path = Path(settings.models_file).expanduser()
        if not path.is_file():
            raise FleetFileError(str(path), None, f"MODELS_FILE={settings.models_file}: there is no such file.")
        return path
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def load_fleet(path: Path) -> dict[str, ModelEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(str(path), None, f"{path} is not valid TOML: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetFileError(str(path), None, f"{path} cannot be read: {exc}.") from None
    extra = sorted(set(data) - {"models"})
    if extra:
        raise FleetFileError(
            str(path), None, f"{path}: unknown top-level key `{extra[0]}`; models go in [models.NAME]."
        )
    models = data.get("models", {})
    if not isinstance(models, dict) or not models:
        raise FleetFileError(str(path), None, f"{path} names no models; add a [models.NAME] table with a `source`.")
    return {name: _entry(path, name, body) for name, body in models.items()}


def _entry(path: Path, name: str, body: Any) -> ModelEntry:
    def bad(message: str) -> FleetFileError:
        return FleetFileError(str(path), name, f"{path}, [models.{name}]: {message}")

    if not MODEL_NAME.match(name):
        raise bad("a model's name is lower-case letters, digits, '.', '_' or '-' (it names queues and jobs).")
    if not isinstance(body, dict):
        raise bad("must be a table with at least `source`.")
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise bad(f"unknown key `{unknown[0]}`; an entry takes {', '.join(KEYS)}.")
    source = body.get("source")
    if not isinstance(source, str) or not source.strip():
        raise bad('needs `source`: a diffusers folder or a hub id, e.g. source = "stabilityai/sdxl-turbo".')
    family = body.get("family")
    if family is not None and family not in FAMILIES:
        raise bad(f"unknown family `{family}`; Daydream knows {names()}.")
    steps, guidance, size = body.get("steps"), body.get("guidance"), body.get("size")
    if steps is not None and not (isinstance(steps, int) and MIN_STEPS <= steps <= MAX_STEPS):
        raise bad(f"`steps` must be a whole number from {MIN_STEPS} to {MAX_STEPS}, got {steps!r}.")
    if guidance is not None and not (
        isinstance(guidance, int | float)
        and not isinstance(guidance, bool)
        and MIN_GUIDANCE <= guidance <= MAX_GUIDANCE
    ):
        raise bad(f"`guidance` must be a number from {MIN_GUIDANCE:g} to {MAX_GUIDANCE:g}, got {guidance!r}.")
    if size is not None and not (isinstance(size, int) and size > 0 and size % 8 == 0):
        raise bad(f"`size` must be a whole number of pixels, a multiple of 8 (e.g. 1024), got {size!r}.")
    lanes = body.get("lanes", [])
    if not isinstance(lanes, list) or (not lanes and "lanes" in body) or any(lane not in LANES for lane in lanes):
        raise bad(f"`lanes` must list some of {', '.join(LANES)}, got {lanes!r}.")
    loras, lora_files = _loras(path, body.get("loras"), bad)
    inpaint = body.get("inpaint")
    if inpaint is not None and (not isinstance(inpaint, str) or not inpaint.strip()):
        raise bad('`inpaint` is the inpainting variant\'s folder or hub id, e.g. inpaint = "./sd15-inpainting".')
    return ModelEntry(
        name=name,
        source=_resolve(path, source.strip()),
        family=family,
        steps=steps,
        guidance=None if guidance is None else float(guidance),
        size=size,
        lanes=tuple(lanes),
        loras=loras,
        lora_files=lora_files,
        file=str(path),
        inpaint=None if inpaint is None else _resolve(path, inpaint.strip()),
    )


def _loras(path: Path, raw: Any, bad: Any) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    if raw is None:
        return None, {}
    if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
        wrong = [n for n in raw if not LORA_NAME.match(n)]
        if wrong:
            raise bad(f"`loras`: `{wrong[0]}` is not a LoRA name (lower-case letters, digits, '_', '-').")
        return tuple(raw), {}
    if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        wrong = [n for n in raw if not LORA_NAME.match(n)]
        if wrong:
            raise bad(f"`loras`: `{wrong[0]}` is not a LoRA name (lower-case letters, digits, '_', '-').")
        files = {n: _resolve(path, p) for n, p in raw.items()}
        return tuple(files), files
    raise bad('`loras` must be a list of names in LORA_DIR, or a table of name = "file.safetensors".')


def _resolve(path: Path, value: str) -> str:
    """A relative path in the file is relative to the file's folder; a hub id stays as it is."""
    if value.startswith(("./", "../")):
        return str((path.parent / value).resolve())
    return os.path.expanduser(value) if value.startswith("~") else value


def resolve(settings: Settings, name: str | None = None) -> ModelEntry:
    """The model a worker loads: the fleet file's entry `name` (default MODEL), or
    MODEL itself as one model's folder or hub id when no fleet file names it."""
    wanted = (name or settings.model).strip()
    path = fleet_path(settings)
    fleet = load_fleet(path) if path is not None else {}
    if wanted in fleet:
        return fleet[wanted]
    looks_like_a_name = "/" not in wanted and "\\" not in wanted and not Path(wanted).expanduser().exists()
    if fleet and looks_like_a_name and wanted != EMBEDDED:
        listed = ", ".join(f"`{n}`" for n in fleet)
        raise FleetFileError(str(path), wanted, f"{path} has no model `{wanted}`; it has {listed}.")
    return ModelEntry(name=model_name(wanted), source=wanted)


def job_model(settings: Settings, name: str | None = None) -> str:
    """The name a new job gives its model: `name`, else MODEL's (no file read: the
    bot and the CLI name models as their workers announce them)."""
    return model_name(name or settings.model)
