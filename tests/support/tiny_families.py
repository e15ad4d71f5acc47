"""Tiny, randomly initialised pipelines of the families after SD/SDXL
(tests/support/tiny_sd.py): SD 3.5, FLUX.1, Z-Image and Qwen-Image, built from
configs in code and saved as diffusers folders — no download. Their
tokenizers are built from vocabularies written here: CLIP (tiny_sd's), T5
(a Unigram vocabulary) and Qwen's byte-level BPE, whose merges include a few
Chinese words so `夜晚的城市天际线` is read as words, not bytes.

`make_lora(folder, name)` writes a LoRA for a saved pipeline: random
low-rank weights on its denoiser's attention, strong enough to move the
output, saved the way diffusers saves trained ones."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.support.tiny_sd import bytes_to_unicode, write_tokenizer

T5_WORDS = ["a", "red", "blue", "green", "circle", "square", "on", "background", "star", "night", "city"]
# Words the Qwen tokenizer merges whole: English ones with GPT-2's leading-space marker, and Chinese ones.
QWEN_WORDS = ["a", " red", " blue", " circle", " square", " on", " background", "夜晚", "的", "城市", "天际线"]
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# -- tokenizers ------------------------------------------------------------------------
def clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_tokenizer(folder / "_clip")
    return CLIPTokenizer.from_pretrained(folder / "_clip")


def t5_tokenizer():
    """A T5 (SentencePiece Unigram) tokenizer: whole words with `▁`, and single letters as the fallback."""
    from transformers import T5Tokenizer

    letters = sorted({c for w in T5_WORDS for c in w})
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -1.0) for w in T5_WORDS] + [(c, -3.0) for c in letters]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def qwen_tokenizer():
    """Qwen's byte-level BPE: every byte, then merges that build each word of QWEN_WORDS."""
    from transformers import Qwen2Tokenizer

    byte_char = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(byte_char.values())}
    merges: list[tuple[str, str]] = []
    for word in QWEN_WORDS:
        parts = [byte_char[b] for b in word.encode()]
        while len(parts) > 1:
            if (parts[0], parts[1]) not in merges:
                merges.append((parts[0], parts[1]))
            merged = parts[0] + parts[1]
            vocab.setdefault(merged, len(vocab))
            parts = [merged, *parts[2:]]
    for token in QWEN_SPECIAL:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL[1:]})
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


# -- text encoders ---------------------------------------------------------------------
def _clip(tokenizer, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or 1,
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _t5(tokenizer, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config)


def _vae(latent_channels: int, **extra):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=32,
        **extra,
    )


# -- pipelines ---------------------------------------------------------------------------
def build_tiny_sd3(folder: Path, name: str = "tiny-sd3.5") -> Path:
    """SD 3.5-shaped: two CLIPs with projections and a T5, an MMDiT, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    clip, t5 = clip_tokenizer(folder), t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=16,  # SD 3.5's 16 latent channels (its inpainting pipeline insists)
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,  # the two CLIPs' projections side by side
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=_vae(16, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=_clip(clip, projection=True),
        text_encoder_2=_clip(clip, projection=True),
        text_encoder_3=_t5(t5),
        tokenizer=clip,
        tokenizer_2=clip,
        tokenizer_3=t5,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    return _save(pipe, folder / name)


def build_tiny_flux(folder: Path, name: str = "tiny-flux-schnell") -> Path:
    """FLUX.1-shaped: CLIP (pooled) + T5, a double- and single-stream transformer on packed latents."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    clip, t5 = clip_tokenizer(folder), t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels, packed 2×2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    pipe = FluxPipeline(
        transformer=transformer,
        vae=_vae(4, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=_clip(clip, projection=False),
        text_encoder_2=_t5(t5),
        tokenizer=clip,
        tokenizer_2=t5,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    return _save(pipe, folder / name)


def build_tiny_z_image(folder: Path, name: str = "tiny-z-image-turbo") -> Path:
    """Z-Image-shaped: a Qwen3 text encoder (its second-to-last layer) and a single-stream DiT."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    tokenizer = qwen_tokenizer()
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=16,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # made with torch.empty: fixed so no NaN can come out of them
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(tokenizer),
            max_position_embeddings=1024,
        )
    )
    pipe = ZImagePipeline(
        transformer=transformer,
        vae=_vae(16, scaling_factor=0.3611, shift_factor=0.1159),
        text_encoder=encoder,
        tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    return _save(pipe, folder / name)


def build_tiny_qwen_image(folder: Path, name: str = "tiny-qwen-image") -> Path:
    """Qwen-Image-shaped: a Qwen2.5-VL text encoder, its own (video) VAE, an MMDiT."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    tokenizer = qwen_tokenizer()
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=24,
        z_dim=4,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    n = len(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            "vocab_size": n + 3,
            "bos_token_id": None,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16,
        vocab_size=n + 3,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        # The vision tokens are never in a text prompt; ids past the tokenizer's keep them apart.
        vision_start_token_id=n,
        vision_end_token_id=n + 1,
        vision_token_id=n + 2,
        image_token_id=n + 2,
        video_token_id=n + 2,
    )
    pipe = QwenImagePipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=Qwen2_5_VLForConditionalGeneration(config).eval(),
        tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    return _save(pipe, folder / name)


def _save(pipe, out: Path) -> Path:
    pipe.save_pretrained(out, safe_serialization=True)
    return out


# -- LoRAs -----------------------------------------------------------------------------
DENOISER_TARGETS = {
    "unet": ["to_q", "to_k", "to_v", "to_out.0"],
    "transformer": ["to_q", "to_k", "to_v"],
}


def make_lora(model: Path, out: Path, *, rank: int = 4, seed: int = 1) -> Path:
    """A LoRA for the saved pipeline at `model`, written to the file `out` (a
    `.safetensors`): random A and B (peft's default B is zero, which would do
    nothing) on the denoiser's attention projections."""
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(model)
    denoiser_name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    denoiser = getattr(pipe, denoiser_name)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=DENOISER_TARGETS[denoiser_name], init_lora_weights=False
    )
    denoiser.add_adapter(config)
    with torch.no_grad():
        for param_name, param in denoiser.named_parameters():
            if "lora_" in param_name:
                param.copy_(torch.randn_like(param) * 0.5)
    layers = get_peft_model_state_dict(denoiser)
    out.parent.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(out.parent, **{f"{denoiser_name}_lora_layers": layers}, weight_name=out.name)
    return out
