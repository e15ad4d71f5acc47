"""A worker's LoRAs: found once, loaded once into the resident pipeline as
diffusers adapters (`load_lora_weights(..., adapter_name=name)`), and switched
per job (`set_adapters` with the job's weights, `disable_lora` for a job with
none). The img2img and inpainting pipelines share the denoiser and text
encoders with the text-to-image one, so one switch serves all three.

Where they come from: the fleet entry's `loras` (names in the folder, or
files), else every `<LORA_DIR>/<architecture>/<name>.safetensors` of the
model's architecture. LoRAs in the folders of other architectures are named
in the model's spec too, so the bot can say "that LoRA is for FLUX models"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import ModelUnavailable
from shared.fleet import ModelEntry
from shared.loras import LORA_NAME, LoraRef

logger = logging.getLogger(__name__)

SUFFIX = ".safetensors"


def _folder_loras(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.stem.lower(): str(p) for p in sorted(folder.glob(f"*{SUFFIX}")) if LORA_NAME.match(p.stem.lower())}


def find_loras(entry: ModelEntry, arch: str, lora_dir: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(name → file of the LoRAs this model loads, name → architecture of the LoRAs in LORA_DIR for others)."""
    root = Path(lora_dir).expanduser() if lora_dir else None
    mine = _folder_loras(root / arch) if root is not None else {}
    others: dict[str, str] = {}
    if root is not None and root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != arch):
            others.update({name: folder.name for name in _folder_loras(folder) if name not in mine})
    if entry.lora_files:
        files = dict(entry.lora_files)
    elif entry.loras is not None:
        missing = [name for name in entry.loras if name not in mine]
        if missing:
            where = f"{root / arch}" if root is not None else "LORA_DIR (not set)"
            raise ModelUnavailable(
                f"{entry.file}, [models.{entry.name}]: the LoRA `{missing[0]}` is not in {where}; "
                f"put {missing[0]}{SUFFIX} there or remove it from `loras`."
            )
        files = {name: mine[name] for name in entry.loras}
    else:
        files = mine
    for name, path in files.items():
        if not Path(path).is_file():
            raise ModelUnavailable(f"The LoRA `{name}` of `{entry.name}`: there is no file {path}.")
    return files, {name: a for name, a in others.items() if name not in files}


class LoraSet:
    """The adapters loaded into `pipe`, and which of them (at which weights) are on."""

    def __init__(self, pipe: Any, files: dict[str, str], others: dict[str, str] | None = None) -> None:
        self.pipe = pipe
        self.files = files
        self.others = others or {}
        for name, path in files.items():
            try:
                pipe.load_lora_weights(path, adapter_name=name)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                # A LoRA for another architecture (or a broken file) fails here, at start-up, not in a job.
                reason = " ".join(str(exc).split())[:300]
                raise ModelUnavailable(f"The LoRA `{name}` ({path}) could not be loaded: {reason}") from exc
            logger.info("loaded LoRA %s from %s", name, path)
        self.active: tuple[tuple[str, float], ...] = ()
        if files:
            pipe.disable_lora()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.files))

    def apply(self, refs: Sequence[LoraRef]) -> None:
        """Turn on exactly `refs` (at their weights), or none; nothing to do when unchanged."""
        wanted = tuple((r.name, r.weight) for r in refs)
        if wanted == self.active:
            return
        unknown = [name for name, _ in wanted if name not in self.files]
        if unknown:
            raise ValueError(f"no LoRA {unknown[0]!r} is loaded")  # check_servable refused it before this
        if wanted:
            self.pipe.enable_lora()
            self.pipe.set_adapters([n for n, _ in wanted], adapter_weights=[w for _, w in wanted])
        else:
            self.pipe.disable_lora()
        self.active = wanted
