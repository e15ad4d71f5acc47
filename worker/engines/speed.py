"""How fast a diffusers pipeline samples on a GPU: the dtype, the memory layout,
fused attention projections, quantized weights, a cached-step scheme and
torch.compile (optionally replaying CUDA graphs), each one switch of
shared/settings.py. `auto` switches are on on CUDA and off elsewhere: on a
CPU they cost compile time or precision for nothing.

The engine (worker/engines/diffusers_engine.py) asks for `dtype()` before it
loads the weights and calls `apply()` once they are on the device and the
LoRAs are loaded. Everything is applied in place on the modules the
text-to-image, image-to-image and inpainting pipelines share. What cannot be
applied (no torchao, a UNet without a step cache, LoRAs loaded) is logged
with the reason and left off; `apply()` returns what did apply.
`benchmarks/gpu_sampler.py` measures each switch alone and together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from shared.params import ASPECT_RATIOS
from shared.settings import Settings

logger = logging.getLogger(__name__)

# torch.compile with dynamic=False keeps one graph per input shape: every --ar size, its batch with
# and without guidance, the upscales. Dynamo's default of 8 graphs per function would fall back to
# eager after the eighth size, silently; this is room for every size a worker serves.
RECOMPILE_LIMIT = 64
# Linear layers smaller than this (in or out features) stay unquantized: the (de)quantization
# costs more than the matmul saves (the PyTorch team's SDXL recipe filters the same way).
QUANTIZE_MIN_FEATURES = 512
# Denoisers whose text sequence is as long as the prompt (Qwen-Image, Z-Image trim the padding):
# with one graph per shape each new prompt length would recompile in the job. They are compiled
# with automatic dynamic shapes instead (one more compile, then one graph for every length).
VARIABLE_TEXT_LENGTH = frozenset({"QwenImageTransformer2DModel", "ZImageTransformer2DModel"})


@dataclass(frozen=True)
class SpeedOptions:
    bf16: bool = False  # else fp16 on CUDA (diffusers' documented default), fp32 elsewhere
    channels_last: bool = False
    compile: bool = False  # torch.compile the denoiser's repeated blocks (or all of it)
    fuse_qkv: bool = False
    cuda_graphs: bool = False  # with compile: the whole denoiser, mode reduce-overhead
    quantize: str = "none"  # "int8" | "fp8": the denoiser's linear weights (torchao)
    step_cache: float = 0.0  # first-block cache threshold (transformer denoisers); 0: off
    deep_cache: int = 0  # UNets: the whole UNet every this many steps, its outer blocks between; 0: off
    latent_previews: bool = True  # previews by a linear map of the latents; else a VAE decode

    @classmethod
    def for_device(cls, settings: Settings, device: str | torch.device) -> SpeedOptions:
        """The worker's options: the settings, with `auto` (None) decided by the device."""
        cuda = torch.device(device).type == "cuda"

        def auto(value: bool | None) -> bool:
            return cuda if value is None else value

        return cls(
            bf16=auto(settings.bf16),
            channels_last=auto(settings.channels_last),
            compile=auto(settings.torch_compile),
            fuse_qkv=auto(settings.fuse_qkv),
            cuda_graphs=settings.cuda_graphs and cuda,
            quantize=settings.quantize,
            step_cache=settings.step_cache,
            deep_cache=settings.deep_cache,
            latent_previews=settings.latent_previews,
        )

    def dtype(self, device: str | torch.device) -> torch.dtype:
        device = torch.device(device)
        if device.type == "cuda":
            return torch.bfloat16 if self.bf16 and torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if self.bf16 else torch.float32


def denoiser_of(pipe: Any) -> torch.nn.Module:
    unet = getattr(pipe, "unet", None)
    return unet if unet is not None else pipe.transformer


def apply(pipe: Any, options: SpeedOptions, *, loras: bool = False) -> tuple[str, ...]:
    """Apply `options` to `pipe`'s modules in place; returns the names of what applied.
    The order matters: fuse before quantizing (the fused weight is the one to
    quantize), quantize and cache before compiling (compile traces the result)."""
    denoiser = denoiser_of(pipe)
    applied: list[str] = []
    if options.fuse_qkv:
        if loras:  # a LoRA adapts to_q/to_k/to_v; the fused to_qkv would ignore it
            logger.warning("FUSE_QKV skipped: LoRAs are loaded and adapt the unfused projections")
        elif _fuse_qkv(pipe, denoiser):
            applied.append("fuse_qkv")
    if options.channels_last:
        for module in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
            if module is not None:  # a transformer's linear layers have no layout to change
                module.to(memory_format=torch.channels_last)
                applied.append("channels_last")
    if options.quantize != "none":
        if loras:
            logger.warning("QUANTIZE skipped: LoRAs are loaded (their adapters wrap the layers to quantize)")
        elif _quantize(denoiser, options.quantize):
            applied.append(options.quantize)
    if options.step_cache:
        if _step_cache(denoiser, options.step_cache):
            applied.append("step_cache")
    if options.deep_cache > 1:
        if DeepCache.attach(denoiser, options.deep_cache):
            applied.append("deep_cache")
    if options.compile:
        if loras:  # each job switches adapters: the guards fail and the job pays for a recompile
            logger.warning("COMPILE skipped: LoRAs are loaded (switching them per job would recompile)")
        else:
            applied.append(_compile(denoiser, options.cuda_graphs, fullgraph="step_cache" not in applied))
    if applied:
        logger.info("speed: %s", ", ".join(dict.fromkeys(applied)))
    return tuple(dict.fromkeys(applied))


