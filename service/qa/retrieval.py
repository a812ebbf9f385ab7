"""Passage retrieval: BM25, one or more dense encoders, and their fusion.

Modes:
- ``lexical``: BM25 only;
- ``dense``: the dense encoders (fused with each other when there are several);
- ``hybrid``: BM25 and every dense encoder, fused (``service.qa.fusion``).

Each passage keeps its rank and raw score under every signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.embedders import Embedder
from indexer.lexical import top_stable
from indexer.store import IndexData
from indexer.store.format import row_scores
from indexer.store.records import document_headers, records_at
from service.qa.fusion import FusionConfig, fuse
from service.qa.query import Query
from service.qa.types import Mode, Passage

LEXICAL = "bm25"
#: How deep each signal's ranked list goes before fusion.
CANDIDATE_DEPTH = 100
#: How many chunks (by chunk cosine) get their best-sentence cosine checked.
SENTENCE_POOL = 300
#: HNSW's search breadth, as a multiple of the pool it must return (600: recall@10 0.92 against
#: exact at 10^5 fake vectors, 1.9 ms; 300: 0.88, 1.1 ms; bench/scale.py).
HNSW_EF_FACTOR = 2
#: How many chunks a fast-scan PQ or IVF index (``indexer.store.DenseIndexConfig``) returns for rescoring
#: with the stored vectors, of which the best ``SENTENCE_POOL`` are kept (1,000: recall@10 against exact
#: 0.966 at 10^5 fake vectors, 0.85 ms; 300: 0.948, 0.57 ms; bench/scale.py).
PQ_RESCORE = 1000
#: The share of an IVF index's lists a query probes. Chosen on real vectors (``make bench-ann-recall``:
#: USE-m3 over bench texts, the best PQ_RESCORE rescored): recall@10 against exact 0.833 / 0.895 /
#: **0.952** / 0.983 for 1/16, 1/8, 1/4, 1/2 of 1,024 lists at 10^5 chunks (0.3 / 0.3 / 0.5 / 0.8 ms of
#: FAISS a query, one thread), 0.870 / 0.925 / 0.962 / 0.986 of 2,048 at 4·10^5. The fake encoder's
#: unclustered vectors understate it (0.864 at 1/16 and 0.888 at 1/4 of 4,096 at 10^6).
IVF_PROBE_SHARE = 1 / 4
#: ...but never fewer lists than this: a small IVF index is searched (nearly) whole...
IVF_MIN_PROBES = 16
#: ...nor more than this. What recall needs grows more slowly than the list count (about 4·sqrt(N)):
#: 512 probes gave 0.983, 0.962 and **0.957** at 10^5, 4·10^5 and 10^6 chunks, where a quarter of
#: 4,096 lists at 10^6 gave 0.979 in 5.1 instead of 3.1 ms. Past about 10^6 chunks recall at this cap
#: would keep slipping below 0.95 (not measured): raise it with the index.
IVF_MAX_PROBES = 512


def ivf_probes(lists: int, share: float = IVF_PROBE_SHARE, most: int = IVF_MAX_PROBES) -> int:
    """How many of an IVF index's ``lists`` a query probes: ``share`` of them, at least IVF_MIN_PROBES and at most ``most``."""
    return min(lists, max(IVF_MIN_PROBES, min(most, round(lists * share))))


def _scans_all_codes(faiss_index: Any) -> bool:
    """Whether ``faiss_index`` scores every row's PQ codes (``IndexPQFastScan``): it takes no search parameters."""
    import faiss

    return isinstance(faiss_index, faiss.IndexFastScan)


