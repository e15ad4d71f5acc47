"""--chaos, --weird and weighted prompt parts on a diffusers pipeline, for one call.

Every pipeline turns its prompt into conditioning in `encode_prompt`, whatever its
text encoders are. For the call, that method is wrapped on the pipeline instance:
* weighted parts (`a red fox::2 snow::1`): the original is called once per positive
  part, with the same other arguments, and the floating-point results are blended
  element-wise by the normalised weights (compel's blend). Sequences a pipeline trims
  to their tokens (Qwen-Image, Z-Image) are padded with zeros to the longest part, and
  their masks are the union of the parts'.
* --chaos / --weird: seeded Gaussian offsets of the positive conditioning, each token
  (and pooled vector) moved relative to its own size, as the embedded model does
  (worker/engines/embedded.py): chaos per image, from the image's seed; weird one
  offset common to every image of every job, from a fixed seed.
Which results of `encode_prompt` are the positive conditioning is family data
(`Family.conditioning`, shared/families.py); the negative prompt's are left alone."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

# chaos 100 moves each token about 0.8 of its own length (the four images spread apart);
# weird 3000 moves it 1.5 lengths, the same way for every image.
CHAOS_SCALE = 0.8
WEIRD_SCALE = 0.5 / 1000
CHAOS_SALT, WEIRD_SEED = 0x6368616F, 0x77656972
CALL_SALT = 0x9E3779B1  # a pipeline with two text encoders (Hunyuan-DiT) encodes twice: each its own offsets


def blend(results: Sequence[Any], weights: Sequence[float]) -> Any:
    """The element-wise weighted mean of `encode_prompt`'s results, one per part."""
    first = results[0]
    if isinstance(first, tuple | list):
        return type(first)(blend([r[i] for r in results], weights) for i in range(len(first)))
    if first is None or all(r is first for r in results):
        return first
    tensors = _padded(list(results))
    if not tensors[0].is_floating_point():
        # Token ids agree between parts; masks (zero-padded) are their union.
        return torch.stack(tensors).amax(dim=0)
    if all(torch.equal(t, tensors[0]) for t in tensors[1:]):
        return tensors[0]  # the negative prompt's, the same in every part's result
    total = float(sum(weights))
    return sum((w / total) * t for w, t in zip(weights, tensors, strict=True))


def _padded(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    shape = [max(sizes) for sizes in zip(*(t.shape for t in tensors), strict=True)]
    out = []
    for t in tensors:
        pad: list[int] = []
        for have, want in zip(reversed(t.shape), reversed(shape), strict=True):
            pad += [0, want - have]
        out.append(torch.nn.functional.pad(t, pad) if any(pad) else t)
    return out


def _with_masks(results: list[list[Any]]) -> list[list[Any]]:
    """Where one part's mask is None (Qwen-Image drops a mask that is all ones) and another
    part's is a tensor, None becomes ones over that part's own sequence (its first
    floating-point result's batch × length)."""
    for i in range(len(results[0])):
        column = [r[i] for r in results]
        masks = [c for c in column if isinstance(c, torch.Tensor)]
        if not masks or len(masks) == len(column) or masks[0].is_floating_point():
            continue
        for r in results:
            if r[i] is None:
                embeds = next(x for x in r if isinstance(x, torch.Tensor) and x.is_floating_point())
                r[i] = torch.ones(embeds.shape[:2], dtype=masks[0].dtype, device=masks[0].device)
    return results


def _offset(seed: int, like: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed % 2**63)
    noise = torch.randn(like.shape, generator=g, dtype=torch.float32).to(like.device)
    size = like.float().pow(2).mean(dim=-1, keepdim=True).sqrt()  # each token's own size
    return noise * size


def twisted(value: Any, seeds: Sequence[int], chaos: int, weird: int, call: int) -> Any:
    """One positive result of `encode_prompt` (a batch with one row per image, or a list
    of one tensor per image) moved by --chaos (per image) and --weird (common)."""
    rows = list(value) if isinstance(value, list) else list(value.unbind(0))
    if len(rows) != len(seeds):  # not batched by image (FLUX's text ids): not conditioning to move
        return value
    moved = []
    for row, seed in zip(rows, seeds, strict=True):
        shift = torch.zeros(row.shape, dtype=torch.float32, device=row.device)
        if weird:
            shift += WEIRD_SCALE * weird * _offset(WEIRD_SEED + CALL_SALT * call, row)
        if chaos:
            shift += CHAOS_SCALE * chaos / 100 * _offset((seed ^ CHAOS_SALT) + CALL_SALT * call, row)
        moved.append((row.float() + shift).to(row.dtype))
    return moved if isinstance(value, list) else torch.stack(moved)


@contextmanager
def conditioning(
    pipe: Any,
    prompts: Sequence[tuple[str, float]],
    seeds: Sequence[int],
    chaos: int,
    weird: int,
    positive: Sequence[int],
) -> Iterator[None]:
    """For the calls of `pipe` inside: the positive parts `prompts` (text, weight) blended,
    then moved by `chaos` and `weird`. `positive`: the indices of `encode_prompt`'s
    result that condition on the prompt."""
    if not prompts or (len(prompts) == 1 and not chaos and not weird):  # nothing to blend or move
        yield
        return
    original = pipe.encode_prompt
    signature = inspect.signature(original)
    joined = [", ".join(text for text, _ in prompts)] * len(seeds)  # what the engine passes as `prompt`
    calls = 0

    def encode_prompt(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        bound = signature.bind(*args, **kwargs)
        if bound.arguments.get("prompt") != joined:
            return original(*args, **kwargs)  # the negative prompt's own call (FLUX.1, Qwen-Image)
        results = []
        for text, _ in prompts:
            bound.arguments["prompt"] = [text] * len(seeds)
            results.append(original(*bound.args, **bound.kwargs))
        result = blend(_with_masks([list(r) for r in results]), [w for _, w in prompts])
        result = [
            twisted(v, seeds, chaos, weird, calls) if i in positive and v is not None else v
            for i, v in enumerate(result)
        ]
        calls += 1
        return tuple(result)

    pipe.encode_prompt = encode_prompt
    try:
        yield
    finally:
        del pipe.encode_prompt
