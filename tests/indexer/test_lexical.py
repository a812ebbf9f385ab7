"""BM25 as a build writes it: token ids gathered as chunks stream in, postings made by bm25s at the end."""

from __future__ import annotations

import random

import numpy as np

from indexer.lexical import LexicalIndex, TermIds


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
