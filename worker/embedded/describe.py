"""/describe for the embedded model: the honest inverse of its world.

The model draws one or two shapes in eight colours on a plain background, at
nine places and three sizes; the quality benchmark reads those attributes back
from a picture with plain image statistics (worker/embedded/scoring.py). Read
back the same way, an image becomes a scene, and the scene becomes prompts in
the wordings the model was trained on (worker/embedded/scenes.py): the plain
caption, the one without places, and paraphrases drawn by the job's seeds (so
🔄 gives other wordings of the same reading). What the model cannot draw, it
does not claim to see: an image with nothing it knows is "a plain … background"."""

from __future__ import annotations

import random

from PIL import Image

from worker.embedded import scenes
from worker.embedded.scoring import PairScore, score_pair, score_tile

READ_SIDE = 64  # the model's own size: where the scoring rules were calibrated
PROMPTS = 4


def read_scene(image: Image.Image) -> scenes.Scene:
    """The scene an image shows, as the model's vocabulary can say it."""
    tile = image.convert("RGB").resize((READ_SIDE, READ_SIDE), Image.Resampling.LANCZOS)
    pair: PairScore = score_pair(tile)
    if len(pair.objects) >= 2:
        objects = tuple(scenes.SceneObject(b.foreground, b.shape, b.position, b.size) for b in pair.objects[:2])
        return scenes.Scene(pair.background, objects)
    single = score_tile(tile)
    if single.foreground is None or single.shape is None:
        return scenes.Scene(single.background, ())
    obj = scenes.SceneObject(single.foreground, single.shape, single.position or "centre", single.size or "medium")
    return scenes.Scene(single.background, (obj,))


def describe(image: Image.Image, seeds: list[int] | tuple[int, ...]) -> list[str]:
    """Four prompts for `image`: the plain reading first, then other wordings."""
    scene = read_scene(image)
    if not scene.objects:
        bg = scene.background
        plain = f"a plain {bg} background"
        rng = random.Random(seeds[0] if seeds else 0)
        words = scenes.COLOUR_WORDS[bg]
        others = [f"an empty {rng.choice(words)} background", f"nothing but {bg}", f"a flat {rng.choice(words)} colour"]
        return [plain, *others][:PROMPTS]
    prompts = [scenes.plain_caption(scene)]
    if len(scene.objects) > 1 or scene.objects[0].position != "centre":
        prompts.append(scenes.plain_caption(scene, places=False))
    for seed in seeds:
        if len(prompts) >= PROMPTS:
            break
        rng = random.Random(seed)
        for _ in range(8):  # a wording not given yet
            text = scenes.caption(scene, rng)
            if text not in prompts:
                prompts.append(text)
                break
    while len(prompts) < PROMPTS:
        prompts.append(prompts[-1])
    return prompts[:PROMPTS]
