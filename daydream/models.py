"""`daydream models`: the fleet file's models and the ones live workers serve
(each with its family, defaults, lanes and LoRAs); and the `--model` options
of `daydream worker` and `daydream imagine`."""

from __future__ import annotations

import argparse
import json

from shared import fleet
from shared.families import FAMILIES
from shared.settings import Settings
from shared.store import JobStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the fleet file's models, and those live workers serve")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def add_model_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--model", metavar="NAME", help=f"{what} (a name in the fleet file; default: MODEL)")


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    path = fleet.fleet_path(settings)
    entries = fleet.load_fleet(path) if path is not None else {}
    served = JobStore(settings).dispatch.served_specs()
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(path) if path else None,
                    "models": {
                        n: {"source": e.source, "family": e.family, "lanes": list(e.lanes)} for n, e in entries.items()
                    },
                    "served": {n: (s.family, list(s.loras)) if s else None for n, s in served.items()},
                }
            )
        )
        return 0
    print(f"fleet file: {path}" if path else f"fleet file: none (MODEL={settings.model})")
    for name, entry in entries.items():
        family = FAMILIES[entry.family].title if entry.family else "family from the checkpoint"
        lanes = ",".join(entry.lanes) or "every lane"
        state = "served" if name in served else "no worker"
        print(f"  {name:<18} {family:<28} {lanes:<16} {state:<10} {entry.source}")
    print(f"served now: {len(served)}")
    for name, spec in served.items():
        if spec is None:
            print(f"  {name}  (an older worker: no details)")
            continue
        negative = "reads --no" if spec.negative_prompt else "no --no"
        loras = ", ".join(spec.loras) or "none"
        print(
            f"  {name}  {spec.title or spec.family}  {spec.default_steps} steps, guidance {spec.default_guidance:g}, "
            f"{spec.base_size}px, {negative}, ≤{spec.max_prompt_tokens} tokens, LoRAs: {loras}"
        )
    return 0
