"""A deterministic stand-in for the answer reader (unit tests of the reranked answer path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from service.qa.answering import Cascade, ReaderScores


@dataclass
class KeywordReader:
    """P(answer) is ``high`` for a sentence containing any keyword (case-insensitive), else ``low``;
    P(answerable) is the best sentence's.

    Records every call, so tests can check that one question costs one batched call.
    """

    keywords: tuple[str, ...]
    high: float = 0.9
    low: float = 0.1
    threshold: float = 0.5
    #: P(answerable) reported whatever the sentences score (``None``: the best sentence's).
    answerable: float | None = None
    #: Abstention thresholds by question language (``threshold`` for any other).
    abstain: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, list[list[str]]]] = field(default_factory=list)
    #: The ``foreign`` flags of every call.
    foreign: list[list[list[bool]] | None] = field(default_factory=list)

    def read(
        self,
        question: str,
        passages: Sequence[Sequence[str]],
        foreign: Sequence[Sequence[bool]] | None = None,
        cascade: Cascade | None = None,
    ) -> ReaderScores:
        """Scores every passage in one call, or, with a ``cascade``, the first ones and the rest
        only when none of theirs reaches ``cascade.confident`` (as the real reader does)."""
        if cascade is not None and cascade.first < len(passages):
            first = self.read(question, passages[: cascade.first], foreign)
            if cascade.stops(first.sentences):
                return first
            self.calls.pop()
        self.calls.append((question, [list(p) for p in passages]))
        self.foreign.append(None if foreign is None else [list(f) for f in foreign])
        sentences = [
            np.array([self.high if any(k.lower() in s.lower() for k in self.keywords) else self.low for s in p],
                     dtype=np.float32)
            for p in passages
        ]
        best = max((float(p.max()) for p in sentences if len(p)), default=0.0)
        return ReaderScores(sentences, best if self.answerable is None else self.answerable)

    def abstain_threshold(self, lang: str) -> float:
        return self.abstain.get(lang, self.threshold)
