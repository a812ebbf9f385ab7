"""A deterministic stand-in for the answer reader (unit tests of the reranked answer path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class KeywordReader:
    """P(answer) is ``high`` for a sentence containing any keyword (case-insensitive), else ``low``.

    Records every call, so tests can check that one question costs one batched call.
    """

    keywords: tuple[str, ...]
    high: float = 0.9
    low: float = 0.1
    threshold: float = 0.5
    calls: list[tuple[str, list[list[str]]]] = field(default_factory=list)

    def read(self, question: str, passages: Sequence[Sequence[str]]) -> list[np.ndarray]:
        self.calls.append((question, [list(p) for p in passages]))
        return [
            np.array([self.high if any(k.lower() in s.lower() for k in self.keywords) else self.low for s in p],
                     dtype=np.float32)
            for p in passages
        ]
