"""Benchmark plumbing: loaders, fusion and BEIR-style scoring on hand-computed cases."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from eval.beir import load_beir, load_facqa, mode_of, run_benchmark
from eval.runs import FlatCorpus, rrf, score_run, top_k


def test_top_k_orders_best_first() -> None:
    assert top_k(np.array([0.1, 0.9, 0.5, 0.7]), 3).tolist() == [1, 3, 2]
    assert top_k(np.array([0.3]), 5).tolist() == [0]


def test_rrf_sums_reciprocal_ranks() -> None:
    a = {"q": [("d1", 9.0), ("d2", 8.0)]}
    b = {"q": [("d2", 0.9), ("d3", 0.8)]}
    fused = rrf([a, b], k=60)["q"]
    scores = dict(fused)
    assert scores["d2"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["d1"] == pytest.approx(1 / 61)
    assert [d for d, _ in fused] == ["d2", "d1", "d3"]
    weighted = dict(rrf([a, b], k=60, weights=[2.0, 0.0])["q"])
    assert weighted["d1"] == pytest.approx(2 / 61) and weighted["d3"] == 0.0


def test_score_run_matches_hand_computation() -> None:
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d9": 1}, "q3": {"dx": 0}}
    run = {"q1": [("d3", 1.0), ("d1", 0.9), ("d2", 0.8)], "q2": [("d8", 1.0)]}
    scores = score_run(run, qrels)
    # q1: DCG = 1/log2(3) + 1/log2(4); IDCG = 1 + 1/log2(3). q2: 0. q3 has no relevant document: skipped.
    q1 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert scores["queries"] == 2
    assert scores["ndcg@10"] == pytest.approx(q1 / 2)
    assert scores["recall@10"] == pytest.approx(0.5)
    assert scores["mrr@10"] == pytest.approx(0.25)


def test_mode_of_run_specs() -> None:
    assert mode_of("bm25") == "lexical"
    assert mode_of("e5-small+use-m3") == "dense"
    assert mode_of("bm25+e5-small") == "hybrid"


def test_load_beir_and_a_fused_run(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
        for _id, title, text in [("a", "Cats", "cats purr softly"), ("b", "Dogs", "dogs bark loudly"), ("c", "", "fish swim")]:
            handle.write(json.dumps({"_id": _id, "title": title, "text": text}) + "\n")
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "which animals bark"}) + "\n" + json.dumps({"_id": "2", "text": "unjudged"}) + "\n"
    )
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\tb\t1\n")
    corpus = load_beir(tmp_path)
    assert corpus.doc_texts[0] == "Cats cats purr softly" and corpus.doc_texts[2] == "fish swim"
    assert corpus.query_ids == ["1"]  # only judged queries of the split
    from eval.beir import english_tokenizer

    report = run_benchmark(corpus, ["bm25", "fake", "bm25+fake"], english_tokenizer(), tmp_path / "cache")
    assert report["results"]["bm25"]["ndcg@10"] == pytest.approx(1.0)
    assert set(report["results"]) == {"bm25", "fake", "bm25+fake"}
    assert list((tmp_path / "cache").glob("*.npy")), "dense vectors are cached"


def test_load_facqa_pools_distinct_passages(tmp_path: Path) -> None:
    header = "question,passage,seq_label\n"
    row1 = "\"['Siapa', 'presiden', '?']\",\"['Presiden', 'itu', 'Budi', '.']\",\"['O', 'O', 'B', 'O']\"\n"
    row2 = "\"['Apa', 'nama', 'presiden', '?']\",\"['Presiden', 'itu', 'Budi', '.']\",\"['O', 'O', 'B', 'O']\"\n"
    (tmp_path / "train_preprocess.csv").write_text(header + row1 + row2)
    (tmp_path / "valid_preprocess.csv").write_text(header + row1)
    corpus = load_facqa(tmp_path)
    assert isinstance(corpus, FlatCorpus)
    assert corpus.doc_texts == ["Presiden itu Budi ."]
    assert len(corpus.query_ids) == 3 and all(q == {"p0": 1} for q in corpus.qrels.values())
