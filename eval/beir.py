"""Public benchmarks: BEIR-format data sets (SciFact) and IndoNLU FacQA as retrieval.

``run_benchmark`` evaluates a list of *run specs*: ``bm25``, an encoder spec
(``e5-small``, ``use-m3``, ``sentence-transformers:all-MiniLM-L6-v2``) or several joined by
``+`` for reciprocal-rank fusion (``bm25+e5-small``). The same specs behind ``tanya:``
(``tanya:bm25+e5-small``) are ranked by the product's own retriever instead, over the
same cached passage vectors, so the table shows Tanya next to the published baselines.
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.runs import (
    PRODUCT_PREFIX,
    FlatCorpus,
    Progress,
    Run,
    bm25_run,
    dense_run,
    embed_corpus,
    flat_index,
    product_run,
    rrf,
    score_run,
)
from indexer.embedders import Embedder, create_embedder
from indexer.store import IndexData
from service.qa.query import check_mode

BEIR_SPECS = (
    "bm25",
    "sentence-transformers:all-MiniLM-L6-v2",
    "e5-small",
    "use-m3",
    "e5-small+use-m3",
    "bm25+e5-small",
    "bm25+use-m3",
    "bm25+e5-small+use-m3",
    "tanya:bm25",
    "tanya:bm25+e5-small",
    "tanya:bm25+e5-small+use-m3",
)
FACQA_SPECS = (
    "bm25",
    "e5-small",
    "use-m3",
    "e5-small+use-m3",
    "bm25+e5-small",
    "bm25+e5-small+use-m3",
    "tanya:bm25",
    "tanya:bm25+e5-small",
    "tanya:bm25+e5-small+use-m3",
)

#: Published nDCG@10 on the SciFact test split (see ../shared/eval-data/README.md).
SCIFACT_PUBLISHED = {
    "bm25": ("bm25s, Lucene variant, English stop words + Snowball", 0.687),
    "sentence-transformers:all-MiniLM-L6-v2": ("all-MiniLM-L6-v2, MTEB", 0.645),
    "txtai hybrid": ("txtai hybrid (anchor to beat)", 0.713),
    "bge-base-en-v1.5": ("bge-base-en-v1.5 (anchor to beat)", 0.741),
}


def mode_of(spec: str) -> str:
    """``lexical``, ``dense`` or ``hybrid`` for a run spec."""
    parts = spec.removeprefix(PRODUCT_PREFIX).split("+")
    if parts == ["bm25"]:
        return "lexical"
    return "hybrid" if "bm25" in parts else "dense"


def load_beir(path: Path, split: str = "test") -> FlatCorpus:
    """A BEIR folder: corpus.jsonl(.gz), queries.jsonl, qrels/<split>.tsv."""
    corpus_file = path / "corpus.jsonl.gz" if (path / "corpus.jsonl.gz").exists() else path / "corpus.jsonl"
    opener: Callable[..., Any] = gzip.open if corpus_file.suffix == ".gz" else open
    doc_ids, doc_texts = [], []
    with opener(corpus_file, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            doc_ids.append(str(record["_id"]))
            # As BEIR and MTEB do: title and text joined by a space.
            doc_texts.append(f"{record.get('title', '')} {record['text']}".strip())
    qrels: dict[str, dict[str, int]] = {}
    with open(path / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)
        for qid, doc_id, score in reader:
            qrels.setdefault(qid, {})[doc_id] = int(score)
    query_ids, query_texts = [], []
    with open(path / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if str(record["_id"]) in qrels:
                query_ids.append(str(record["_id"]))
                query_texts.append(record["text"])
    return FlatCorpus(path.name, doc_ids, doc_texts, query_ids, query_texts, qrels)


def load_facqa(path: Path) -> FlatCorpus:
    """IndoNLU FacQA (train + valid) as retrieval: distinct passages are the corpus."""
    passages: dict[str, str] = {}
    query_ids, query_texts = [], []
    qrels: dict[str, dict[str, int]] = {}
    for split in ("train", "valid"):
        with open(path / f"{split}_preprocess.csv", encoding="utf-8") as handle:
            for n, row in enumerate(csv.DictReader(handle)):
                question = " ".join(ast.literal_eval(row["question"]))
                passage = " ".join(ast.literal_eval(row["passage"]))
                doc_id = passages.setdefault(passage, f"p{len(passages)}")
                qid = f"{split}-{n}"
                query_ids.append(qid)
                query_texts.append(question)
                qrels[qid] = {doc_id: 1}
    doc_ids = list(passages.values())
    doc_texts = list(passages.keys())
    return FlatCorpus("facqa", doc_ids, doc_texts, query_ids, query_texts, qrels)


def english_tokenizer() -> Callable[[list[str]], list[list[str]]]:
    """The bm25s baseline: English stop words and the Snowball stemmer."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")

    def tokenize(texts: list[str]) -> list[list[str]]:
        tokenized = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
        return [list(tokens) for tokens in tokenized]

    return tokenize


