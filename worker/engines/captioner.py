"""/describe for the diffusers models: a captioning model the admin configures
(DESCRIBE_MODEL, a BLIP checkpoint through transformers; downloaded once like
checkpoints, or a local folder). Four captions: the most likely one (beam
search), then three sampled, each from its own seed (🔄 samples others)."""

from __future__ import annotations

import logging

import torch
from PIL import Image

logger = logging.getLogger(__name__)

MAX_NEW_TOKENS = 40
BEAMS = 3
TOP_P = 0.9
PROMPTS = 4


class Captioner:
    def __init__(self, source: str, device: str | torch.device = "cpu") -> None:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.device = torch.device(device)
        self.processor = BlipProcessor.from_pretrained(source)
        self.model = BlipForConditionalGeneration.from_pretrained(source).to(self.device).eval()
        logger.info("loaded the captioner %s for /describe", source)

    @torch.inference_mode()
    def describe(self, image: Image.Image, seeds: list[int]) -> list[str]:
        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt").to(self.device)
        captions = [self._text(self.model.generate(**inputs, num_beams=BEAMS, max_new_tokens=MAX_NEW_TOKENS))]
        for seed in list(seeds)[: PROMPTS - 1]:
            # Sampling draws from torch's global generator: seed it inside a fork, so
            # the caption depends on this seed alone and nothing else's randomness moves.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed)
                ids = self.model.generate(**inputs, do_sample=True, top_p=TOP_P, max_new_tokens=MAX_NEW_TOKENS)
            captions.append(self._text(ids))
        while len(captions) < PROMPTS:
            captions.append(captions[-1])
        return [c or "an image" for c in captions[:PROMPTS]]

    def _text(self, ids: torch.Tensor) -> str:
        return " ".join(self.processor.decode(ids[0], skip_special_tokens=True).split())