def _fuse_qkv(pipe: Any, denoiser: torch.nn.Module) -> bool:
    fused = False
    for module in (denoiser, getattr(pipe, "vae", None)):
        fuse = getattr(module, "fuse_qkv_projections", None)
        if fuse is None:
            continue
        try:
            fuse()  # the UNet's and the VAE's also switch to diffusers' FusedAttnProcessor2_0
            fused = True
        except ValueError as exc:  # diffusers refuses models with added KV projections
            logger.warning("FUSE_QKV skipped for %s: %s", type(module).__name__, exc)
    return fused


def _quantize(denoiser: torch.nn.Module, kind: str) -> bool:
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int8DynamicActivationInt8WeightConfig,
            PerRow,
            quantize_,
        )
    except ImportError:
        logger.warning("QUANTIZE=%s skipped: torchao is not installed (pip install torchao)", kind)
        return False
    if kind == "int8":
        config = Int8DynamicActivationInt8WeightConfig()
    else:
        config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())

    def large_linear(module: torch.nn.Module, _name: str) -> bool:
        return isinstance(module, torch.nn.Linear) and min(module.in_features, module.out_features) >= (
            QUANTIZE_MIN_FEATURES
        )

    try:
        quantize_(denoiser, config, filter_fn=large_linear)
    except (RuntimeError, NotImplementedError, AssertionError) as exc:  # e.g. fp8 on a GPU without it
        logger.warning("QUANTIZE=%s skipped: %s", kind, exc)
        return False
    return True


def _step_cache(denoiser: torch.nn.Module, threshold: float) -> bool:
    from diffusers import FirstBlockCacheConfig
    from diffusers.models.cache_utils import CacheMixin

    if not isinstance(denoiser, CacheMixin):
        logger.warning(
            "STEP_CACHE skipped: diffusers' first-block cache serves transformer denoisers; %s has none "
            "(DEEP_CACHE is the UNets' step cache)",
            type(denoiser).__name__,
        )
        return False
    denoiser.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    return True


