"""Retrieval, answer and abstention metrics as pure functions (unit-tested on hand-computed cases)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_MARKDOWN = re.compile(r"[*_#`]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, drop markdown markers and collapse whitespace (for evidence matching)."""
    return _SPACE.sub(" ", _MARKDOWN.sub("", text)).strip().lower()


def is_relevant(passage_text: str, evidence: Sequence[str]) -> bool:
    """A passage is relevant when it contains any evidence string (after normalisation)."""
    haystack = normalise(passage_text)
    return any(normalise(e) in haystack for e in evidence if e.strip())


def recall_at_k(relevance: Sequence[bool], k: int) -> float:
    """1.0 if a relevant item is in the first ``k`` (the gold set has one fact per question), else 0.0."""
    return 1.0 if any(relevance[:k]) else 0.0


def reciprocal_rank(relevance: Sequence[bool], k: int = 10) -> float:
    """1/rank of the first relevant item within ``k``; 0.0 if none."""
    for rank, relevant in enumerate(relevance[:k], start=1):
        if relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(gains: Sequence[float], k: int, ideal: Sequence[float] | None = None) -> float:
    """nDCG@k with linear gains: DCG = sum(g_i / log2(i + 1)); the ideal ranks all gains (or ``ideal``) first."""
    def dcg(values: Sequence[float]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(values[:k]))

    best = dcg(sorted(ideal if ideal is not None else gains, reverse=True))
    return dcg(gains) / best if best > 0 else 0.0


def answer_hit(answer: str, acceptable: Sequence[str]) -> bool:
    """The answer contains at least one acceptable term (case- and markdown-insensitive)."""
    text = normalise(answer)
    return any(normalise(term) in text for term in acceptable)


def citation_precision(cited_texts: Sequence[str], evidence: Sequence[str]) -> float:
    """Share of cited passages that contain evidence (1.0 when nothing is cited)."""
    if not cited_texts:
        return 1.0
    return sum(is_relevant(t, evidence) for t in cited_texts) / len(cited_texts)


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of abstaining on unanswerable items, and false abstention on answerable ones."""
    pairs = list(zip(abstained, answerable, strict=True))
    true_pos = sum(1 for a, ok in pairs if a and not ok)
    predicted = sum(1 for a, _ in pairs if a)
    unanswerable = sum(1 for _, ok in pairs if not ok)
    answerable_n = sum(1 for _, ok in pairs if ok)
    false_abstain = sum(1 for a, ok in pairs if a and ok)
    return {
        "abstain_precision": true_pos / predicted if predicted else 1.0,
        "abstain_recall": true_pos / unanswerable if unanswerable else 1.0,
        "false_abstention": false_abstain / answerable_n if answerable_n else 0.0,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
