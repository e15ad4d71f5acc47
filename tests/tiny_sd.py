"""A tiny, randomly initialised Stable Diffusion pipeline built from configs
in code — no download. The CLIP tokenizer is built from a vocabulary written
here (diffusers' own tiny tests fetch one from the hub)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ["a", "red", "blue", "green", "circle", "square", "on", "background", "star", "yellow", "black", "white"]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def write_tokenizer(folder: Path) -> None:
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    # Byte-level BPE: every single byte character plus whole words with "</w>".
    chars = list(bytes_to_unicode().values())
    vocab_tokens = chars + [c + "</w>" for c in chars] + [w + "</w>" for w in WORDS]
    vocab_tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_tokens))}
    merges = ["#version: 0.2"]
    for w in WORDS:
        # merges building each word left to right
        parts = [*w[:-1], w[-1] + "</w>"]
        while len(parts) > 1:
            merges.append(f"{parts[0]} {parts[1]}")
            merged = parts[0] + parts[1]
            vocab.setdefault(merged, len(vocab))
            parts = [merged, *parts[2:]]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)


def build_tiny_sd(folder: Path) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    write_tokenizer(folder / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tok")
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            pad_token_id=tokenizer.pad_token_id or 1,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
        )
    )
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = folder / "tiny-sd"
    pipe.save_pretrained(out, safe_serialization=True)
    return out
