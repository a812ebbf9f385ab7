"""`make bench-scale N=…`: build an index of about N chunks and measure what grows with it.

Real text goes through the BM25 side: SciFact abstracts and FacQA passages (../shared/eval-data),
their sentences recombined into documents. The dense side uses the deterministic fake embedder
at E5's dimension (384), so a large index needs no hours of encoding; its vectors are hashed
bags of words, not clustered embeddings, so ANN recall on them is a lower bound.

Writes bench/results/scale-N.json: chunks, build_s, load_s, rss_mb (a fresh process after
loading the index, as the service would), search_p50_ms / search_p95_ms (retrieval only, query
encoding excluded, 500 queries), recall_at_10_vs_exact (dense), add_one_doc_s,
remove_one_doc_s, noop_reindex_s and index_type. Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_name  # bench/bench.py: both run as scripts from bench/
from indexer.store import DenseIndexConfig

ROOT = Path(__file__).resolve().parent.parent
#: The shipped threshold for HNSW (results at any other are written to scale-N-annM.json).
DEFAULT_ANN = DenseIndexConfig().ann_min_chunks
DEFAULT_PQ = DenseIndexConfig().pq_min_chunks
RESULTS = ROOT / "bench" / "results"
DIM = 384
SENTENCES_PER_DOC = 40
QUERIES = 500
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def sentence_pool(data: Path) -> tuple[list[str], list[str]]:
    """Sentences of SciFact abstracts and FacQA passages, and the two sets' questions."""
    sentences: list[str] = []
    with gzip.open(data / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            sentences.extend(s.strip() for s in _SENTENCE_END.split(json.loads(line)["text"]) if len(s.split()) >= 4)
    questions = [json.loads(line)["text"] for line in (data / "scifact" / "queries.jsonl").open(encoding="utf-8")]
    for name in ("train_preprocess.csv", "valid_preprocess.csv"):
        with (data / "facqa" / name).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                passage = " ".join(eval_list(row["passage"]))
                sentences.extend(s.strip() for s in _SENTENCE_END.split(passage) if len(s.split()) >= 4)
                questions.append(" ".join(eval_list(row["question"])))
    return sentences, questions


def eval_list(text: str) -> list[str]:
    """FacQA's token lists (``"['Di', 'pulau']"``) without ``eval``."""
    return [a or b for a, b in re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", text)]


def write_corpus(folder: Path, documents: int, sentences: list[str], seed: int) -> None:
    """``documents`` files of SENTENCES_PER_DOC sentences drawn from the pool (deterministic)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        body = " ".join(rng.choice(sentences) for _ in range(SENTENCES_PER_DOC))
        (folder / f"doc-{d:07d}.txt").write_text(f"Document {d}\n\n{body}\n", encoding="utf-8")


def chunks_per_document(sentences: list[str], seed: int) -> float:
    """Chunks a generated document makes, on average over a sample (to size the corpus for N chunks)."""
    from indexer.chunks import ChunkerConfig, chunk_document
    from indexer.documents import read_document
    from indexer.tokens import get_counter

    counter = get_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(Path(tmp), 30, sentences, seed)
        counts = [
            len(chunk_document(read_document(path, Path(tmp), 10**8), counter, ChunkerConfig())[1])
            for path in sorted(Path(tmp).glob("*.txt"))
        ]
    return sum(counts) / len(counts)


def build(corpus: Path, index_dir: Path, dense_index: DenseIndexConfig) -> dict[str, Any]:
    from indexer.embedders.fake import FakeEmbedder
    from indexer.pipeline import IndexConfig, build_index
    from indexer.store import read_manifest

    started = time.perf_counter()
    config = IndexConfig(index_dir=index_dir, dense_index=dense_index)
    report = build_index([corpus], config, [FakeEmbedder(dim=DIM)])
    seconds = time.perf_counter() - started
    kind = "delta" if "base" in read_manifest(index_dir) else "complete"
    return {"seconds": seconds, "chunks": report.chunks, "sentences": report.sentences,
            "encoded": report.texts_encoded, "changed": report.changed, "kind": kind}


# --- the measuring process: load as the service would, then search ------------------------------------------------
def measure(index_dir: Path, questions_file: Path) -> dict[str, Any]:
    """Run in a fresh process: load time, RSS after load, retrieval latency and dense recall vs exact."""
    import numpy as np

    from indexer.embedders.fake import FakeEmbedder
    from service.config import Settings
    from service.qa.engine import Engine

    settings = Settings(index_dir=index_dir, embedders=["fake"], reranker="off")
    embedder = FakeEmbedder(dim=DIM)
    started = time.perf_counter()
    engine = Engine.load(settings.engine, [embedder])
    load_s = time.perf_counter() - started
    rss_mb = rss_now_mb()
    questions = json.loads(questions_file.read_text(encoding="utf-8"))
    queries = [engine.analyser.analyse(q, "hybrid") for q in questions]  # encoding, not timed
    for query in queries[:20]:  # warm caches
        engine.retriever.search(query, 10)
    latencies = []
    for query in queries:
        t = time.perf_counter()
        engine.retriever.search(query, 10)
        latencies.append((time.perf_counter() - t) * 1000)
    # Dense recall@10 against exact inner products over all chunk vectors: of the product's dense
    # retrieval (HNSW's pool rescored with the stored vectors) and of the bare FAISS index.
    index = engine.index.faiss_index("fake")
    vectors = np.asarray(engine.index.chunk_vectors["fake"], dtype=np.float32)  # after the RSS reading
    hits, raw_hits = [], []
    for query in queries[:100]:
        vector = query.vectors["fake"].astype(np.float32)
        exact_scores = vectors @ vector
        tenth = np.sort(exact_scores)[-10]
        # A result counts when its exact score reaches the exact 10th best: ties (common with the
        # fake embedder's bag-of-words vectors) may be ordered either way.
        found = engine.retriever.nearest("fake", vector, 10)
        hits.append(float(np.mean(exact_scores[found] >= tenth - 1e-6)) if len(found) else 0.0)
        _, raw = index.search(vector[None, :], 10)
        raw = raw[0][raw[0] >= 0]
        raw_hits.append(float(np.mean(exact_scores[raw] >= tenth - 1e-6)) if len(raw) else 0.0)
    return {
        "load_s": load_s, "rss_mb": rss_mb,
        "search_p50_ms": float(np.percentile(latencies, 50)), "search_p95_ms": float(np.percentile(latencies, 95)),
        "recall_at_10_vs_exact": float(np.mean(hits)), "faiss_recall_at_10_vs_exact": float(np.mean(raw_hits)),
        "index_type": type(index).__name__,
    }


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", "-n", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval-data")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ann-min-chunks", type=int, default=DEFAULT_ANN, help="HNSW from this many chunks (TANYA_ANN_MIN_CHUNKS)")
    parser.add_argument("--pq-min-chunks", type=int, default=DEFAULT_PQ, help="Fast-scan PQ from this many chunks (TANYA_PQ_MIN_CHUNKS)")
    parser.add_argument("--work", type=Path, default=None, help="Keep the corpus and index here (default: a temp dir)")
    parser.add_argument("--measure", nargs=2, metavar=("INDEX_DIR", "QUESTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child process
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]))))
        return 0

    sentences, questions = sentence_pool(args.data)
    per_doc = chunks_per_document(sentences, args.seed)
    documents = max(1, round(args.chunks / per_doc))
    dense_index = DenseIndexConfig(pq_min_chunks=args.pq_min_chunks, ann_min_chunks=args.ann_min_chunks)
    with tempfile.TemporaryDirectory(prefix="tanya-scale-") as tmp:
        work = args.work or Path(tmp)
        corpus, index_dir = work / "corpus", work / "index"
        print(f"scale: {documents:,} documents of {SENTENCES_PER_DOC} sentences (~{per_doc:.1f} chunks each)", file=sys.stderr)
        write_corpus(corpus, documents, sentences, args.seed)
        first = build(corpus, index_dir, dense_index)
        print(f"scale: built {first['chunks']:,} chunks in {first['seconds']:.1f} s", file=sys.stderr)
        noop = build(corpus, index_dir, dense_index)
        rng = random.Random(args.seed + 1)
        added = corpus / "added-document.txt"
        added.write_text("Added\n\n" + " ".join(rng.choice(sentences) for _ in range(SENTENCES_PER_DOC)) + "\n", encoding="utf-8")
        add = build(corpus, index_dir, dense_index)
        added.unlink()
        remove = build(corpus, index_dir, dense_index)
        sample = random.Random(args.seed + 2).sample(questions, min(QUERIES, len(questions)))
        questions_file = work / "questions.json"
        questions_file.write_text(json.dumps(sample), encoding="utf-8")
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(index_dir), str(questions_file)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
        )
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        measured = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "n_requested": args.chunks, "chunks": first["chunks"], "sentences": first["sentences"], "documents": documents,
        "build_s": round(first["seconds"], 2), "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_s": round(measured["load_s"], 3), "rss_mb": round(measured["rss_mb"], 1),
        "search_p50_ms": round(measured["search_p50_ms"], 3), "search_p95_ms": round(measured["search_p95_ms"], 3),
        "recall_at_10_vs_exact": round(measured["recall_at_10_vs_exact"], 4),
        "faiss_recall_at_10_vs_exact": round(measured["faiss_recall_at_10_vs_exact"], 4),
        "add_one_doc_s": round(add["seconds"], 3), "remove_one_doc_s": round(remove["seconds"], 3),
        "noop_reindex_s": round(noop["seconds"], 3), "noop_changed": noop["changed"],
        # What the add and remove runs wrote: a delta build (only the change) or a complete build.
        "add_wrote": add["kind"], "remove_wrote": remove["kind"],
        "index_type": measured["index_type"], "pq_min_chunks": args.pq_min_chunks, "ann_min_chunks": args.ann_min_chunks, "dense": f"fake embedder, dim {DIM}",
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()}, "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.ann_min_chunks == DEFAULT_ANN else f"-ann{args.ann_min_chunks}"
    suffix += "" if args.pq_min_chunks == DEFAULT_PQ else f"-pq{args.pq_min_chunks}"
    out = RESULTS / f"scale-{args.chunks}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
