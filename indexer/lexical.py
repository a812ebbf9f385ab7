"""BM25 postings (bm25s) with Snowball stemming chosen by each chunk's language.

English chunks are stemmed with the English stemmer and Indonesian chunks with the
Indonesian one. A query is analysed both ways and the two token sets are merged, so an
English query still matches the English half of a bilingual abstract, and names and
numbers ("BP2MI", "10.000") match across languages.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import numpy as np

from indexer.language import EN_MARKERS, ID_MARKERS, Lang

_TOKEN = re.compile(r"\w\w+", re.UNICODE)
PARAMS_FILE = "tanya_lexical.json"


class Analyzer:
    """Lower-case, drop stop words, stem; one stemmer per language."""

    def __init__(self) -> None:
        import bm25s.stopwords
        import Stemmer

        self._stemmers = {"en": Stemmer.Stemmer("english"), "id": Stemmer.Stemmer("indonesian")}
        self._stopwords = {
            "en": frozenset(bm25s.stopwords.STOPWORDS_EN) | EN_MARKERS,
            "id": ID_MARKERS,
        }

    @cached_property
    def stopwords(self) -> frozenset[str]:
        """Stop words of both languages."""
        return self._stopwords["en"] | self._stopwords["id"]

    def stems(self, word: str) -> tuple[str, str]:
        """The English and the Indonesian stem of one lower-cased word."""
        return self._stemmers["en"].stemWord(word), self._stemmers["id"].stemWord(word)

    def words(self, text: str) -> list[str]:
        """Lower-cased word tokens (two or more word characters)."""
        return _TOKEN.findall(text.lower())

    def analyse(self, text: str, lang: Lang) -> list[str]:
        """Index-time tokens of a passage written in ``lang``."""
        words = [w for w in self.words(text) if w not in self._stopwords[lang]]
        # Interned: a corpus repeats the same stems over and over, and the terms of every chunk are
        # held until BM25 is built; one shared string per stem instead of one per occurrence.
        return [sys.intern(t) for t in self._stemmers[lang].stemWords(words)]

    def analyse_query(self, text: str) -> list[str]:
        """Query tokens: stop words of both languages dropped, stemmed both ways, de-duplicated."""
        words = [w for w in self.words(text) if w not in self.stopwords]
        merged: dict[str, None] = {}
        for lang in ("en", "id"):
            for token in self._stemmers[lang].stemWords(words):
                merged[token] = None
        return list(merged)


@dataclass(frozen=True)
class Postings:
    """One query token's postings in one part of an index: what it adds to each row's score."""

    #: Part-local rows holding the token (each once).
    rows: np.ndarray
    #: The token's BM25 score in each of those rows (float32).
    scores: np.ndarray
    #: The part's first row in the whole index.
    offset: int = 0
    #: What the scores are multiplied by (a segment's IDF rescaled to the whole index's), if anything.
    factor: np.float32 | None = None

    def add_to(self, out: np.ndarray) -> None:
        """Add the token's scores into ``out`` (one entry per row of the whole index)."""
        target = out[self.offset :]  # a view: the part's rows are local to it
        # ``np.add.at`` over bm25s's int32 rows: 1.7 ms for 950k postings where ``out[rows] += …`` took 4.9
        # (it converts the rows to intp first); a token's rows are distinct, so the sums are the same floats.
        np.add.at(target, self.rows, self.scores if self.factor is None else self.scores * self.factor)


#: Rows a query's ranking samples (every SAMPLE_STRIDE-th) to find a score floor before ranking every match.
SAMPLE_STRIDE = 16


