"""A tiny, randomly initialised Hunyuan-DiT pipeline, built from configs in code
and saved as a diffusers folder (no download): the family whose first text
encoder is Chinese. Its bilingual CLIP is a BERT read with a WordPiece
vocabulary written here, which holds the characters of a few Chinese prompts:
BERT's tokenizer splits Chinese into single characters, so `夜晚的城市天际线`
is eight known tokens. Its second encoder is a T5 (tiny_families' Unigram)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.support.tiny_families import _save, _t5, t5_tokenizer

CHINESE_CHARACTERS = "夜晚的城市天际线红色圆形蓝背景山水画"
ENGLISH_WORDS = ["a", "red", "blue", "circle", "square", "on", "background", "night", "city"]
BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_LENGTH = 77  # Hunyuan-DiT's CLIP reads 77 tokens


def bert_tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = BERT_SPECIAL + list(dict.fromkeys(CHINESE_CHARACTERS)) + ENGLISH_WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizer(str(folder / "vocab.txt"), model_max_length=BERT_LENGTH)


def _vae():
    """Four blocks: Hunyuan-DiT's pipeline places its rotary grid at 1/8 of the image size."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )


def build_tiny_hunyuan_dit(folder: Path, name: str = "tiny-hunyuan-dit") -> Path:
    from diffusers import DDPMScheduler, HunyuanDiT2DModel, HunyuanDiTPipeline
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = bert_tokenizer(folder / "_bert")
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=BERT_LENGTH + 3,
            pad_token_id=tokenizer.pad_token_id,
        ),
        add_pooling_layer=False,
    )
    t5_tok = t5_tokenizer()
    transformer = HunyuanDiT2DModel(
        sample_size=16,
        num_layers=2,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=3,
        in_channels=4,
        cross_attention_dim=32,
        cross_attention_dim_t5=32,
        pooled_projection_dim=16,
        hidden_size=24,
        activation_fn="gelu-approximate",
    )
    pipe = HunyuanDiTPipeline(
        transformer=transformer,
        vae=_vae(),
        scheduler=DDPMScheduler(),
        text_encoder=bert.eval(),
        tokenizer=tokenizer,
        text_encoder_2=_t5(t5_tok).eval(),
        tokenizer_2=t5_tok,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _save(pipe, folder / name)
