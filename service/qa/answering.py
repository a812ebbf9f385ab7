"""Extractive answers: pick the sentences that best answer the question, cite them, or abstain.

With the reranker on, the trained answer reader (``service.qa.reranker``) reads the question
together with the top passages, every sentence in its passage, in one batched pass; its
calibrated P(answer) orders the sentences and decides abstention. With it off, the cheap
*support* below decides.

Each sentence of the top passages is scored by its *support*: a blend of its similarity
to the query under every dense encoder (precomputed sentence vectors, so answering costs
no extra encoding) and the share of the question's content words it contains. The best
1–3 sentences, minus near-duplicates (the same fact in the English and Indonesian halves
of an abstract), become the answer, each followed by its citation marker. When the best
support is below the calibrated threshold the answer abstains, in the question's
language, and still lists the closest passages.

Each encoder's cosines are read on its own scale: ``Embedder.anchors`` map a cosine to
[0, 1] and ``Embedder.duplicate_cosine`` says when two sentences state the same fact.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from indexer.chunks import Sentence
from indexer.embedders import Embedder
from indexer.lexical import Analyzer
from indexer.store import IndexData, RowMatrix
from indexer.store.format import row_scores
from indexer.store.records import records_at
from service.qa.answer_types import STRICT_TYPES, AnswerType, states_value
from service.qa.messages import NO_CONTENT_MESSAGES, abstain_message, display_text
from service.qa.query import ContentWord, Query
from service.qa.types import Answer, Citation, Highlight, Passage

DENSE_SHARE = 0.6  # weight of the dense part of the support; the rest is word overlap
TOKEN_CACHE_SENTENCES = 16_384  # sentences whose tokens an answerer keeps (a few MB)
CROSS_LINGUAL_SHARE = 0.9  # weight of the dense part for a sentence in another language
OVERLAP_GATE = 0.25  # dense support at which word overlap counts fully
MIN_WORDS = 4  # headings and keyword stubs rarely answer anything
SELECT_MARGIN = 0.15  # extra sentences must be this close to the best one

# A "who" question prefers a sentence naming organisations or people: its support is
# multiplied by ACTORS_BONUS, and by ACTORS_MISS when it names none. Value questions (money,
# age, level, date, duration, count) are gated instead: see service/qa/answer_types.py.
ACTORS_BONUS = 1.3
ACTORS_MISS = 0.7
TYPED_FLOOR = 0.05  # a sentence naming actors must still have some support to be added


@dataclass(frozen=True)
class Cascade:
    """Read the best-ranked ``first`` passages; read the others only when no sentence of those
    reaches a calibrated P(answer) of ``confident``.

    The reader reads each passage on its own, so the first passages' scores do not change
    when the others are read: stopping early can only miss a better sentence further down,
    which the retrieval-rank prior already makes rare (eval/README.md measures how rare, and
    how many tokens it saves).
    """

    first: int
    confident: float

    def stops(self, probabilities: Sequence[np.ndarray]) -> bool:
        """Whether the first step's sentence ``probabilities`` are enough: one of them reaches ``confident``."""
        return any(len(p) and float(p.max()) >= self.confident for p in probabilities)


@dataclass(frozen=True)
class RerankerConfig:
    """The answer reranker's settings (from ``Settings.reranker*``)."""

    enabled: bool = False
    #: Most sentences the reader reads per question: the candidate passages' sentences in
    #: retrieval order, the last passage cut short at the cap (bounds the cost of long passages).
    candidates: int = 64
    #: Calibrated P(answerable) below which Tanya abstains; ``None``: the thresholds shipped with the
    #: model (one per question language).
    threshold: float | None = None
    #: torch intra-op threads for the reranker.
    threads: int = 2
    #: A folder with another trained reader (``reranker.json``, adapter); ``None``: the shipped one.
    model_dir: Path | None = None
    #: How the reader's forward pass runs: ``auto`` (bf16 where the CPU has it natively), fp32, bf16, int8.
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    #: Keep the hand-written answer-type gates (value questions need a sentence stating a value).
    type_gates: bool = False
    #: Who decides abstention: the support threshold (calibrated on the gold set; the reranker
    #: only orders), the reranker's calibrated P(answer), or "either" (abstain when either says so).
    abstain: Literal["support", "reranker", "either"] = "support"
    #: Read in two steps: the first ``first_passages`` passages, and the rest only when none of
    #: their sentences reaches ``confident`` (0: every passage in one step). See :class:`Cascade`.
    first_passages: int = 2
    confident: float = 0.3

    @property
    def cascade(self) -> Cascade | None:
        """The two-step reading these settings ask for (``None``: one step)."""
        return Cascade(self.first_passages, self.confident) if self.first_passages > 0 else None


