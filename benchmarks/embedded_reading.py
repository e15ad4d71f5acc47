"""How well prompts are read onto the embedded model's world, without drawing
anything: the reader the engine uses (worker/embedded/reading.py: the
vocabulary looked up per span, then the multilingual encoder for what is
left) against the alternative design that embeds the whole prompt with the
same multilingual encoder and takes the nearest of every English caption the
world has (all 4,256 single-object scenes, scenes.plain_caption). Prompts:
the quality benchmark's 48 scenes in plain English, paraphrased English,
simplified and traditional Chinese; and prompts outside the world, which the
reader must flag (the nearest-caption design always finds some caption).
Not a test: run it by hand and paste the table into RESULTS.md.

    python benchmarks/embedded_reading.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import chinese_wording as zh  # noqa: E402
from benchmarks.embedded_quality import CHINESE_SEED, benchmark_cases  # noqa: E402
from worker.embedded import scenes  # noqa: E402
from worker.embedded.multilingual import shared_encoder  # noqa: E402
from worker.embedded.reading import read  # noqa: E402

ATTRS = ("background", "foreground", "shape", "position", "size")


def world_scenes() -> list[scenes.Scene]:
    out = []
    for bg in scenes.COLOURS:
        for fg in scenes.COLOURS:
            if fg == bg:
                continue
            for shape in scenes.SHAPES:
                for position in scenes.POSITIONS:
                    for size in scenes.SIZES:
                        if position != "centre" and size == "large":
                            continue  # large objects are only ever centred
                        out.append(scenes.Scene(bg, (scenes.SceneObject(fg, shape, position, size),)))
    return out


def attributes(scene: scenes.Scene) -> dict[str, str]:
    [o] = scene.objects
    return {
        "background": scene.background,
        "foreground": o.colour,
        "shape": o.shape,
        "position": o.position,
        "size": o.size,
    }


def reader_attributes(prompt: str) -> dict[str, str | None]:
    enc = shared_encoder()
    r = read(prompt, enc.embed, enc.anchors)
    o = next((x for x in r.objects if x.shape), None)
    if o is None:
        return dict.fromkeys(ATTRS)
    return {
        "background": r.background,
        "foreground": o.colour,
        "shape": o.shape,
        "position": o.position or "centre",
        "size": o.size or "medium",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=48)
    args = parser.parse_args(argv)
    enc = shared_encoder()
    cases = benchmark_cases(args.scenes)
    sets: dict[str, list[tuple[str, dict[str, str]]]] = {"plain": [], "paraphrase": [], "zh-Hans": [], "zh-Hant": []}
    for c in cases:
        want = attributes(c.scene)
        sets["plain"].append((c.plain, want))
        sets["paraphrase"].append((c.paraphrase, want))
        hans = zh.simplified(c.scene, random.Random(CHINESE_SEED + c.index))
        sets["zh-Hans"].append((hans, want))
        sets["zh-Hant"].append((zh.traditional(hans), want))

    t0 = time.perf_counter()
    world = world_scenes()
    captions = enc.embed([scenes.plain_caption(s) for s in world])
    index_s = time.perf_counter() - t0

    def nearest(prompt: str) -> dict[str, str]:
        return attributes(world[int((captions @ enc.embed([prompt])[0]).argmax())])

    print(f"{len(world)} world captions embedded in {index_s:.0f} s\n")
    print("| wording | design | " + " | ".join(ATTRS) + " | all five |")
    print("| --- | --- | " + " | ".join("---:" for _ in ATTRS) + " | ---: |")
    for name, items in sets.items():
        for design, fn in (("reader (shipped)", reader_attributes), ("nearest caption", nearest)):
            got = [(fn(p), want) for p, want in items]
            cells = [f"{sum(g[a] == w[a] for g, w in got) / len(got):.1%}" for a in ATTRS]
            every = sum(all(g[a] == w[a] for a in ATTRS) for g, w in got) / len(got)
            print(f"| {name} | {design} | " + " | ".join(cells) + f" | {every:.1%} |")
    flagged = [p for p in zh.OUT_OF_WORLD if not read(p, enc.embed, enc.anchors).in_world]
    print(
        f"\nout of the world: the reader flags {len(flagged)} of {len(zh.OUT_OF_WORLD)}; nearest caption: 0 (always picks one)"
    )
    for p in zh.OUT_OF_WORLD:
        if p not in flagged:
            print(f"  not flagged: {p!r} → {read(p, enc.embed, enc.anchors).describe()!r}")


if __name__ == "__main__":
    main()
