"""Ranked runs over a flat corpus (one passage per document) for the public benchmarks.

A *run* maps each query id to its ranked ``[(doc_id, score), ...]``. Runs come from BM25,
from a dense encoder (embeddings cached on disk, keyed by corpus hash and encoder), from
reciprocal-rank fusion of several runs (the product's ``fuse``), or from the product's own
retriever over the corpus (``product_run``). The first three reproduce published
baselines with their published settings (BM25 k1 1.5, the bm25s English tokenizer); the
last measures what Tanya itself does (its analyser, BM25 k1 1.2, dense best-of-chunk-and-
sentence scores, RRF). Scoring follows BEIR/pytrec_eval: nDCG@k with graded
gains and the ideal ranking of all judged-relevant documents; recall@k as the share of the
relevant documents retrieved.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics import ndcg_at_k
from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.embedders import Embedder, embed_in_batches
from indexer.language import detect_language
from indexer.lexical import Analyzer, LexicalIndex
from indexer.store import IndexData
from service.qa.fusion import FusionConfig, fuse
from service.qa.query import QueryAnalyser
from service.qa.retrieval import Retriever
from service.qa.types import Mode

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FlatCorpus:
    """Documents and queries of a retrieval benchmark."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: Qrels

    @property
    def fingerprint(self) -> str:
        """Hash of the corpus content (the embedding cache key)."""
        digest = hashlib.sha256()
        for doc_id, text in zip(self.doc_ids, self.doc_texts, strict=True):
            digest.update(doc_id.encode())
            digest.update(b"\0")
            digest.update(text.encode())
            digest.update(b"\1")
        return digest.hexdigest()[:16]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first."""
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def bm25_run(
    corpus: FlatCorpus,
    tokenize: Callable[[list[str]], list[list[str]]],
    k: int = 1000,
    method: str = "lucene",
    k1: float = 1.5,
    b: float = 0.75,
) -> Run:
    """BM25 (bm25s) over pre-tokenised documents and queries."""
    import bm25s

    retriever = bm25s.BM25(method=method, k1=k1, b=b)
    retriever.index(tokenize(corpus.doc_texts), show_progress=False)
    run: Run = {}
    for qid, tokens in zip(corpus.query_ids, tokenize(corpus.query_texts), strict=True):
        ids = retriever.get_tokens_ids(tokens)
        if not ids:
            run[qid] = []
            continue
        scores = np.asarray(retriever.get_scores_from_ids(ids), dtype=np.float32)
        best = top_k(scores, k)
        run[qid] = [(corpus.doc_ids[i], float(scores[i])) for i in best if scores[i] > 0]
    return run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def embed_corpus(
    corpus: FlatCorpus,
    embedder: Embedder,
    cache_dir: Path,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> np.ndarray:
    """Passage embeddings of the whole corpus, cached by corpus fingerprint, encoder and version."""
    cache = cache_dir / f"{corpus.name}-{corpus.fingerprint}-{_slug(embedder.id)}-{_slug(embedder.version)}.npy"
    if cache.exists():
        vectors = np.load(cache)
        if vectors.shape == (len(corpus.doc_ids), embedder.dim):
            return vectors
    total = len(corpus.doc_texts)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    vectors = embed_in_batches(embedder, corpus.doc_texts, batch_size, tick).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.replace(cache)
    return vectors


def dense_run(corpus: FlatCorpus, embedder: Embedder, doc_vectors: np.ndarray, k: int = 1000, batch_size: int = 64) -> Run:
    """Exact inner-product search of every query against the cached passage vectors."""
    run: Run = {}
    for start in range(0, len(corpus.query_texts), batch_size):
        queries = embedder.embed_queries(corpus.query_texts[start : start + batch_size])
        scores = queries @ doc_vectors.T
        for offset, row in enumerate(scores):
            best = top_k(row, k)
            run[corpus.query_ids[start + offset]] = [(corpus.doc_ids[i], float(row[i])) for i in best]
    return run


def rrf(runs: Sequence[Run], k: int = 60, weights: Sequence[float] | None = None, depth: int = 1000) -> Run:
    """Reciprocal-rank fusion (the product's :func:`~service.qa.fusion.fuse`): score = sum of weight / (k + rank)."""
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    names = [f"run{i}" for i in range(len(runs))]
    config = FusionConfig(method="rrf", rrf_k=k, weights=dict(zip(names, weights, strict=True)))
    fused: Run = {}
    for qid in runs[0]:
        ranked = {}
        for name, run in zip(names, runs, strict=True):
            hits = run.get(qid, [])[:depth]
            ranked[name] = ([doc_id for doc_id, _ in hits], [score for _, score in hits])
        fused[qid] = [(hit.key, hit.score) for hit in fuse(ranked, config, depth=depth)]
    return fused


def score_run(run: Mapping[str, list[tuple[str, float]]], qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, recall@10, recall@100 and MRR@10 over the judged queries."""
    ndcg, r10, r100, mrr = [], [], [], []
    for qid, judged in qrels.items():
        relevant = {d: g for d, g in judged.items() if g > 0}
        if not relevant:
            continue
        ranked = [doc_id for doc_id, _ in run.get(qid, [])]
        gains = [float(relevant.get(d, 0)) for d in ranked[:10]]
        ndcg.append(ndcg_at_k(gains, 10, ideal=[float(g) for g in relevant.values()]))
        r10.append(len(set(ranked[:10]) & set(relevant)) / len(relevant))
        r100.append(len(set(ranked[:100]) & set(relevant)) / len(relevant))
        mrr.append(next((1.0 / i for i, d in enumerate(ranked[:10], start=1) if d in relevant), 0.0))
    n = len(ndcg)
    return {
        "queries": float(n),
        "ndcg@10": sum(ndcg) / n if n else 0.0,
        "recall@10": sum(r10) / n if n else 0.0,
        "recall@100": sum(r100) / n if n else 0.0,
        "mrr@10": sum(mrr) / n if n else 0.0,
    }


#: Prefix of a run made by the product's own retriever (``tanya:bm25+e5-small``).
PRODUCT_PREFIX = "tanya:"


def flat_index(corpus: FlatCorpus, doc_vectors: Mapping[str, np.ndarray]) -> IndexData:
    """The benchmark corpus as a Tanya index in memory: one document = one chunk = one sentence.

    The texts keep their own language (detected as ``tanya index`` does), the BM25 side uses
    the product's analyser and parameters, and each encoder's passage vectors (as cached by
    :func:`embed_corpus`) serve as both chunk and sentence vectors. Benchmark passages are
    abstracts, not chunked documents, so this measures the product's retrieval and fusion,
    not its chunker.
    """
    analyzer = Analyzer()
    langs = [detect_language(text, fallback="en") for text in corpus.doc_texts]
    documents = {
        doc_id: Document(doc_id=doc_id, source=doc_id, title="", lang=lang, text=text, sha256="", format="txt")
        for doc_id, text, lang in zip(corpus.doc_ids, corpus.doc_texts, langs, strict=True)
    }
    chunks = [
        Chunk(doc_id, 0, 0, len(text), lang, None, 0, 0, 0, text)
        for doc_id, text, lang in zip(corpus.doc_ids, corpus.doc_texts, langs, strict=True)
    ]
    sentences = [Sentence(c.doc_id, 0, 0, c.end, c.lang, c.text) for c in chunks]
    lexical = LexicalIndex.build([analyzer.analyse(c.text, c.lang) for c in chunks])
    return IndexData(
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        embedders=[],
        chunker=ChunkerConfig(),
        chunk_vectors=dict(doc_vectors),
        sentence_vectors=dict(doc_vectors),
        lexical=lexical,
    )


def product_run(
    corpus: FlatCorpus, index: IndexData, embedders: Sequence[Embedder], mode: Mode, k: int = 100
) -> Run:
    """The product's :class:`~service.qa.retrieval.Retriever` (default fusion) ranking ``index`` for every query."""
    analyser = QueryAnalyser(Analyzer(), embedders)
    retriever = Retriever(index, embedders, FusionConfig())
    run: Run = {}
    for qid, text in zip(corpus.query_ids, corpus.query_texts, strict=True):
        passages = retriever.search(analyser.analyse(text, mode), k)
        run[qid] = [(p.doc_id, p.score) for p in passages]
    return run
