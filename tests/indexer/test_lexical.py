"""BM25 as a build writes it: token ids gathered as chunks stream in, postings made by bm25s at the end."""

from __future__ import annotations

import random

import numpy as np
import pytest

from indexer.lexical import LexicalIndex, SegmentedLexical, TermIds


def _corpus(seed: int = 3) -> list[list[str]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(200)]
    # Some passages empty (a chunk of stop words only): they keep their row and match nothing.
    return [[rng.choice(words) for _ in range(rng.randint(0, 25))] for _ in range(300)]


def test_postings_from_streamed_ids_score_as_bm25s_indexing_the_token_lists() -> None:
    import bm25s

    corpus = _corpus()
    ours = LexicalIndex.build(corpus)
    theirs = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    theirs.index([tokens or ["\x00empty"] for tokens in corpus], show_progress=False)
    for query in (["w1", "w7"], ["w199"], ["w3", "w3", "w150"], ["unknown"]):
        ids = theirs.get_tokens_ids(query)
        expected = theirs.get_scores_from_ids(ids) if ids else np.zeros(len(corpus))
        np.testing.assert_allclose(ours.scores(query), expected, rtol=0, atol=1e-6)
    assert ours.rows == len(corpus)
    assert ours.document_frequency("w1") == sum("w1" in tokens for tokens in corpus)


def test_term_ids_hand_back_each_passage_as_it_was_added() -> None:
    corpus = _corpus(5)
    terms = TermIds()
    for tokens in corpus:
        terms.add(tokens)
    back = {i: token for token, i in terms.vocabulary.items()}
    assert len(terms) == len(corpus)
    assert [[back[i] for i in ids] for ids in terms] == [tokens or [TermIds.EMPTY] for tokens in corpus]
    assert [back[i] for i in terms[-1]] == (corpus[-1] or [TermIds.EMPTY])


def test_an_empty_corpus_and_an_empty_passage_score_zero() -> None:
    assert LexicalIndex.build([]).rows == 0
    assert LexicalIndex.build([]).scores(["anything"]).shape == (0,)
    index = LexicalIndex.build([[], ["tokyo"]])
    assert index.scores(["tokyo"])[0] == 0 and index.scores(["tokyo"])[1] > 0


def _zipf_corpus(seed: int, rows: int = 8000) -> list[list[str]]:
    """Passages whose words follow a Zipf law: a few tokens in most rows, most tokens in a few."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 501)
    weights /= weights.sum()
    return [[f"w{i}" for i in rng.choice(500, size=rng.integers(0, 30), p=weights)] for _ in range(rows)]


def _full_ranking(scores: np.ndarray, depth: int) -> np.ndarray:
    """What the retriever ranked before pruning: every row scored, the matches sorted (ties to the lowest row)."""
    matched = np.flatnonzero(scores > 0)
    return matched[np.argsort(-scores[matched], kind="stable")[:depth]]


def _queries(seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    common, rare = [f"w{i}" for i in range(8)], [f"w{i}" for i in range(8, 520)]  # w500+ are unknown
    return [rng.sample(common, rng.randint(0, 4)) + rng.sample(rare, rng.randint(0, 3)) for _ in range(60)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("depth", [1, 10, 100])
def test_top_rows_ranked_above_a_sampled_floor_are_exactly_the_full_ranking(seed: int, depth: int) -> None:
    corpus = _zipf_corpus(seed)
    index = LexicalIndex.build(corpus)
    for query in _queries(seed):
        expected = _full_ranking(index.scores(query), depth)
        rows, scores = index.top(query, depth)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(scores, index.scores(query)[expected])  # the same floats, not close ones


@pytest.mark.parametrize("seed", range(3))
def test_top_rows_of_a_base_and_delta_with_deleted_rows_are_the_full_ranking(seed: int) -> None:
    corpus = _zipf_corpus(seed + 10)
    live = np.random.default_rng(seed).random(len(corpus)) > 0.2
    both = SegmentedLexical([LexicalIndex.build(corpus[:6000]), LexicalIndex.build(corpus[6000:])], live)
    for query in _queries(seed + 10):
        expected = _full_ranking(both.scores(query), 20)
        rows, scores = both.top(query, 20)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(scores, both.scores(query)[expected])
        assert live[rows].all()
