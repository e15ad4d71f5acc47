"""The full-size architectures of SD 1.5, SDXL and FLUX.1 [schnell] from their
published configs, with random weights (the same cost per step as the real
ones; the images are noise), built in memory on the device where they run:
no download, no model folder on disk. The tokenizers come from vocabularies
written in code (tests/support/tiny_sd.py, tests/support/tiny_families.py);
the text encoders have the real vocabulary sizes and read the few ids those
tokenizers make.

`build(name, dtype, device)` makes one pipeline; `denoiser_inputs(name, …)`
the arguments of one denoiser call at a size, for counting FLOPs on the meta
device (no memory, no GPU: `python benchmarks/gpu_sampler.py --flops-only`)."""

from __future__ import annotations

import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sd_fullsize  # noqa: E402  (SD 1.5's configs, issue 3's harness)

SD15_UNET, SD15_VAE, CLIP_L, SAFETY_VISION = (
    sd_fullsize.UNET,
    sd_fullsize.VAE,
    sd_fullsize.TEXT,
    sd_fullsize.SAFETY_VISION,
)

# stabilityai/stable-diffusion-xl-base-1.0: unet/, vae/, text_encoder_2/ config.json
SDXL_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "norm_num_groups": 32,
}
SDXL_VAE = {**SD15_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
OPENCLIP_BIGG = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "vocab_size": 49408,
}
# black-forest-labs/FLUX.1-schnell: transformer/, vae/, text_encoder_2/ (T5 v1.1 XXL) config.json
FLUX_TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
}
FLUX_VAE = {
    **SD15_VAE,
    "sample_size": 1024,
    "latent_channels": 16,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
T5_XXL = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-6,
    "tie_word_embeddings": False,
}
FLUX_T5_LENGTH = 256  # schnell's max_sequence_length

# name → (the name the engine reads its family from, tile size, steps); the settings.
MODELS = {
    "sd15": ("stable-diffusion-v1-5", 512, 25),
    "sdxl": ("stable-diffusion-xl-base-1.0", 1024, 30),
    "flux": ("flux.1-schnell", 1024, 4),
}


@contextmanager
def building(dtype, device):
    """Parameters made directly on `device` in `dtype`: a 12B transformer is made in seconds on a GPU
    and never exists in fp32."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from tests.support.tiny_sd import write_tokenizer

    write_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(folder)


def _clip_text(tokenizer, config: dict, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    text = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=1, **config
    )
    return CLIPTextModelWithProjection(text) if projection else CLIPTextModel(text)


def _cut(config: dict, shallow: bool, **depth: Any) -> dict:
    """`config`, or with `shallow` its depths cut to one layer: the widths, and so the wiring
    between the parts, stay those of the full size (checked on a CPU with --shallow)."""
    return {**config, **depth} if shallow else config


def _sd15(tokenizer, shallow: bool = False) -> Any:
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    return StableDiffusionPipeline(
        unet=UNet2DConditionModel(**_cut(SD15_UNET, shallow, layers_per_block=1)),
        vae=AutoencoderKL(**SD15_VAE),
        text_encoder=_clip_text(tokenizer, _cut(CLIP_L, shallow, num_hidden_layers=1)),
        tokenizer=tokenizer,
        scheduler=PNDMScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
        ),
        safety_checker=StableDiffusionSafetyChecker(
            CLIPConfig(text_config=CLIP_L, vision_config=SAFETY_VISION, projection_dim=768)
        ),
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
    )


def _sdxl(tokenizer, shallow: bool = False) -> Any:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    return StableDiffusionXLPipeline(
        unet=UNet2DConditionModel(
            **_cut(SDXL_UNET, shallow, layers_per_block=1, transformer_layers_per_block=(1, 1, 1))
        ),
        vae=AutoencoderKL(**SDXL_VAE),
        text_encoder=_clip_text(tokenizer, _cut(CLIP_L, shallow, num_hidden_layers=1)),
        text_encoder_2=_clip_text(tokenizer, _cut(OPENCLIP_BIGG, shallow, num_hidden_layers=1), projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        add_watermarker=False,
    )


def _flux(tokenizer, shallow: bool = False) -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    from tests.support.tiny_families import t5_tokenizer

    t5 = t5_tokenizer()
    return FluxPipeline(
        transformer=FluxTransformer2DModel(**_cut(FLUX_TRANSFORMER, shallow, num_layers=1, num_single_layers=1)),
        vae=AutoencoderKL(**FLUX_VAE),
        text_encoder=_clip_text(tokenizer, _cut(CLIP_L, shallow, num_hidden_layers=1)),
        text_encoder_2=T5EncoderModel(
            T5Config(
                **_cut(T5_XXL, shallow, num_layers=1),
                pad_token_id=t5.pad_token_id,
                eos_token_id=t5.eos_token_id,
                decoder_start_token_id=0,
            )
        ),
        tokenizer=tokenizer,
        tokenizer_2=t5,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
    )


BUILDERS = {"sd15": _sd15, "sdxl": _sdxl, "flux": _flux}


def build(name: str, dtype, device, seed: int = 0, shallow: bool = False) -> Any:
    """One pipeline of `name` (sd15, sdxl, flux) in `dtype` on `device`; the same seed, the same weights."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _clip_tokenizer(Path(tmp) / "clip")
    torch.manual_seed(seed)
    with building(dtype, device):
        pipe = BUILDERS[name](tokenizer, shallow)
    return pipe.to(device=device, dtype=dtype)


def denoiser(name: str, device="meta"):
    """The denoiser alone (for counting FLOPs)."""
    import torch
    from diffusers import FluxTransformer2DModel, UNet2DConditionModel

    with building(torch.bfloat16, device):
        if name == "flux":
            return FluxTransformer2DModel(**FLUX_TRANSFORMER)
        return UNet2DConditionModel(**(SD15_UNET if name == "sd15" else SDXL_UNET))


def denoiser_inputs(name: str, batch: int, width: int, height: int, device="meta") -> dict[str, Any]:
    """One denoiser call's arguments as the pipeline makes them (`batch` counts each guidance half)."""
    import torch

    t = torch.bfloat16
    with torch.device(device):
        if name == "flux":
            seq = (height // 16) * (width // 16)  # 8× VAE, then 2×2 patches
            return {
                "hidden_states": torch.zeros(batch, seq, 64, dtype=t),
                "encoder_hidden_states": torch.zeros(batch, FLUX_T5_LENGTH, 4096, dtype=t),
                "pooled_projections": torch.zeros(batch, 768, dtype=t),
                "timestep": torch.ones(batch, dtype=t),
                "img_ids": torch.zeros(seq, 3, dtype=t),
                "txt_ids": torch.zeros(FLUX_T5_LENGTH, 3, dtype=t),
                "return_dict": False,
            }
        sample = torch.zeros(batch, 4, height // 8, width // 8, dtype=t)
        kw: dict[str, Any] = {"sample": sample, "timestep": torch.ones(batch, dtype=t), "return_dict": False}
        if name == "sd15":
            kw["encoder_hidden_states"] = torch.zeros(batch, 77, 768, dtype=t)
        else:
            kw["encoder_hidden_states"] = torch.zeros(batch, 77, 2048, dtype=t)
            kw["added_cond_kwargs"] = {
                "text_embeds": torch.zeros(batch, 1280, dtype=t),
                "time_ids": torch.zeros(batch, 6, dtype=t),
            }
        return kw
