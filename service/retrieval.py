"""Passage retrieval: BM25, one or more dense encoders, and their fusion.

Modes:
- ``lexical``: BM25 only;
- ``dense``: the dense encoders (fused with each other when there are several);
- ``hybrid``: BM25 and every dense encoder, fused.

Fusion is reciprocal-rank fusion by default (robust to the very different score scales of
BM25, E5 and USE), with a configurable weight per signal; ``score`` fusion instead sums
min-max-normalised scores. Each passage keeps its rank under every signal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.chunks import Chunk
from indexer.embedders import Embedder
from indexer.lexical import Analyzer
from indexer.settings import Mode
from indexer.store import IndexData

LEXICAL = "bm25"
#: How deep each signal's ranked list goes before fusion.
CANDIDATE_DEPTH = 100
#: How many chunks (by chunk cosine) get their best-sentence cosine checked.
SENTENCE_POOL = 1000


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and its rank (1-based) under each signal."""

    chunk: Chunk
    row: int
    title: str
    source: str
    score: float
    ranks: dict[str, int | None]
    signal_scores: dict[str, float]

    @property
    def doc_id(self) -> str:
        """Document the passage comes from."""
        return self.chunk.doc_id

    @property
    def chunk_id(self) -> str:
        """Chunk id."""
        return self.chunk.chunk_id

    @property
    def text(self) -> str:
        """Exact passage text: ``document.text[start:end]``."""
        return self.chunk.text

    def to_dict(self) -> dict[str, object]:
        """JSON form, shared by ``tanya search --json`` and ``GET /v1/search``."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "section": self.chunk.section,
            "lang": self.chunk.lang,
            "score": round(self.score, 6),
            "ranks": dict(self.ranks),
            "signal_scores": {k: round(v, 6) for k, v in self.signal_scores.items()},
        }


@dataclass
class QueryAnalysis:
    """Everything computed once from the query and reused by the answer step."""

    text: str
    tokens: list[str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    encoder_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FusionConfig:
    """How signals are combined."""

    method: str = "rrf"
    rrf_k: int = 60
    weights: Mapping[str, float] = field(default_factory=dict)

    def weight(self, signal: str) -> float:
        """Weight of ``signal`` (1.0 unless configured)."""
        return float(self.weights.get(signal, 1.0))


class Retriever:
    """Searches one loaded index with the embedders it was built with."""

    def __init__(
        self, index: IndexData, embedders: Sequence[Embedder], analyzer: Analyzer, fusion: FusionConfig
    ) -> None:
        self.index = index
        self.embedders = list(embedders)
        self.analyzer = analyzer
        self.fusion = fusion

    def signals(self, mode: Mode) -> list[str]:
        """Signal names used by ``mode``."""
        dense = [e.id for e in self.embedders]
        if mode == "lexical":
            return [LEXICAL]
        if mode == "dense":
            return dense
        return [LEXICAL, *dense]

    def analyse(self, query: str, mode: Mode) -> QueryAnalysis:
        """Tokenise and embed the query once for every signal ``mode`` needs."""
        analysis = QueryAnalysis(text=query, tokens=self.analyzer.analyse_query(query))
        if mode != "lexical":
            started = time.perf_counter()
            for embedder in self.embedders:
                one = time.perf_counter()
                analysis.vectors[embedder.id] = embedder.embed_queries([query])[0]
                analysis.encoder_ms[embedder.id] = (time.perf_counter() - one) * 1000
            analysis.timings_ms["embed"] = (time.perf_counter() - started) * 1000
        return analysis

    def _ranked(self, signal: str, analysis: QueryAnalysis) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``CANDIDATE_DEPTH`` chunks under one signal."""
        n = len(self.index.chunks)
        depth = min(CANDIDATE_DEPTH, n)
        if depth == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if signal == LEXICAL:
            scores = self.index.lexical.scores(analysis.tokens)
            order = np.argsort(-scores, kind="stable")[:depth]
            keep = scores[order] > 0  # a chunk sharing no term is not a lexical match
            return order[keep], scores[order][keep]
        # A chunk's dense score is the better of its own cosine and that of its best
        # sentence: a one-sentence fact inside a long passage is otherwise diluted.
        query = analysis.vectors[signal]
        pool = min(n, max(depth, SENTENCE_POOL))
        chunk_scores, rows = self.index.faiss_index(signal).search(query[None, :].astype(np.float32), pool)
        valid = rows[0] >= 0
        rows_, scores_ = rows[0][valid].astype(np.int64), chunk_scores[0][valid]
        sentence_scores = self.index.sentence_vectors[signal] @ query
        best = np.array(
            [
                max(float(score), float(sentence_scores[self.index.sentence_rows(self.index.chunks[row])].max()))
                for row, score in zip(rows_.tolist(), scores_.tolist(), strict=True)
            ],
            dtype=np.float32,
        )
        order = np.argsort(-best, kind="stable")[:depth]
        return rows_[order], best[order]

    def search(self, analysis: QueryAnalysis, mode: Mode, top_k: int) -> list[Passage]:
        """The ``top_k`` passages for an analysed query, best first."""
        started = time.perf_counter()
        ranked = {signal: self._ranked(signal, analysis) for signal in self.signals(mode)}
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int | None]] = {}
        raw: dict[int, dict[str, float]] = {}
        for signal, (rows, scores) in ranked.items():
            weight = self.fusion.weight(signal)
            if self.fusion.method == "score" and len(scores):
                lo, hi = float(scores.min()), float(scores.max())
                normalised = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
            for rank, row in enumerate(rows.tolist(), start=1):
                if self.fusion.method == "score":
                    contribution = weight * float(normalised[rank - 1])
                else:
                    contribution = weight / (self.fusion.rrf_k + rank)
                fused[row] = fused.get(row, 0.0) + contribution
                ranks.setdefault(row, {})[signal] = rank
                raw.setdefault(row, {})[signal] = float(scores[rank - 1])
        best = sorted(fused, key=lambda r: (-fused[r], r))[:top_k]
        passages = []
        for row in best:
            chunk = self.index.chunks[row]
            doc = self.index.documents[chunk.doc_id]
            passages.append(
                Passage(
                    chunk=chunk,
                    row=row,
                    title=doc.title,
                    source=doc.source,
                    score=fused[row],
                    ranks={s: ranks[row].get(s) for s in ranked},
                    signal_scores=raw[row],
                )
            )
        analysis.timings_ms["retrieve"] = (time.perf_counter() - started) * 1000
        return passages
