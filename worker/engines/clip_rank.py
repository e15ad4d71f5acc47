"""Ranks a real checkpoint's candidates by an image-text model: CLIP through
transformers, from the folder or hub id the admin sets in `RANK_CLIP`
(worker/best_of.py calls it). The score is the cosine between the prompt's
and each image's projected embeddings, CLIP's own notion of "this picture
shows that text"."""

from __future__ import annotations

import logging

import torch
from PIL import Image

logger = logging.getLogger(__name__)


class ClipRanker:
    def __init__(self, source: str, device: str = "cpu", model=None, tokenizer=None, image_processor=None) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.device = torch.device(device)
        self.model = (model or CLIPModel.from_pretrained(source)).eval().to(self.device)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(source)
        self.image_processor = image_processor or AutoImageProcessor.from_pretrained(source)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        logger.info("ranking candidates with CLIP from %s", source)

    @torch.no_grad()
    def rank(self, prompt: str, images: list[Image.Image]) -> list[float]:
        text = self.tokenizer(
            [prompt], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        pixels = self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        text_emb = _tensor(
            self.model.get_text_features(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
        )
        image_emb = _tensor(self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device)))
        text_emb = torch.nn.functional.normalize(text_emb, dim=-1)
        image_emb = torch.nn.functional.normalize(image_emb, dim=-1)
        return (image_emb @ text_emb.T).squeeze(-1).tolist()


def _tensor(out: object) -> torch.Tensor:
    """transformers 5 returns a model output where 4 returned the tensor."""
    if isinstance(out, torch.Tensor):
        return out
    for name in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"unexpected CLIP output {type(out).__name__}")
