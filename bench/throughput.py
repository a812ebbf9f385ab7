"""Indexing throughput against the encoders' bare throughput on the same texts, in one run.

Writes bench/results/throughput.json. ``tanya index`` of D generated documents (SciFact and
FacQA sentences, as in bench/scale.py) with the real encoders, then the same encoders alone
over exactly the texts that run embedded (chunk texts with their titles, and sentences), in
the same batch size. The ratio bare / indexing is the share of indexing time that is encoding;
the issue's target is at least 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import ROOT, sentence_pool, write_corpus  # bench/scale.py: both run as scripts from bench/

RESULTS = ROOT / "bench" / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=12)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval-data")
    parser.add_argument("--embedders", default="e5-small,use-m3")
    args = parser.parse_args()

    from indexer.chunks import chunk_document
    from indexer.embedders import load_embedders
    from indexer.pipeline import IndexConfig, build_index
    from indexer.store import load_index
    from indexer.tokens import get_counter

    sentences, _ = sentence_pool(args.data)
    embedders = load_embedders(args.embedders.split(","))
    for embedder in embedders:  # models loaded and warm before either clock starts
        embedder.embed_passages(["warm up"])
    with tempfile.TemporaryDirectory(prefix="tanya-throughput-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        write_corpus(corpus, args.documents, sentences, seed=5)
        config = IndexConfig(index_dir=index_dir)
        started = time.perf_counter()
        report = build_index([corpus], config, embedders)
        index_s = time.perf_counter() - started
        index = load_index(index_dir)
        counter = get_counter()
        texts: list[str] = []
        for doc in index.documents.values():
            doc_sentences, doc_chunks = chunk_document(doc, counter, config.chunker)
            texts += [c.embedding_text(doc.title) for c in doc_chunks]
            texts += [s.text for s in doc_sentences]
        distinct = list(dict.fromkeys(texts))  # the indexer encodes each distinct text once
        started = time.perf_counter()
        for embedder in embedders:
            for start in range(0, len(distinct), config.batch_size):
                embedder.embed_passages(distinct[start : start + config.batch_size])
        bare_s = time.perf_counter() - started
    result = {
        "documents": args.documents, "chunks": report.chunks, "sentences": report.sentences,
        "texts_encoded": report.texts_encoded, "encoders": args.embedders,
        "index_s": round(index_s, 2), "bare_encoding_s": round(bare_s, 2),
        "ratio_bare_over_index": round(bare_s / index_s, 3),
        "texts_per_s_indexing": round(report.texts_encoded / index_s, 1),
        "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
