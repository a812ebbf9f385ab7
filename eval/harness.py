"""Run the gold set against an engine, per retrieval mode and encoder set, and summarise.

The same engine answers every mode, so modes are compared on the same index; encoder
sets are compared by building one index per set (cached under a work directory).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.metrics import (
    abstention_scores,
    answer_hit,
    citation_precision,
    is_relevant,
    ndcg_at_k,
    percentile,
    recall_at_k,
    reciprocal_rank,
)
from service.qa.engine import Engine

K_VALUES = (1, 3, 5, 10)


@dataclass(frozen=True)
class GoldItem:
    """One gold question (see eval/README.md for the format)."""

    id: str
    question: str
    lang: str
    answerable: bool
    evidence: list[dict[str, str]]
    answer_any: list[str]
    cross_lingual: bool = False
    kind: str = "factoid"

    @property
    def evidence_texts(self) -> list[str]:
        """The evidence strings alone."""
        return [e["text"] for e in self.evidence]


def load_gold(path: Path) -> list[GoldItem]:
    """Read a gold JSONL file."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                items.append(GoldItem(**{k: record[k] for k in GoldItem.__dataclass_fields__ if k in record}))
    return items


@dataclass
class ItemResult:
    """Everything measured for one question in one mode."""

    id: str
    config: str
    mode: str
    lang: str
    cross_lingual: bool
    answerable: bool
    relevance: list[bool]
    abstained: bool
    confidence: float
    answer_hit: bool | None
    citation_precision: float | None
    citations_exact: bool
    latency_ms: float
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def citations_exact(engine: Engine, citations: Iterable[Any]) -> bool:
    """Every citation satisfies ``document_text[start:end] == text`` and its highlight lies inside it."""
    for c in citations:
        text = engine.document(c.doc_id).text
        if text[c.start : c.end] != c.text or not (c.start <= c.highlight.start < c.highlight.end <= c.end):
            return False
    return True


def evaluate(engine: Engine, items: Sequence[GoldItem], modes: Sequence[str], config: str) -> list[ItemResult]:
    """Answer and search every item in every mode."""
    results = []
    for mode in modes:
        for item in items:
            # One encoding serves both the retrieval metrics (top 10) and the answer.
            started = time.perf_counter()
            answer, passages = engine.ask_with_passages(item.question, top_k=max(K_VALUES), mode=mode)
            latency = (time.perf_counter() - started) * 1000
            relevance = [is_relevant(p.text, item.evidence_texts) for p in passages]
            cited = [c.text for c in answer.citations]
            results.append(
                ItemResult(
                    id=item.id,
                    config=config,
                    mode=mode,
                    lang=item.lang,
                    cross_lingual=item.cross_lingual,
                    answerable=item.answerable,
                    relevance=relevance,
                    abstained=answer.abstained,
                    confidence=answer.confidence,
                    answer_hit=(not answer.abstained and answer_hit(answer.answer, item.answer_any))
                    if item.answerable
                    else None,
                    citation_precision=citation_precision(cited, item.evidence_texts)
                    if item.answerable and not answer.abstained
                    else None,
                    citations_exact=citations_exact(engine, answer.citations),
                    latency_ms=latency,
                    answer=answer.answer,
                )
            )
    return results


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarise(results: Sequence[ItemResult]) -> dict[str, float]:
    """All metrics for one group of results."""
    answerable = [r for r in results if r.answerable]
    out: dict[str, float] = {"n": float(len(results)), "n_answerable": float(len(answerable))}
    for k in K_VALUES:
        out[f"recall@{k}"] = _mean([recall_at_k(r.relevance, k) for r in answerable])
    out["mrr@10"] = _mean([reciprocal_rank(r.relevance, 10) for r in answerable])
    # Binary gains; the ideal ranking puts one relevant passage first (one fact per question).
    out["ndcg@10"] = _mean([ndcg_at_k([float(x) for x in r.relevance], 10) for r in answerable])
    hits = [r.answer_hit for r in answerable if r.answer_hit is not None]
    out["answer_hit"] = _mean([float(h) for h in hits])
    precisions = [r.citation_precision for r in answerable if r.citation_precision is not None]
    out["citation_precision"] = _mean(precisions)
    out["citation_exactness"] = _mean([float(r.citations_exact) for r in results])
    out.update(abstention_scores([r.abstained for r in results], [r.answerable for r in results]))
    latencies = [r.latency_ms for r in results]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    return out


def breakdown(results: Sequence[ItemResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per (config, mode), overall and split by language and by cross-lingual vs same-language."""
    groups: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        key = f"{r.config} | {r.mode}"
        groups[key].append(r)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for key, rows in groups.items():
        table[key] = {
            "all": summarise(rows),
            "lang=en": summarise([r for r in rows if r.lang == "en"]),
            "lang=id": summarise([r for r in rows if r.lang == "id"]),
            "cross-lingual": summarise([r for r in rows if r.cross_lingual or not r.answerable]),
            "same-language": summarise([r for r in rows if not r.cross_lingual or not r.answerable]),
        }
    return table


def results_json(results: Sequence[ItemResult]) -> list[dict[str, Any]]:
    """Per-item results as plain dicts."""
    return [asdict(r) for r in results]
