"""`make bench-ann-recall N=…`: dense recall@10 against exact search on *real* encoder vectors.

bench/scale.py measures speed and memory with the fake encoder, whose hashed bags of words have no
cluster structure; how well PQ codes and IVF lists find a query's true neighbours depends on that
structure, so this script measures recall on vectors of a real encoder (USE-m3: the fast one,
about 250 chunk texts a second on 2 cores) over the same kind of texts: chunks of 3-4 SciFact
and FacQA sentences drawn at random, 300 of the two sets' questions as queries. Each index type
is searched as the retriever searches it (``service.qa.retrieval``: fast-scan PQ or IVF codes,
the best ``PQ_RESCORE`` rescored with the int8 chunk vectors), and IVF also with other shares of
its lists probed, and with the shipped number of probes (``ivf_probes``). Writes ``bench/results/ann-recall-N.json``. The vectors are kept in ``--work``
(encoding 10^5 texts takes about 7 minutes), so a second run measures only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import ROOT, sentence_pool  # bench/scale.py: the same texts' source

from bench import cpu_name  # bench/bench.py: both run as scripts from bench/

RESULTS = ROOT / "bench" / "results"
QUERIES = 300
PROBE_SHARES = (1 / 16, 1 / 8, 1 / 4, 1 / 2)


def chunk_texts(sentences: list[str], n: int, seed: int) -> list[str]:
    """``n`` texts of 3 or 4 sentences drawn from the pool (deterministic; a longer run extends a shorter one)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(sentences) for _ in range(rng.choice((3, 4)))) for _ in range(n)]


def vectors(work: Path, texts: list[str], queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """USE-m3 passage and query vectors (L2-normalised), encoded once and kept in ``work``."""
    from indexer.embedders.use import UseM3Embedder

    work.mkdir(parents=True, exist_ok=True)
    passages_file, queries_file = work / f"use-m3-{len(texts)}.npy", work / "use-m3-queries.npy"
    if not passages_file.is_file():
        embedder = UseM3Embedder(threads=2)
        started, parts = time.perf_counter(), []
        for start in range(0, len(texts), 5000):
            parts.append(np.asarray(embedder.embed_passages(texts[start : start + 5000]), dtype=np.float32))
            print(
                f"ann-recall: encoded {start + len(parts[-1]):,} of {len(texts):,} texts "
                f"in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        np.save(passages_file, np.concatenate(parts))
        np.save(queries_file, np.asarray(embedder.embed_queries(queries), dtype=np.float32))
    x, q = np.load(passages_file), np.load(queries_file)
    return x / np.linalg.norm(x, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)


def recall(
    index: Any, params: Any, rescore_rows: np.ndarray, queries: np.ndarray, exact: np.ndarray
) -> dict[str, float]:
    """Recall@10 of the index's candidates rescored with ``rescore_rows``, and of its own top 10."""
    from service.qa.retrieval import PQ_RESCORE

    tenth = np.sort(exact, axis=1)[:, -10]
    hits, raw, seconds = [], [], 0.0
    for i, query in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(query[None, :], PQ_RESCORE, params=params)
        seconds += time.perf_counter() - started
        found = ids[0][ids[0] >= 0]
        best = found[np.argsort(-(rescore_rows[found] @ query))[:10]]
        # A result counts when its exact score reaches the exact 10th best (ties may go either way).
        hits.append(float(np.mean(exact[i, best] >= tenth[i] - 1e-6)))
        raw.append(float(np.mean(exact[i, found[:10]] >= tenth[i] - 1e-6)))
    return {
        "recall_at_10_vs_exact": round(float(np.mean(hits)), 3),
        "codes_alone": round(float(np.mean(raw)), 3),
        "faiss_ms_per_query": round(seconds / len(queries) * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", "-n", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval-data")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "ann-recall", help="Where the vectors are kept")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    import faiss

    from indexer.store.format import DenseIndexConfig, quantize_rows
    from service.qa.retrieval import PQ_RESCORE, ivf_probes

    sentences, questions = sentence_pool(args.data)
    queries = random.Random(args.seed + 1).sample(questions, QUERIES)
    x, q = vectors(args.work, chunk_texts(sentences, args.chunks, args.seed), queries)
    codes, scales = quantize_rows(x)
    stored = codes.astype(np.float32) * scales[:, None]  # the int8 rows the retriever rescores with
    exact = q @ x.T
    pq = DenseIndexConfig(pq_min_chunks=1, ann_min_chunks=0).build(x, x.shape[1])
    ivf = DenseIndexConfig(pq_min_chunks=1, ann_min_chunks=1).build(x, x.shape[1])
    faiss.omp_set_num_threads(1)  # built on every core; searched as the service searches: one query, one thread
    result: dict[str, Any] = {
        "chunks": len(x),
        "encoder": "use-m3",
        "dim": int(x.shape[1]),
        "queries": len(q),
        "rescored": PQ_RESCORE,
    }
    result["pq"] = recall(pq, None, stored, q, exact)
    result["ivf_lists"] = int(ivf.nlist)
    result["ivf"] = {}
    probes = {
        f"1/{round(1 / share)} of the lists": ivf_probes(ivf.nlist, share, most=ivf.nlist) for share in PROBE_SHARES
    }
    probes["shipped (retrieval.ivf_probes)"] = ivf_probes(ivf.nlist)
    for name, count in probes.items():
        params = faiss.SearchParametersIVF()
        params.nprobe = count
        result["ivf"][name] = {"probes": int(count), **recall(ivf, params, stored, q, exact)}
    result["machine"] = {"cpu": cpu_name(), "cores": 2}
    result["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ann-recall-{args.chunks}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