def _search_params(faiss_index: Any, live: np.ndarray | None) -> tuple[Any, ...]:
    """FAISS search parameters: HNSW's breadth or IVF's probes, and a filter passing only current rows
    (a delta build's); the first item is what ``search`` takes, the rest the memory it points into."""
    import faiss

    if _scans_all_codes(faiss_index):
        return (None,)  # FAISS refuses parameters here: masked rows are dropped after the search
    params: Any
    if isinstance(faiss_index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = ivf_probes(faiss_index.nlist)
    elif hasattr(faiss_index, "hnsw"):  # an approximate index must look wider than the pool it returns
        faiss_index.hnsw.efSearch = max(faiss_index.hnsw.efSearch, HNSW_EF_FACTOR * SENTENCE_POOL)
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = faiss_index.hnsw.efSearch
    else:
        params = faiss.SearchParameters()
    if live is None:
        return (params,)
    bits = np.packbits(live, bitorder="little")
    # The selector reads ``bits`` and the parameters hold the selector: all three are kept together.
    selector = faiss.IDSelectorBitmap(len(live), faiss.swig_ptr(bits))
    params.sel = selector
    return params, bits, selector


@dataclass(frozen=True)
class _DenseSearch:
    """How one encoder's FAISS index is searched: decided once when the retriever is made, not per query."""

    #: "exact" (one product over FAISS's float32 storage), "graph" (HNSW returns the pool itself) or
    #: "codes" (PQ scan or IVF lists return PQ_RESCORE rows to rescore).
    kind: str
    #: FAISS search parameters and the memory they point into (kept alive together).
    params: tuple[Any, ...]
    #: A full PQ scan cannot skip masked rows: it fetches this many times more and drops them after.
    widen: float = 1.0

    @classmethod
    def of(cls, faiss_index: Any, live: np.ndarray | None) -> _DenseSearch:
        """The plan for ``faiss_index`` with these current rows."""
        import faiss

        if isinstance(faiss_index, faiss.IndexFlat):
            return cls("exact", (None,))
        params = _search_params(faiss_index, live)
        if hasattr(faiss_index, "hnsw"):
            return cls("graph", params)
        if live is not None and _scans_all_codes(faiss_index):
            return cls("codes", params, len(live) / max(1, int(live.sum())))
        return cls("codes", params)


class Retriever:
    """Searches one loaded index with the embedders it was built with."""

    def __init__(self, index: IndexData, embedders: Sequence[Embedder], fusion: FusionConfig) -> None:
        self.index = index
        self.embedders = list(embedders)
        self.fusion = fusion
        self._dense = {
            embedder.id: _DenseSearch.of(index.faiss_index(embedder.id), index.live)
            for embedder in self.embedders
            if embedder.id in index.chunk_vectors
        }

    def signals(self, mode: Mode) -> list[str]:
        """Signal names used by ``mode``."""
        dense = [e.id for e in self.embedders]
        if mode == "lexical":
            return [LEXICAL]
        if mode == "dense":
            return dense
        return [LEXICAL, *dense]

    def _ranked(self, signal: str, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``CANDIDATE_DEPTH`` chunks under one signal."""
        n = len(self.index.chunks)
        depth = min(CANDIDATE_DEPTH, n)
        if depth == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if signal == LEXICAL:
            # Only chunks sharing a term are lexical matches; the common terms' postings are searched for
            # the rarer terms' matches, not walked (indexer.lexical.top_matches).
            return self.index.lexical.top(query.tokens, depth)
        # A chunk's dense score is the better of its own cosine and that of its best
        # sentence: a one-sentence fact inside a long passage is otherwise diluted.
        vector = query.vectors[signal]
        pool = min(n, max(depth, SENTENCE_POOL))
        rows_, scores_ = self._dense_pool(signal, vector.astype(np.float32), pool)
        # Only the pool's sentences are scored (a few hundred rows), never the whole matrix:
        # at a million chunks that product was gigabytes read per query.
        sentence_rows, owner = self.index.sentence_spans(rows_)
        own = np.full(len(rows_), -np.inf, dtype=np.float32)
        if len(sentence_rows):
            sentence_scores = row_scores(self.index.sentence_vectors[signal], sentence_rows, vector)
            np.maximum.at(own, owner, sentence_scores.astype(np.float32, copy=False))
        best = np.maximum(scores_.astype(np.float32), own)
        order = np.argsort(-best, kind="stable")[:depth]
        return rows_[order], best[order]

    def nearest(self, signal: str, vector: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` chunks nearest ``vector`` under encoder ``signal``, as dense retrieval finds them
        (through PQ codes, IVF or HNSW where the index uses them, with the pool's width; ``bench/scale.py``
        measures its recall)."""
        pool = min(len(self.index.chunks), max(k, CANDIDATE_DEPTH, SENTENCE_POOL))
        return self._dense_pool(signal, vector.astype(np.float32), pool)[0][:k]

    def _dense_pool(self, signal: str, vector: np.ndarray, pool: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``pool`` chunks nearest ``vector``: rows and cosines, best first (current rows only)."""
        plan = self._dense[signal]
        live = self.index.live
        if plan.kind == "exact":
            # Exact search as one matrix-vector product over FAISS's own storage and a partial sort:
            # FAISS's flat search keeps a heap of the pool (300) per query and was 3.4x slower at
            # 10^5 chunks (24 against 7 ms, one thread; bench/scale.py).
            scores = self.index.chunk_vectors[signal] @ vector
            if live is not None:
                scores[~live] = -np.inf
            rows = top_stable(scores, pool)
            if live is not None:
                rows = rows[np.isfinite(scores[rows])]
            return rows, scores[rows]
        # HNSW returns the pool itself (its breadth is set wider); PQ codes and IVF lists return PQ_RESCORE
        # rows to rescore. A full PQ scan cannot skip masked rows: it returns that many more, in proportion.
        wanted = pool if plan.kind == "graph" else int(np.ceil(max(pool, PQ_RESCORE) * plan.widen))
        faiss_index = self.index.faiss_index(signal)
        _, found = faiss_index.search(vector[None, :], min(wanted, faiss_index.ntotal), params=plan.params[0])
        rows = found[0][found[0] >= 0].astype(np.int64)
        if plan.widen != 1.0 and live is not None:
            rows = rows[live[rows]]
        # The approximate indexes rank by quantised codes (indexer.store.format.DenseIndexConfig): their rows
        # are rescored with the stored vectors (a few hundred to a thousand rows read), so the cosines returned
        # are those of the vectors, within the int8 rounding of about 1e-3.
        scores = row_scores(self.index.chunk_vectors[signal], rows, vector)
        order = np.argsort(-scores, kind="stable")[:pool]
        return rows[order], scores[order]

    def search(self, query: Query, top_k: int) -> list[Passage]:
        """The ``top_k`` passages for an analysed query, best first."""
        ranked = {}
        for signal in self.signals(query.mode):
            rows, scores = self._ranked(signal, query)
            ranked[signal] = (rows.tolist(), scores)
        passages = []
        hits = fuse(ranked, self.fusion, depth=top_k)
        # One read for all the hits' records, one for their documents' titles and sources (without the text).
        chunks = records_at(self.index.chunks, [h.key for h in hits])
        documents = document_headers(self.index.documents, [c.doc_id for c in chunks])
        for hit, chunk, doc in zip(hits, chunks, documents, strict=True):
            passages.append(
                Passage.of_chunk(chunk, hit.key, doc.title, doc.source, hit.score, hit.ranks, hit.signal_scores)
            )
        return passages
