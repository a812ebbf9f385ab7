"""A deterministic stand-in for the cross-encoder (unit tests of the reranked answer path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from service.qa.reranker.combiner import Candidate


@dataclass
class KeywordScorer:
    """P(answer) is ``high`` for a sentence containing any keyword (case-insensitive), else ``low``.

    Records every call, so tests can check that one question costs one batched call.
    """

    keywords: tuple[str, ...]
    high: float = 0.9
    low: float = 0.1
    threshold: float = 0.5
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        sentences = [c.text for c in candidates]
        self.calls.append((question, sentences))
        hits = [any(k.lower() in s.lower() for k in self.keywords) for s in sentences]
        return np.array([self.high if h else self.low for h in hits], dtype=np.float32)
