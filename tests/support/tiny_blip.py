"""A tiny, randomly initialised BLIP captioner built from configs in code (no
download), with a WordPiece vocabulary written here: what DESCRIBE_MODEL points
at in tests. Its captions are random words; what is tested is the path."""

from __future__ import annotations

from pathlib import Path

WORDS = ["a", "red", "blue", "green", "circle", "square", "star", "on", "background", "picture", "of", "the"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_blip(folder: Path) -> Path:
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    torch.manual_seed(0)
    out = folder / "tiny-blip"
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True)
    tokenizer.bos_token = "[CLS]"  # BLIP's text decoder starts from [CLS] as its BOS (as the real one's tokenizer)
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    text = {"vocab_size": len(SPECIAL) + len(WORDS), "hidden_size": 32, "intermediate_size": 37,
            "num_hidden_layers": 2, "num_attention_heads": 4, "encoder_hidden_size": 32,
            "max_position_embeddings": 64, "bos_token_id": 2, "sep_token_id": 3, "eos_token_id": 3, "pad_token_id": 0}  # fmt: skip
    config = BlipConfig(vision_config=vision, text_config=text, projection_dim=16)
    model = BlipForConditionalGeneration(config).eval()
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
