"""The model families Daydream serves through diffusers, and each one's defaults.

A *family* is what an admin names in the fleet file (`family = "flux-schnell"`):
its sampling defaults, whether it reads a negative prompt, which text encoder
its token limit is counted in. An *architecture* is what the checkpoint is
(the diffusers pipeline it loads as): every family of one architecture loads
the same way, and a LoRA trained for an architecture fits all of its families
(`LORA_DIR/<architecture>/<name>.safetensors`).

Pure data (no torch): the fleet file is checked against it wherever it is
read; the worker's engine (worker/engines/diffusers_engine.py) acts on it.
The defaults are the model cards' recommendations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    arch: str
    title: str  # how a user reads it in a message
    steps: int
    guidance: float
    # Whether the family reads a negative prompt at all (FLUX.1 is guidance-distilled: it has no unconditional pass).
    negative_prompt: bool = True
    # Classifier-free guidance, and so the negative prompt, is on only for guidance above this.
    cfg_above: float = 1.0
    # The pipeline argument the guidance goes to (Qwen-Image's real CFG is `true_cfg_scale`).
    guidance_arg: str = "guidance_scale"
    # The pipeline component whose tokens the prompt limit is in, and that encoder's length
    # (None: the tokenizer's own `model_max_length`, CLIP's 77).
    tokenizer: str = "tokenizer"
    max_sequence_length: int | None = None
    base_size: int | None = None  # the side of a 1:1 image; None: from the checkpoint's config
    inpaint: bool = True  # diffusers has an inpainting pipeline for it
    img2img: bool = True  # diffusers has an image-to-image pipeline for it (U/V buttons need one)
    # Fixed arguments of the family's pipeline call (what Daydream decides itself, such as the size).
    call_args: tuple[tuple[str, object], ...] = ()
    hints: tuple[str, ...] = ()  # words in a model's name that pick this family among its architecture's
    # Which results of its pipeline's `encode_prompt` condition on the prompt (--chaos and --weird
    # move them; the others are the negative prompt's, masks or ids) — worker/engines/conditioning.py.
    conditioning: tuple[int, ...] = (0,)
    # Prompt flags (shared/models.py `used_flags`) its engine cannot honour: refused at submit.
    unsupported: tuple[str, ...] = ()


# `encode_prompt`'s positive results: SDXL's and SD3's (embeds, negative, pooled, negative pooled);
# FLUX.1's (embeds, pooled, text ids). The others' first result is the prompt's embeds.
SD3_XL, FLUX = (0, 2), (0, 1)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("sd", "sd", "Stable Diffusion 1.x/2.x", steps=25, guidance=7.0),
        Family("sd-turbo", "sd", "SD-Turbo", steps=4, guidance=0.0, hints=("turbo",)),
        Family("sdxl", "sdxl", "Stable Diffusion XL", steps=25, guidance=7.0, conditioning=SD3_XL),
        Family("sdxl-turbo", "sdxl", "SDXL-Turbo", steps=4, guidance=0.0, hints=("turbo",), conditioning=SD3_XL),
        Family(
            "sd3.5",
            "sd3",
            "Stable Diffusion 3.5",
            steps=28,
            guidance=3.5,
            tokenizer="tokenizer_3",  # T5 reads the whole prompt; the two CLIPs its first 77 tokens
            max_sequence_length=256,
            base_size=1024,
            conditioning=SD3_XL,
        ),
        Family(
            "sd3.5-turbo",
            "sd3",
            "Stable Diffusion 3.5 Large Turbo",
            steps=4,
            guidance=0.0,
            tokenizer="tokenizer_3",
            max_sequence_length=256,
            base_size=1024,
            hints=("turbo",),
            conditioning=SD3_XL,
        ),
        Family(
            "flux-schnell",
            "flux",
            "FLUX.1 [schnell]",
            steps=4,
            guidance=0.0,
            negative_prompt=False,
            tokenizer="tokenizer_2",
            max_sequence_length=256,  # schnell's T5 length
            base_size=1024,
            hints=("schnell",),
            conditioning=FLUX,
        ),
        Family(
            "flux-dev",
            "flux",
            "FLUX.1 [dev]",
            steps=28,
            guidance=3.5,  # distilled guidance: an input of the model, not a second pass
            negative_prompt=False,
            tokenizer="tokenizer_2",
            max_sequence_length=512,
            base_size=1024,
            conditioning=FLUX,
        ),
        Family(
            "z-image-turbo",
            "z-image",
            "Z-Image-Turbo",
            steps=9,
            guidance=0.0,
            negative_prompt=False,  # distilled to run without guidance
            cfg_above=0.0,
            max_sequence_length=512,
            base_size=1024,
        ),
        Family(
            "qwen-image",
            "qwen-image",
            "Qwen-Image",
            steps=50,
            guidance=4.0,
            guidance_arg="true_cfg_scale",
            max_sequence_length=512,
            base_size=1328,
        ),
        Family(
            "hunyuan-dit",
            "hunyuan",
            "Hunyuan-DiT",
            steps=50,
            guidance=5.0,
            # Its bilingual CLIP (a Chinese BERT) reads 77 tokens, one per Chinese character; mT5 reads 256.
            max_sequence_length=77,
            base_size=1024,
            inpaint=False,
            img2img=False,  # diffusers has no image-to-image pipeline for it: U/V are refused at submit
            # Its pipeline would resample every size to one of its trained ones and return that size;
            # Daydream's sizes (the --ar table, multiples of 16) are what the user asked for.
            call_args=(("use_resolution_binning", False),),
        ),
    )
}

# The diffusers text-to-image pipeline of each architecture (model_index.json's `_class_name`).
PIPELINES: dict[str, str] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "FluxPipeline": "flux",
    "ZImagePipeline": "z-image",
    "QwenImagePipeline": "qwen-image",
    "HunyuanDiTPipeline": "hunyuan",
}


def family_for(arch: str, model_name: str) -> Family:
    """The family of a checkpoint of `arch` whose name says no family: the one
    whose hint is in the name (`sdxl-turbo`), else the architecture's plain one."""
    candidates = [f for f in FAMILIES.values() if f.arch == arch]
    lowered = model_name.lower()
    for family in candidates:
        if any(hint in lowered for hint in family.hints):
            return family
    plain = [f for f in candidates if not f.hints]
    return (plain or candidates)[0]


def names() -> str:
    return ", ".join(f"`{name}`" for name in FAMILIES)