@dataclass(frozen=True)
class ReaderScores:
    """What a reader says of one question's passages."""

    #: P(sentence answers the question), per sentence, per passage, in input order; only the
    #: passages read (a :class:`Cascade` may stop before the last).
    sentences: list[np.ndarray]
    #: P(some sentence of these passages answers it): what abstention is decided on.
    answerable: float


#: Per passage, whether each sentence is in another language than the question (``None``: none is).
Foreign = Sequence[Sequence[bool] | np.ndarray] | None


class PassageReader(Protocol):
    """What the answerer needs from a reranker: calibrated P(answer) for every sentence of the passages."""

    @property
    def threshold(self) -> float:
        """The P(answer) a second or third sentence must reach to join the answer."""
        ...

    def abstain_threshold(self, lang: str) -> float:
        """The P(answerable) below which a question in ``lang`` is not answered."""
        ...

    def read(
        self, question: str, passages: Sequence[Sequence[str]], foreign: Foreign = None, cascade: Cascade | None = None
    ) -> ReaderScores:
        """Sentence and question probabilities for ``passages`` (one batched call, or two with a
        ``cascade``); ``foreign`` marks, per passage, the sentences in another language than the question."""
        ...


@dataclass(frozen=True)
class AnswerConfig:
    """How answers are built (from ``Settings.answer``); thresholds were chosen with ``tanya eval``."""

    max_sentences: int = 3
    #: Retrieved passages whose sentences are candidates.
    candidate_passages: int = 5
    #: Minimum support to answer, in dense and hybrid modes.
    abstain_threshold: float = 0.20
    #: The same for lexical mode, where support is word overlap alone (another scale).
    abstain_threshold_lexical: float = 0.10
    reranker: RerankerConfig = field(default_factory=RerankerConfig)

    def threshold_for(self, mode: str) -> float:
        """The abstention threshold calibrated for ``mode``."""
        return self.abstain_threshold_lexical if mode == "lexical" else self.abstain_threshold


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence with the passage it was found in."""

    sentence: Sentence
    row: int
    passage: Passage
    passage_rank: int
    support: float
    dense: float
    overlap: float


class Answerer:
    """Builds :class:`Answer` objects from retrieved passages."""

    def __init__(
        self,
        index: IndexData,
        analyzer: Analyzer,
        embedders: Sequence[Embedder],
        config: AnswerConfig,
        reranker: PassageReader | None = None,
    ) -> None:
        self.index = index
        self.reranker = reranker
        self.analyzer = analyzer
        self.config = config
        self.max_sentences = config.max_sentences
        self.anchors: dict[str, tuple[float, float]] = {e.id: e.anchors for e in embedders}
        self.duplicate_cosine: dict[str, float] = {e.id: e.duplicate_cosine for e in embedders}
        # The same passages come back for many questions: their sentences are tokenised once each, up to
        # TOKEN_CACHE_SENTENCES of them (per answerer, so per loaded index; lru_cache is thread-safe).
        self._tokens = functools.lru_cache(maxsize=TOKEN_CACHE_SENTENCES)(self._sentence_tokens)

    # --- scoring -------------------------------------------------------------------------

    def _sentence_tokens(self, sentence: Sentence) -> frozenset[str]:
        """The sentence's stems and plain words (what the question's content words are matched against)."""
        stems = self.analyzer.analyse(sentence.text, sentence.lang)
        return frozenset(stems).union(self.analyzer.words(sentence.text))

    def _overlap(self, content: Sequence[ContentWord], tokens: frozenset[str], previous: frozenset[str]) -> float:
        """Share of question words in the sentence (``tokens``); words found only in the sentence before
        (``previous``) count half.

        The previous sentence is context: "The results ... of the Tokutei Ginou program" followed
        by "The involvement of ... BP2MI, and LPK" answers a question naming the programme.
        """
        if not content:
            return 0.0
        score = 0.0
        for word, stems in content:
            if word in tokens or stems & tokens:
                score += 1.0
            elif word in previous or stems & previous:
                score += 0.5
        return score / len(content)

    def _calibrated(self, query: Query, vectors: Mapping[str, RowMatrix], rows: Sequence[int]) -> np.ndarray:
        """Per row, the mean over encoders of the query cosine with ``vectors[encoder][row]``, mapped through
        the anchors (one product per encoder for all ``rows``)."""
        if not query.vectors or not len(rows):
            return np.zeros(len(rows))
        wanted = np.asarray(rows, dtype=np.int64)
        values = []
        for embedder_id, vector in query.vectors.items():
            cosines = row_scores(vectors[embedder_id], wanted, np.asarray(vector, dtype=np.float32)).astype(np.float64)
            lo, hi = self.anchors[embedder_id]
            values.append(np.clip((cosines - lo) / (hi - lo), 0.0, 1.0))
        return np.mean(values, axis=0)

    def score_sentences(self, query: Query, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """Every sentence of ``passages`` with its support, best first (each sentence once).

        The passages' chunks, their sentences and the sentence before each are read in one query
        apiece, each sentence is tokenised once (and kept), and the dense support is one product per encoder:
        a row at a time (a query and a tokenisation per sentence, and again as the next one's
        context) this was 3.8 of the 4.4 ms an answer took beyond encoding (cProfile, 600 questions).
        """
        content = query.content
        question_lang = query.lang
        prefers_actors = query.kind is AnswerType.ACTORS
        dense_share = DENSE_SHARE if query.vectors else 0.0
        chunks = records_at(self.index.chunks, [passage.row for passage in passages])
        candidates: list[tuple[int, int, Passage]] = []  # (row, passage rank, passage), each row once
        seen: set[int] = set()
        for rank, (passage, chunk) in enumerate(zip(passages, chunks, strict=True), start=1):
            covered = self.index.sentence_rows(chunk)
            for row in range(covered.start, covered.stop):
                if row not in seen:
                    seen.add(row)
                    candidates.append((row, rank, passage))
        wanted = sorted(seen | {row - 1 for row in seen if row > 0})
        sentences = dict(zip(wanted, records_at(self.index.sentences, wanted), strict=True))
        rows = [row for row, _, _ in candidates]
        dense_of = self._calibrated(query, self.index.sentence_vectors, rows)
        passage_dense = self._calibrated(query, self.index.chunk_vectors, [passage.row for passage in passages])
        scored: list[ScoredSentence] = []
        for (row, rank, passage), dense_value in zip(candidates, dense_of, strict=True):
            sentence = sentences[row]
            dense = float(dense_value)
            overlap = 0.0
            if content:
                before = sentences.get(row - 1)
                same_document = before is not None and before.doc_id == sentence.doc_id
                previous = self._tokens(before) if before is not None and same_document else frozenset()
                overlap = self._overlap(content, self._tokens(sentence), previous)
            if dense_share:
                # Shared words without semantic agreement are coincidence ("cultural
                # capital" for "the capital of France"): overlap counts in proportion
                # to the dense support of the sentence or of its passage, up to OVERLAP_GATE.
                topical = max(dense, float(passage_dense[rank - 1]))
                overlap *= min(1.0, topical / OVERLAP_GATE)
            support = dense_share * dense + (1 - dense_share) * overlap
            if sentence.lang != question_lang:
                # Across languages the question's words cannot appear in the sentence;
                # judge such sentences on the dense similarity alone.
                support = max(support, CROSS_LINGUAL_SHARE * dense)
            if len(sentence.text.split()) < MIN_WORDS:
                support *= 0.5
            if prefers_actors:
                support *= ACTORS_BONUS if states_value(AnswerType.ACTORS, sentence.text) else ACTORS_MISS
            support = min(1.0, support)
            scored.append(ScoredSentence(sentence, row, passage, rank, support, dense, overlap))
        # A small prior for the passage's retrieval rank breaks ties toward fused evidence.
        scored.sort(key=lambda s: (-(s.support + 0.02 / s.passage_rank), s.row))
        return scored

    def _duplicate(self, a: int, b: int) -> bool:
        return bool(self._duplicates([a], [b])[0, 0])

    def _duplicates(self, rows: Sequence[int], others: Sequence[int]) -> np.ndarray:
        """``out[i, j]``: whether sentences ``rows[i]`` and ``others[j]`` state the same thing (any
        encoder's cosine at or above its ``duplicate_cosine``)."""
        out = np.zeros((len(rows), len(others)), dtype=bool)
        if not len(rows) or not len(others):
            return out
        a, b = np.asarray(rows, dtype=np.int64), np.asarray(others, dtype=np.int64)
        for embedder_id, vectors in self.index.sentence_vectors.items():
            cosines = np.asarray(vectors[a], dtype=np.float32) @ np.asarray(vectors[b], dtype=np.float32).T
            out |= cosines >= self.duplicate_cosine[embedder_id]
        return out

    def _names_measured(self, item: ScoredSentence, query: Query) -> bool:
        """Whether a sentence in the question's language names what the question counts or measures.

        "Berapa lama kontrak magang?" is not answered by "...program yang telah berjalan lebih
        dari 30 tahun": it states a duration, but of the programme, not of a contract. Across
        languages the words cannot be compared, so such sentences pass.
        """
        if not query.measured or item.sentence.lang != query.lang:
            return True
        tokens = self._tokens(item.sentence)
        return any(word in tokens or set(self.analyzer.stems(word)) & tokens for word in query.measured)

    def best_sentence(self, query: Query, scored: Sequence[ScoredSentence]) -> ScoredSentence | None:
        """The sentence the answer is built on: for a value question, the best one stating such a value."""
        kind = query.kind
        if kind is not None and kind in STRICT_TYPES:
            return next(
                (item for item in scored if states_value(kind, item.sentence.text) and self._names_measured(item, query)),
                None,
            )
        return scored[0] if scored else None

    def select(
        self, scored: Sequence[ScoredSentence], kind: AnswerType | None = None, best: ScoredSentence | None = None
    ) -> list[ScoredSentence]:
        """``best`` (by default the top sentence) plus up to ``max_sentences - 1`` close, non-duplicate ones.

        For a value question ``best`` is the sentence stating the value, and it leads the
        answer; the others add context. For a "who" question whose chosen sentences name no
        actors, the best sentence of the retrieved passages that does is added: the top
        sentence often gives the topic ("...selecting ... Indonesian migrant workers") while
        the actors are named one sentence away.
        """
        if not scored:
            return []
        lead = best if best is not None else scored[0]
        chosen = [lead]
        for candidate in scored:
            if len(chosen) >= self.max_sentences:
                break
            if candidate.support < lead.support - SELECT_MARGIN:
                break
            if candidate.row == lead.row or any(self._duplicate(candidate.row, c.row) for c in chosen):
                continue
            chosen.append(candidate)
        if kind is AnswerType.ACTORS and not any(states_value(kind, c.sentence.text) for c in chosen):
            typed = [c for c in scored if states_value(kind, c.sentence.text) and c.support >= TYPED_FLOOR]
            if typed and not any(self._duplicate(typed[0].row, c.row) for c in chosen):
                chosen = [*chosen[: self.max_sentences - 1], typed[0]]
        return chosen

    # --- reranker ------------------------------------------------------------------------
    def abstain_threshold(self, lang: str) -> float:
        """The calibrated P(answerable) below which the reranked answer abstains, for a question in ``lang``."""
        configured = self.config.reranker.threshold
        if configured is not None or self.reranker is None:
            return configured if configured is not None else 0.5
        return self.reranker.abstain_threshold(lang)

    @property
    def sentence_threshold(self) -> float:
        """The calibrated P(answer) a second or third reranked sentence must reach."""
        return self.reranker.threshold if self.reranker is not None else 0.5

    def reading_groups(self, passages: Sequence[Passage]) -> list[tuple[int, Passage, range]]:
        """``(retrieval rank, passage, sentence rows)`` the reader reads: at most ``candidates`` sentences in all."""
        budget = self.config.reranker.candidates
        groups: list[tuple[int, Passage, range]] = []
        for rank, passage in enumerate(passages, start=1):
            if budget <= 0:
                break
            covered = self.index.sentence_rows(self.index.chunks[passage.row])
            rows = range(covered.start, min(covered.stop, covered.start + budget))
            budget -= len(rows)
            if len(rows):
                groups.append((rank, passage, rows))
        return groups

    def reading_texts(self, groups: Sequence[tuple[int, Passage, range]]) -> list[list[str]]:
        """The sentence texts of :meth:`reading_groups`, passage by passage."""
        return [[self.index.sentences[row].text for row in rows] for _, _, rows in groups]

    def reading_foreign(self, query: Query, groups: Sequence[tuple[int, Passage, range]]) -> list[list[bool]]:
        """Per group of :meth:`reading_groups`, which sentences are in another language than ``query``
        and not also stated in its language.

        The flag lifts a sentence's calibrated score (:class:`Calibration`'s ``foreign``) because the
        reader, trained on monolingual pools, under-scores sentences in the other language. When the
        same statement is also read in the question's language (a bilingual source's two abstracts;
        "the same" by the encoders' duplicate test), that correction would only make the reader
        prefer the translation the asker reads less easily: the two are compared on the reader's
        own scores. A twin counts only where it is read in the same step of a two-step reading.
        """
        rows = [row for _, _, group in groups for row in group]
        foreign = np.array([self.index.sentences[row].lang != query.lang for row in rows], dtype=bool)
        first = self.config.reranker.first_passages or len(groups)
        late = np.array([i >= first for i, (_, _, group) in enumerate(groups) for _ in group], dtype=bool)
        # twin[i, j]: sentence j says in the question's language what sentence i says, and is read
        # no later than i (a first-step sentence's twin must be in the first step too).
        twin = self._duplicates(rows, rows) & ~foreign[None, :] & ~(~late[:, None] & late[None, :])
        flags = foreign & ~twin.any(axis=1)
        out, at = [], 0
        for _, _, group in groups:
            out.append([bool(flag) for flag in flags[at : at + len(group)]])
            at += len(group)
        return out

    def rerank(self, query: Query, passages: Sequence[Passage]) -> tuple[list[ScoredSentence], float, float]:
        """Every sentence of ``passages`` (up to ``candidates``) the reader read, scored by it, best first.

        ``support`` becomes the calibrated P(answer). A sentence in two overlapping passages
        keeps its better score (the better-ranked passage on a tie). Also returns the reader's
        P(answerable) and the milliseconds it took (the "rerank" stage).
        """
        if self.reranker is None or not passages:
            return [], 0.0, 0.0
        groups = self.reading_groups(passages)
        texts = self.reading_texts(groups)
        foreign = self.reading_foreign(query, groups)
        started = time.perf_counter()
        scores = self.reranker.read(query.text, texts, foreign, self.config.reranker.cascade)
        elapsed = (time.perf_counter() - started) * 1000
        best: dict[int, ScoredSentence] = {}
        # A cascade may have stopped before the last passages: only the ones read are candidates.
        for (rank, passage, rows), values in zip(groups[: len(scores.sentences)], scores.sentences, strict=True):
            for row, p in zip(rows, values, strict=True):
                if row not in best or float(p) > best[row].support:
                    best[row] = ScoredSentence(self.index.sentences[row], row, passage, rank, float(p), 0.0, 0.0)
        ranked = sorted(best.values(), key=lambda item: (-item.support, item.passage_rank, item.row))
        return ranked, scores.answerable, elapsed

    def select_reranked(self, ranked: Sequence[ScoredSentence], best: ScoredSentence) -> list[ScoredSentence]:
        """``best`` plus up to ``max_sentences - 1`` more that clear the threshold and repeat nothing chosen."""
        chosen = [best]
        for candidate in ranked:
            if len(chosen) >= self.max_sentences or candidate.support < self.sentence_threshold:
                break
            if candidate.row == best.row or any(self._duplicate(candidate.row, c.row) for c in chosen):
                continue
            chosen.append(candidate)
        return chosen

    # --- answer --------------------------------------------------------------------------
    @staticmethod
    def _citation(marker: int, item: ScoredSentence) -> Citation:
        passage = item.passage
        return Citation(
            marker=marker,
            doc_id=passage.doc_id,
            title=passage.title,
            source=passage.source,
            chunk_id=passage.chunk_id,
            text=passage.text,
            start=passage.start,
            end=passage.end,
            highlight=Highlight(start=item.sentence.start, end=item.sentence.end),
            score=passage.score,
            lang=passage.lang,
            section=passage.section,
            ranks=passage.ranks,
        )

    def answer(self, query: Query, passages: Sequence[Passage]) -> Answer:
        """Answer ``query`` from ``passages`` (already retrieved for it); ``timings_ms`` holds only ``rerank``."""
        lang = query.lang
        kind = query.kind
        scored = self.score_sentences(query, passages)
        reranked = self.reranker is not None
        timings: dict[str, float] = {}
        gate: ScoredSentence | None = None
        if reranked:
            # The support path's verdict (with its value-type gate), for the "support" and "either" rules.
            gate = self.best_sentence(query, scored)
            supported = gate is not None and gate.support >= self.config.threshold_for(query.mode)
            rule = self.config.reranker.abstain
            if rule == "support" and not supported:
                # The support path abstains and the reader could not overrule it: reading would
                # only reorder the closest passages, at the answer's whole cost.
                best = gate
                confidence = gate.support if gate is not None else 0.0
                answers = False
            else:
                scored, answerable, timings["rerank"] = self.rerank(query, passages)
                gated = self.config.reranker.type_gates
                best = self.best_sentence(query, scored) if gated else (scored[0] if scored else None)
                # The reader's P(the passages answer the question), not one sentence's P(answer):
                # an answer found in two sentences is no less certain than one found in one.
                confidence = answerable if best is not None else 0.0
                likely = confidence >= self.abstain_threshold(lang)
                answers = best is not None and (
                    supported if rule == "support" else likely if rule == "reranker" else supported and likely
                )
        else:
            # A value question with no sentence stating such a value is not answered by the
            # sources, however close their topic: confidence 0.
            best = self.best_sentence(query, scored)
            confidence = best.support if best is not None else 0.0
            answers = best is not None and confidence >= self.config.threshold_for(query.mode)
        # A question of stop words alone ("the of and?", "why?") names nothing to look for:
        # whatever scored best answers some other question, so abstain and say why.
        vague = not query.content
        if vague:
            confidence = 0.0
        if best is None or not answers or vague:
            # Abstain, but show the closest passage(s) with their best sentence.
            closest: list[ScoredSentence] = []
            for item in scored:
                if all(item.passage.chunk_id != c.passage.chunk_id for c in closest):
                    closest.append(item)
                if len(closest) >= self.max_sentences:
                    break
            citations = [self._citation(i, item) for i, item in enumerate(closest, start=1)]
            # Name the missing value only when that is why: not when a stated value scored low.
            # (with the reranker, the support path's value-type gate says whether the value is missing).
            missing = gate is None if reranked else best is None
            text = NO_CONTENT_MESSAGES[lang] if vague else abstain_message(lang, kind if missing else None)
            abstained = True
        else:
            chosen = self.select_reranked(scored, best) if reranked else self.select(scored, kind, best)
            citations = [self._citation(i, item) for i, item in enumerate(chosen, start=1)]
            text = " ".join(
                f"{display_text(item.sentence.text)} [{c.marker}]" for item, c in zip(chosen, citations, strict=True)
            )
            abstained = False
        return Answer(
            question=query.text,
            answer=text,
            abstained=abstained,
            confidence=confidence,
            citations=citations,
            mode=query.mode,
            lang=lang,
            timings_ms=timings,
        )
