"""The query-vector cache: a repeated question is not encoded again; the cache is bounded and can be off."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.embedders.fake import FakeEmbedder
from indexer.lexical import Analyzer
from service.qa.query import QueryAnalyser, QueryVectorCache


class CountingFake(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queries.extend(texts)
        return super().embed_queries(texts)


def test_a_repeated_question_is_encoded_once() -> None:
    embedder = CountingFake()
    analyser = QueryAnalyser(Analyzer(), [embedder], cache_size=8)
    first = analyser.analyse("Berapa gaji magang di Jepang?", "hybrid")
    second = analyser.analyse("  Berapa gaji magang di Jepang?  ", "dense")  # the same question once cleaned
    assert embedder.queries == ["Berapa gaji magang di Jepang?"]
    assert np.array_equal(first.vectors["fake"], second.vectors["fake"])
    assert np.array_equal(second.vectors["fake"], FakeEmbedder().embed_queries(["Berapa gaji magang di Jepang?"])[0])
    assert (analyser.cache.hits, analyser.cache.misses) == (1, 1)
    with pytest.raises(ValueError):
        second.vectors["fake"][0] = 1.0  # shared between queries, so read-only


def test_the_least_recently_used_question_goes_first() -> None:
    cache = QueryVectorCache(2)
    for text in ("a", "b"):
        cache.put("enc", text, np.ones(3))
    assert cache.get("enc", "a") is not None  # "b" is now the least recently used
    cache.put("enc", "c", np.ones(3))
    assert len(cache) == 2 and cache.get("enc", "b") is None and cache.get("enc", "a") is not None


def test_size_zero_keeps_nothing() -> None:
    embedder = CountingFake()
    analyser = QueryAnalyser(Analyzer(), [embedder], cache_size=0)
    for _ in range(2):
        analyser.analyse("What is Tokutei Ginou?", "dense")
    assert len(embedder.queries) == 2 and len(analyser.cache) == 0
