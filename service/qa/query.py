"""Check a question once, then analyse it once: everything later steps need, computed up front.

A :class:`Query` carries the cleaned text, its mode, language, expected answer type, the
BM25 tokens, the content words with their stems, the measured words of a count or
duration question, and one vector per dense encoder. Retrieval and answering read it and
never re-derive any of it.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.embedders import Embedder
from indexer.errors import InvalidQueryError
from indexer.language import Lang, detect_language
from indexer.lexical import Analyzer
from service.qa.answer_types import AnswerType, expected_type, measured_words
from service.qa.batching import QueryBatcher
from service.qa.types import MAX_QUESTION_CHARS, MAX_QUESTION_TOKENS, MODES, TOP_K_MAX, TOP_K_MIN, Mode


def clean_question(question: object) -> str:
    """The stripped question; :class:`InvalidQueryError` for empty, wordless, invalid or over-long input.

    The only question check: the CLI, the library and the HTTP schemas all call it.
    """
    if not isinstance(question, str):
        raise InvalidQueryError("the question must be a string")
    text = question.strip()
    # JSON can spell a lone surrogate ("\ud800") and the CLI maps undecodable bytes to them;
    # no encoder, tokenizer or JSON writer accepts one, so refuse it here, once, for every caller.
    bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:
        raise InvalidQueryError(f"the question is not valid Unicode text (a lone surrogate at character {bad + 1})")
    printable = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n")
    if not printable.strip():
        raise InvalidQueryError("the question is empty")
    # "???", "...." or "😀😀😀" carry nothing to retrieve by, yet dense scores would still answer
    # them with some confidence: a question needs at least one letter or digit, in any script.
    if not any(unicodedata.category(ch)[0] in "LN" for ch in printable):
        raise InvalidQueryError("the question has no words: it needs at least one letter or digit")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(f"the question is longer than {MAX_QUESTION_CHARS} characters ({len(text)})")
    return text


def check_mode(mode: str) -> Mode:
    """``mode`` if it is a retrieval mode, else :class:`InvalidQueryError`."""
    for known in MODES:
        if mode == known:
            return known
    raise InvalidQueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def check_top_k(top_k: int) -> int:
    """``top_k`` if it is within the accepted range, else :class:`InvalidQueryError`."""
    if not TOP_K_MIN <= top_k <= TOP_K_MAX:
        raise InvalidQueryError(f"top_k must be between {TOP_K_MIN} and {TOP_K_MAX} (got {top_k})")
    return top_k


#: A content word of the question with its possible stems (English and Indonesian).
ContentWord = tuple[str, frozenset[str]]


@dataclass(frozen=True)
class Query:
    """A checked question and everything derived from it."""

    text: str
    mode: Mode
    lang: Lang
    kind: AnswerType | None
    #: BM25 query tokens (stop words of both languages dropped, stemmed both ways).
    tokens: tuple[str, ...]
    content: tuple[ContentWord, ...]
    #: For a count or duration question, the words naming what is measured ("kontrak").
    measured: tuple[str, ...]
    #: One L2-normalised vector per dense encoder (none in lexical mode).
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: Encoding time per encoder, and in all (``None`` when nothing was encoded).
    encoder_ms: Mapping[str, float] = field(default_factory=dict)
    embed_ms: float | None = None


class QueryVectorCache:
    """The query vectors of the last ``size`` distinct questions, per encoder (least recently used goes first).

    Users ask the same questions again ("Berapa gaji magang di Jepang?"): a hit skips the
    encoder, which is most of a search's time. Safe across the server's worker threads.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, encoder: str, text: str) -> np.ndarray | None:
        """The cached vector, or ``None``."""
        with self._lock:
            vector = self._entries.get((encoder, text))
            if vector is None:
                self.misses += 1
                return None
            self._entries.move_to_end((encoder, text))
            self.hits += 1
            return vector

    def put(self, encoder: str, text: str, vector: np.ndarray) -> np.ndarray:
        """Keep ``vector`` (made read-only: every later query shares it) and return it."""
        vector = np.array(vector, copy=True)
        vector.flags.writeable = False
        if self.size <= 0:
            return vector
        with self._lock:
            self._entries[(encoder, text)] = vector
            self._entries.move_to_end((encoder, text))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._entries)


class QueryAnalyser:
    """Turns question text into a :class:`Query` with the index's analyser and encoders."""

    def __init__(
        self, analyzer: Analyzer, embedders: Sequence[Embedder], cache_size: int = 0, batch: int = 1, lanes: int = 2
    ) -> None:
        self.analyzer = analyzer
        self.embedders = list(embedders)
        self.cache = QueryVectorCache(cache_size)
        # With ``batch`` above 1, questions that wait for the same encoder at once share its forward pass.
        self.batchers = {e.id: QueryBatcher(e, batch, lanes) for e in self.embedders} if batch > 1 else {}

    def _encode(self, embedder: Embedder, text: str) -> np.ndarray:
        """One question's vector from ``embedder`` (through its batcher when batching)."""
        batcher = self.batchers.get(embedder.id)
        return batcher.embed(text) if batcher is not None else embedder.embed_queries([text])[0]

    def content_words(self, text: str) -> tuple[ContentWord, ...]:
        """Each distinct non-stop word of ``text`` with its English and Indonesian stems."""
        words = [w for w in self.analyzer.words(text) if w not in self.analyzer.stopwords]
        return tuple((w, frozenset(self.analyzer.stems(w))) for w in dict.fromkeys(words))

    def check_cost(self, text: str) -> None:
        """:class:`InvalidQueryError` when ``text`` is more than :data:`MAX_QUESTION_TOKENS` for any encoder.

        Checked in every mode, so whether a question is accepted does not depend on the mode.
        """
        for embedder in self.embedders:
            tokens = embedder.query_tokens(text)
            if tokens is not None and tokens > MAX_QUESTION_TOKENS:
                raise InvalidQueryError(
                    f"the question is too long: {tokens:,} tokens for the {embedder.id} encoder, "
                    f"at most {MAX_QUESTION_TOKENS}; ask it in fewer words"
                )

    def analyse(self, question: str, mode: Mode) -> Query:
        """Check ``question`` and analyse it for ``mode`` (encoding it once per dense encoder)."""
        text = clean_question(question)
        self.check_cost(text)
        kind = expected_type(text)
        measured: list[str] = []
        if kind in (AnswerType.COUNT, AnswerType.DURATION):
            measured = measured_words(text, self.analyzer.stopwords)
        vectors: dict[str, np.ndarray] = {}
        encoder_ms: dict[str, float] = {}
        embed_ms = None
        if mode != "lexical":
            started = time.perf_counter()
            for embedder in self.embedders:
                one = time.perf_counter()
                cached = self.cache.get(embedder.id, text)
                if cached is None:
                    cached = self.cache.put(embedder.id, text, self._encode(embedder, text))
                vectors[embedder.id] = cached
                encoder_ms[embedder.id] = (time.perf_counter() - one) * 1000
            embed_ms = (time.perf_counter() - started) * 1000
        return Query(
            text=text,
            mode=mode,
            lang=detect_language(text, fallback="en"),
            kind=kind,
            tokens=tuple(self.analyzer.analyse_query(text)),
            content=self.content_words(text),
            measured=tuple(measured),
            vectors=vectors,
            encoder_ms=encoder_ms,
            embed_ms=embed_ms,
        )