def top_matches(
    terms: Sequence[Sequence[Postings]], rows: int, depth: int, live: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``depth`` best-scoring rows holding any query token, and their scores, best first, ties to the
    lowest row: exactly ``np.argsort(-scores, kind="stable")`` over the rows scoring above zero.

    ``terms`` holds one list of :class:`Postings` (one per index part) for each query token, in query order.
    Every posting is added (a long question's common words match 40 % of 10^6 chunks); what is saved is the
    ranking: a floor is read off every ``SAMPLE_STRIDE``-th row's score, and only the rows at or above it are
    sorted, once they are known to be at least ``depth`` (else every match is).
    """
    scores = _score_all(terms, rows, live)
    floor = 0.0
    if rows >= 4 * SAMPLE_STRIDE * depth:
        # Only the sample's matches: numpy's partition took 5 ms over 62,500 values that were mostly zeros
        # (equal values are its worst case), 0.1 ms over their 2 % above zero.
        sample = scores[::SAMPLE_STRIDE]
        sample = sample[sample > 0]
        # About twice the depth's share of the sample: the rows at or above it number about 2·depth.
        k = 2 * -(-depth // SAMPLE_STRIDE) + 1
        if len(sample) >= k:
            floor = float(np.partition(sample, len(sample) - k)[len(sample) - k])
    above = np.flatnonzero(scores >= floor) if floor > 0 else np.zeros(0, dtype=np.int64)
    matched = above if len(above) >= depth else np.flatnonzero(scores > 0)
    order = top_stable(scores[matched], depth)
    return matched[order], scores[matched][order]


def _score_all(terms: Sequence[Sequence[Postings]], rows: int, live: np.ndarray | None) -> np.ndarray:
    """Every row's score (query order); deleted rows score 0."""
    out = np.zeros(rows, dtype=np.float32)
    for parts in terms:
        for part in parts:
            part.add_to(out)
    if live is not None:
        out[~live] = 0.0
    return out


def top_stable(scores: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the ``depth`` best ``scores``, best first, ties to the lowest position:
    ``np.argsort(-scores, kind="stable")[:depth]`` exactly.

    A full sort of every chunk's score cost 6 ms a query at 10^5 chunks; this partitions
    first and sorts only the winners (ties at the cut go to the lowest positions, as the sort did).
    """
    if depth >= len(scores):
        return np.argsort(-scores, kind="stable")
    cut = scores[np.argpartition(-scores, depth - 1)[:depth]].min()
    above = np.flatnonzero(scores > cut)
    chosen = np.concatenate([above, np.flatnonzero(scores == cut)[: depth - len(above)]])
    chosen.sort()
    return chosen[np.argsort(-scores[chosen], kind="stable")]


class LexicalIndex:
    """A bm25s index over pre-analysed passages."""

    def __init__(self, retriever: object, params: dict[str, object]) -> None:
        self._retriever = retriever
        self.params = params

    @classmethod
    def build(
        cls, token_lists: Iterable[list[str]], method: str = "lucene", k1: float = 1.2, b: float = 0.75
    ) -> LexicalIndex:
        """Index one token list per passage, in row order."""
        terms = TermIds()
        for tokens in token_lists:
            terms.add(tokens)
        return cls.from_ids(terms, method, k1, b)

    @classmethod
    def from_ids(cls, terms: TermIds, method: str = "lucene", k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        """Index passages collected in ``terms`` (what a streaming build gathers as it writes)."""
        import bm25s

        retriever = bm25s.BM25(method=method, k1=k1, b=b)
        rows = len(terms)
        # bm25s cannot index an empty corpus or an all-empty one; a placeholder token keeps
        # row numbers aligned without matching any real query token.
        if rows == 0:
            terms.add([])
        # bm25s's own ``index()`` takes ids only as a list of lists (8 bytes and an int object per
        # token: gigabytes at 10^6 chunks); its documented lower step takes any re-iterable
        # sequence, so the ids stay in one int32 array and each passage's list lives for one step.
        retriever.scores = retriever.build_index_from_ids(
            unique_token_ids=list(range(len(terms.vocabulary))), corpus_token_ids=terms, show_progress=False
        )
        retriever.vocab_dict = dict(terms.vocabulary)
        retriever.unique_token_ids_set = set(retriever.vocab_dict.values())
        return cls(retriever, {"method": method, "k1": k1, "b": b, "rows": rows})

    def save(self, directory: Path) -> None:
        """Write the postings and parameters into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(directory))  # type: ignore[attr-defined]
        (directory / PARAMS_FILE).write_text(json.dumps(self.params), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        import bm25s

        params = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(directory))
        return cls(retriever, params)

    @property
    def rows(self) -> int:
        """Number of indexed passages."""
        return int(self.params["rows"])  # type: ignore[call-overload]

    def scores(self, tokens: Iterable[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens (zeros when none is known)."""
        retriever = self._retriever
        ids = retriever.get_tokens_ids(list(tokens))  # type: ignore[attr-defined]
        if not ids or self.rows == 0:
            return np.zeros(self.rows, dtype=np.float32)
        scores = retriever.get_scores_from_ids(ids)  # type: ignore[attr-defined]
        return np.asarray(scores[: self.rows], dtype=np.float32)

    def terms(self, tokens: Iterable[str]) -> list[list[Postings]]:
        """Each known query token's postings (as bm25s scores a query: a repeated token counts again)."""
        out = []
        for token in tokens:
            found = self.postings(token)
            if found is not None:
                out.append([Postings(*found)])
        return out

    def top(self, tokens: Iterable[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` best rows matching any of ``tokens`` and their scores, best first (:func:`top_matches`)."""
        return top_matches(self.terms(tokens), self.rows, depth)

    def _span(self, token: str) -> tuple[int, int] | None:
        """Where ``token``'s postings lie in bm25s's score matrix (one column per token), if it is known."""
        retriever: Any = self._retriever
        column = retriever.vocab_dict.get(token)
        indptr = retriever.scores["indptr"]
        if column is None or column >= len(indptr) - 1:
            return None
        return int(indptr[column]), int(indptr[column + 1])

    def document_frequency(self, token: str) -> int:
        """How many passages hold ``token``."""
        span = self._span(token)
        return 0 if span is None else span[1] - span[0]

    @property
    def documents(self) -> int:
        """Passages counted in the statistics (a placeholder counts for an empty index)."""
        return int(self._retriever.scores["num_docs"])  # type: ignore[attr-defined]

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The passages holding ``token`` and its BM25 score in each (``None`` if the token is unknown here).

        Views into bm25s's score matrix (one column per token): what a query costs is the length of
        its tokens' postings, not the number of passages.
        """
        span = self._span(token)
        if span is None:
            return None
        start, end = span
        retriever: Any = self._retriever
        rows, scores = retriever.scores["indices"][start:end], retriever.scores["data"][start:end]
        if self.rows == 0:  # only an empty index holds a row past ``rows``: its placeholder
            return rows[:0], scores[:0]
        # Views, not copies: a common token's postings are hundreds of thousands of rows at 10^6 chunks.
        return rows, scores


class TermIds(Sequence[list[int]]):
    """Analysed passages as token ids in one growing int32 array: what BM25 is built from.

    A list of token lists costs about 60 bytes a token in Python; this costs 4, so a build of 10^6
    chunks can keep every chunk's terms until BM25 is built at the end.
    """

    EMPTY = "\x00empty"

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self._ids = array("i")
        self._ends = array("q")

    def add(self, tokens: Sequence[str]) -> None:
        """Append one passage (an empty one gets the placeholder token, matching nothing)."""
        vocabulary = self.vocabulary
        for token in tokens or (self.placeholder(),):
            self._ids.append(vocabulary.setdefault(token, len(vocabulary)))
        self._ends.append(len(self._ids))

    def placeholder(self) -> str:
        """The token an empty passage holds (in the vocabulary from the first call on)."""
        self.vocabulary.setdefault(self.EMPTY, len(self.vocabulary))
        return self.EMPTY

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> list[int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[list[int]]: ...
    def __getitem__(self, index: int | slice) -> list[int] | list[list[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = index + len(self) if index < 0 else index
        start = self._ends[row - 1] if row else 0
        return self._ids[start : self._ends[row]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        start = 0
        for end in self._ends:
            yield self._ids[start:end].tolist()
            start = end


def lucene_idf(frequency: int, documents: int) -> float:
    """BM25's term weight as bm25s's "lucene" method computes it."""
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


class SegmentedLexical:
    """BM25 over a base index and a delta index, scored as if they were one.

    bm25s bakes each term's IDF into its postings, so each part's score for a token is rescaled
    from the part's own IDF to the IDF over both parts (document counts and frequencies summed).
    Rows of deleted documents (``live`` false) score 0; their terms still count in the statistics,
    as deleted documents do in Lucene until segments merge. Length normalisation uses each part's
    own average length; both differences vanish when the next complete build merges the parts.
    """

    def __init__(self, parts: Sequence[LexicalIndex], live: np.ndarray | None = None) -> None:
        if any(part.params.get("method") != "lucene" for part in parts):
            raise ValueError("segmented BM25 supports the lucene method only")
        self.parts = list(parts)
        self.live = live
        self.params = {**self.parts[0].params, "rows": sum(p.rows for p in self.parts)}

    @property
    def rows(self) -> int:
        """Number of indexed passages (current and deleted)."""
        return sum(p.rows for p in self.parts)

    def terms(self, tokens: Iterable[str]) -> list[list[Postings]]:
        """Each known query token's postings in every part, rescaled to the IDF over both parts (each token once)."""
        total = sum(p.documents for p in self.parts)
        out = []
        for token in dict.fromkeys(tokens):
            frequencies = [p.document_frequency(token) for p in self.parts]
            if not any(frequencies):
                continue
            weight = lucene_idf(sum(frequencies), total)
            parts, offset = [], 0
            for part, frequency in zip(self.parts, frequencies, strict=True):
                found = part.postings(token) if frequency else None
                if found is not None:
                    factor = np.float32(weight / lucene_idf(frequency, part.documents))
                    parts.append(Postings(*found, offset=offset, factor=factor))
                offset += part.rows
            out.append(parts)
        return out

    def scores(self, tokens: Iterable[str]) -> np.ndarray:
        """BM25 score of every row for the query tokens."""
        return _score_all(self.terms(tokens), self.rows, self.live)

    def top(self, tokens: Iterable[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` best current rows matching any of ``tokens`` and their scores, best first (:func:`top_matches`)."""
        return top_matches(self.terms(tokens), self.rows, depth, self.live)