class DeepCache:
    """DeepCache (Ma et al., 2023) on a diffusers UNet: on a full step the whole UNet
    runs and the input of its last up block (the deep features) is kept; on the next
    `interval - 1` steps only the outer blocks run (conv_in, the first down block, the
    last up block) with the kept features in place of everything deeper — the deep
    features change slowly between neighbouring steps. Done with hooks and instance
    forwards, so the UNet's own forward (time and text embeddings, SDXL's added
    conditions) is untouched. A new sampling (the timestep goes up, or the batch or size
    changes) starts with a full step."""

    def __init__(self, interval: int) -> None:
        self.interval, self.calls, self.cached = interval, 0, False
        self.last_t: float | None = None
        self.shape: tuple[int, ...] | None = None
        self.deep: torch.Tensor | None = None

    @classmethod
    def attach(cls, unet: torch.nn.Module, interval: int) -> bool:
        ups, downs = getattr(unet, "up_blocks", None), getattr(unet, "down_blocks", None)
        if not ups or not downs or len(downs) < 2:
            logger.warning("DEEP_CACHE skipped: %s is not a UNet (STEP_CACHE serves transformers)", type(unet).__name__)
            return False
        state = cls(interval)
        unet.register_forward_pre_hook(state._start, with_kwargs=True)
        ups[-1].register_forward_pre_hook(state._last_up, with_kwargs=True)
        for block in (*downs[1:], unet.mid_block, *ups[:-1]):
            if block is not None:
                block.forward = state._skippable(block, block.forward)
        unet._daydream_deep_cache = state
        return True

    def _start(self, _unet, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        t = float(timestep.flatten()[0]) if isinstance(timestep, torch.Tensor) else float(timestep)
        # Timesteps fall during a sampling (PNDM repeats one: not a new sampling).
        new = self.last_t is None or t > self.last_t or tuple(sample.shape) != self.shape
        if new:
            self.calls, self.deep, self.shape = 0, None, tuple(sample.shape)
        self.cached = self.deep is not None and self.calls % self.interval != 0
        self.calls += 1
        self.last_t = t

    def _last_up(self, _block, args, kwargs):
        if self.cached:
            kwargs["hidden_states"] = self.deep
        else:
            self.deep = kwargs["hidden_states"]
        return args, kwargs

    def _skippable(self, block: torch.nn.Module, forward):
        resnets = len(getattr(block, "resnets", ())) + (1 if getattr(block, "downsamplers", None) else 0)
        is_down = "Down" in type(block).__name__

        def run(*args: Any, **kwargs: Any) -> Any:
            if not self.cached:
                return forward(*args, **kwargs)
            hidden = args[0] if args else kwargs["hidden_states"]
            # Skipped: the shapes the UNet's loop expects, no arithmetic (the last up block
            # takes the kept features and the first down block's fresh residuals).
            return (hidden, (hidden,) * resnets) if is_down else hidden

        return run


def _compile(denoiser: torch.nn.Module, cuda_graphs: bool, fullgraph: bool) -> str:
    import torch._dynamo.config as dynamo

    dynamo.cache_size_limit = max(dynamo.cache_size_limit, RECOMPILE_LIMIT)
    dynamo.accumulated_cache_size_limit = max(dynamo.accumulated_cache_size_limit, RECOMPILE_LIMIT * 4)
    variable = type(denoiser).__name__ in VARIABLE_TEXT_LENGTH
    if cuda_graphs and variable:
        logger.warning(
            "CUDA_GRAPHS skipped: %s's text length varies by prompt (a graph per length)", type(denoiser).__name__
        )
    elif cuda_graphs:
        _compile_with_graphs(denoiser)
        return "cuda_graphs"
    # Regional compilation: each repeated block is compiled once per shape and reused by all
    # its copies, so warming up every --ar size takes a fraction of a whole-model compile.
    dynamic = None if variable else False
    if getattr(denoiser, "_repeated_blocks", None):
        denoiser.compile_repeated_blocks(fullgraph=fullgraph, dynamic=dynamic)
    else:
        denoiser.compile(fullgraph=fullgraph, dynamic=dynamic)
    return "compile"


def _compile_with_graphs(denoiser: torch.nn.Module) -> None:
    """The whole denoiser compiled in mode reduce-overhead: one CUDA graph per shape, replayed.
    A replay overwrites the previous step's output, which schedulers keep (PNDM's history):
    each call starts a new graph step and hands back a copy."""
    compiled = torch.compile(denoiser.forward, mode="reduce-overhead", dynamic=False)

    def forward(*args: Any, **kwargs: Any) -> Any:
        torch.compiler.cudagraph_mark_step_begin()
        out = compiled(*args, **kwargs)
        return tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in out) if isinstance(out, tuple) else out

    denoiser.forward = forward  # on the instance: every pipeline that shares the module uses it


def is_compiled(pipe: Any) -> bool:
    """Whether sampling would go through torch.compile (compiling lazily, at the first call)."""
    denoiser = denoiser_of(pipe)
    if getattr(denoiser, "_compiled_call_impl", None) is not None or "forward" in vars(denoiser):
        return True
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in denoiser.modules())


def warm_sizes(spec: Any, compiled: bool) -> list[tuple[int, int]]:
    """The sizes to sample before taking jobs: every --ar size when compiled (a new
    shape compiles), else the base size (lazy initialisation only)."""
    if not compiled:
        return [(spec.base_size, spec.base_size)]
    return list(dict.fromkeys(spec.image_size(aspect) for aspect in ASPECT_RATIOS))


@torch.inference_mode()
def vae_preview(pipe: Any, latents: torch.Tensor, scheduler: object) -> Image.Image | None:
    """A preview decoded by the pipeline's VAE (LATENT_PREVIEWS=false): the real
    colours at full size, for a decode each time a progress edit is due."""
    from shared.grid import compose_grid

    vae = getattr(pipe, "vae", None)
    if vae is None or latents.ndim != 4 or latents.shape[1] != vae.config.latent_channels:
        return None  # packed (FLUX.1 …) latents: no preview, as with the latent map
    x = latents
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    if getattr(scheduler, "init_noise_sigma", 1.0) > 1.0 and sigmas is not None and index is not None:
        x = x / (float(sigmas[min(index, len(sigmas) - 1)]) ** 2 + 1) ** 0.5
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    x = (x / vae.config.scaling_factor + shift).to(vae.dtype)
    decoded = vae.decode(x, return_dict=False)[0]
    pixels = ((decoded.float() + 1) * 127.5).clamp(0, 255).to(torch.uint8).movedim(1, -1).cpu().numpy()
    tiles = [Image.fromarray(p) for p in pixels]
    return compose_grid(tiles) if len(tiles) == 4 else tiles[0]
