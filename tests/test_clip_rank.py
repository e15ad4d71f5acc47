"""The CLIP ranker for real checkpoints (RANK_CLIP, worker/engines/clip_rank.py),
with a tiny random CLIP built from a config in code and saved as a model
folder (no download): it loads from the folder as an admin's would, scores
each candidate by the cosine of its image and the prompt, and best_of keeps
the four it ranks highest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

from shared.params import Params
from shared.settings import Settings
from tests.support.fake_engine import FakeEngine
from worker import best_of
from worker.engines.base import Request
from worker.engines.clip_rank import ClipRanker

WORDS = ["<pad>", "<unk>", "</s>", "a", "red", "blue", "circle", "square", "on", "background"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(WORDS), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=16, pad_token_id=0, bos_token_id=2, eos_token_id=2,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
        ),
        projection_dim=16,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(config).save_pretrained(folder)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # CLIP pools the text at its end token: without one every prompt would read as its first word.
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    ).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_scores_are_the_cosine_of_image_and_prompt(clip_dir: Path) -> None:
    ranker = ClipRanker(str(clip_dir))
    engine = FakeEngine()
    images = engine.generate(Request.text("a red circle", [1, 2, 3], 64, 64))
    scores = ranker.rank("a red circle", images)
    assert len(scores) == 3 and all(-1.0 <= s <= 1.0 for s in scores)
    assert len(set(round(s, 6) for s in scores)) == 3  # different images, different scores
    assert ranker.rank("a red circle", images) == scores  # deterministic
    assert ranker.rank("a blue square", images) != scores  # the text matters


def test_a_real_checkpoints_grid_keeps_the_four_clip_ranks_highest(clip_dir: Path) -> None:
    settings = dataclasses.replace(Settings(), rank_clip=str(clip_dir))
    engine = FakeEngine()  # no ranker of its own, as the diffusers engine
    req = Request.text("a red circle", [1, 2, 3, 4], 64, 64)
    picked = best_of.sample_grid(engine, req, settings, Params(), [], None)
    [sampled] = engine.requests
    scores = best_of.clip_ranker(str(clip_dir))("a red circle", engine.generate(sampled))
    want = [sampled.seeds[i] for i in sorted(range(8), key=lambda i: (-scores[i], i))[:4]]
    assert picked.kept_seeds == want