def indonesian_tokenizer() -> Callable[[list[str]], list[list[str]]]:
    """Tanya's Indonesian analyser (stop words + Snowball Indonesian)."""
    from indexer.lexical import Analyzer

    analyzer = Analyzer()
    return lambda texts: [analyzer.analyse(t, "id") for t in texts]


def run_benchmark(
    corpus: FlatCorpus,
    specs: Sequence[str],
    tokenize: Callable[[list[str]], list[list[str]]],
    cache_dir: Path,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[str], Progress | None] = lambda _: None,
) -> dict[str, Any]:
    """Score every run spec; each signal is computed once and shared by the fusions using it."""
    signals: dict[str, Run] = {}
    embedders: dict[str, Embedder] = {}
    seconds: dict[str, float] = {}

    passage_vectors: dict[str, Any] = {}

    def vectors(name: str) -> tuple[Embedder, Any]:
        """The encoder and the corpus's passage vectors (embedded once, cached on disk)."""
        embedder = embedders.setdefault(name, create_embedder(name))
        if name not in passage_vectors:
            passage_vectors[name] = embed_corpus(corpus, embedder, cache_dir, progress=progress(name))
        return embedder, passage_vectors[name]

    def signal(name: str) -> Run:
        if name in signals:
            return signals[name]
        started = time.perf_counter()
        if name == "bm25":
            signals[name] = bm25_run(corpus, tokenize)
        else:
            embedder, doc_vectors = vectors(name)
            signals[name] = dense_run(corpus, embedder, doc_vectors)
        seconds[name] = time.perf_counter() - started
        log(f"[{corpus.name}] {name}: ranked {len(corpus.query_ids)} queries in {seconds[name]:.1f}s")
        return signals[name]

    indexes: dict[tuple[str, ...], IndexData] = {}

    def product(spec: str) -> Run:
        dense = tuple(p for p in spec.removeprefix(PRODUCT_PREFIX).split("+") if p != "bm25")
        live = {name: vectors(name) for name in dense}
        if dense not in indexes:
            indexes[dense] = flat_index(corpus, {name: v for name, (_, v) in live.items()})
        started = time.perf_counter()
        run = product_run(corpus, indexes[dense], [e for e, _ in live.values()], check_mode(mode_of(spec)))
        seconds[spec] = time.perf_counter() - started
        return run

    results = {}
    for spec in specs:
        if spec.startswith(PRODUCT_PREFIX):
            run = product(spec)
        else:
            runs = [signal(p) for p in spec.split("+")]
            run = runs[0] if len(runs) == 1 else rrf(runs)
        scores = score_run(run, corpus.qrels)
        results[spec] = {"mode": mode_of(spec), **scores}
        log(f"[{corpus.name}] {spec}: nDCG@10 {scores['ndcg@10']:.4f}  R@10 {scores['recall@10']:.4f}  "
            f"R@100 {scores['recall@100']:.4f}")
    return {
        "dataset": corpus.name,
        "documents": len(corpus.doc_ids),
        "queries": len(corpus.query_ids),
        "results": results,
        "signal_seconds": seconds,
    }


def markdown(report: dict[str, Any], published: dict[str, tuple[str, float]] | None = None) -> str:
    """Result table; with ``published``, a column of published nDCG@10 and the difference."""
    lines = [
        f"{report['dataset']}: {report['documents']} documents, {report['queries']} queries",
        "",
        "| run | mode | nDCG@10 | R@10 | R@100 | MRR@10 |" + (" published nDCG@10 | Δ |" if published else ""),
        "|---|---|---|---|---|---|" + ("---|---|" if published else ""),
    ]
    for spec, r in report["results"].items():
        row = f"| {spec} | {r['mode']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['recall@100']:.4f} | {r['mrr@10']:.4f} |"
        if published:
            if spec in published:
                value = published[spec][1]
                row += f" {value:.3f} | {r['ndcg@10'] - value:+.4f} |"
            else:
                row += " | |"
        lines.append(row)
    if published:
        for spec, (label, value) in published.items():
            if spec not in report["results"]:
                lines.append(f"| {label} | — | {value:.3f} (published) | | | | {value:.3f} | |")
    return "\n".join(lines)
