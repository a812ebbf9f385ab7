"""Extractive answers: pick the sentences that best answer the question, cite them, or abstain.

Each sentence of the top passages is scored by its *support*: a blend of its similarity
to the query under every dense encoder (precomputed sentence vectors, so answering costs
no extra encoding) and the share of the question's content words it contains. The best
1–3 sentences, minus near-duplicates (the same fact in the English and Indonesian halves
of an abstract), become the answer, each followed by its citation marker. When the best
support is below the calibrated threshold the answer abstains, in the question's
language, and still lists the closest passages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from indexer.chunks import Sentence
from indexer.language import Lang, detect_language
from indexer.lexical import Analyzer
from indexer.settings import Mode
from indexer.store import IndexData
from service.answer_types import STRICT_TYPES, AnswerType, expected_type, measured_words, states_value
from service.retrieval import Passage, QueryAnalysis

# Cosine similarities mean different things per encoder: E5 puts almost everything
# between 0.7 and 0.9, USE between 0 and 0.7. These anchors map each encoder's cosine to
# [0, 1] (lo → 0, hi → 1); they were read off the gold set's question-to-best-sentence
# cosines (eval/README.md, "Calibration constants").
DENSE_ANCHORS: dict[str, tuple[float, float]] = {
    "e5-small": (0.78, 0.90),
    "use-m3": (0.15, 0.55),
}
DEFAULT_ANCHORS = (0.2, 0.7)
# Above these cosines two sentences are taken to state the same fact (often translations).
# USE separates the corpus's EN/ID translation pairs (min 0.673) from other sentence pairs
# (max 0.670); E5 does not (translations 0.865-0.93, others up to 0.934), so E5 only flags
# near-identical sentences.
DUPLICATE_COSINE: dict[str, float] = {"e5-small": 0.95, "use-m3": 0.67}
DEFAULT_DUPLICATE_COSINE = 0.9
DENSE_SHARE = 0.6  # weight of the dense part of the support; the rest is word overlap
CROSS_LINGUAL_SHARE = 0.9  # weight of the dense part for a sentence in another language
OVERLAP_GATE = 0.25  # dense support at which word overlap counts fully
MIN_WORDS = 4  # headings and keyword stubs rarely answer anything
SELECT_MARGIN = 0.15  # extra sentences must be this close to the best one

# A "who" question prefers a sentence naming organisations or people: its support is
# multiplied by ACTORS_BONUS, and by ACTORS_MISS when it names none. Value questions (money,
# age, level, date, duration, count) are gated instead: see service/answer_types.py.
ACTORS_BONUS = 1.3
ACTORS_MISS = 0.7
TYPED_FLOOR = 0.05  # a sentence naming actors must still have some support to be added


ABSTAIN_MESSAGES: dict[Lang, str] = {
    "en": "The sources do not answer this question. The closest passages are listed below.",
    "id": "Sumber yang tersedia tidak menjawab pertanyaan ini. Bagian yang paling dekat tercantum di bawah.",
}
# When a value question is refused because no source sentence states such a value, say
# which value is missing: "the sources give no amount" tells a worker more than "no answer".
_MISSING_VALUE: dict[AnswerType, dict[Lang, str]] = {
    AnswerType.MONEY: {"en": "an amount of money", "id": "nominal uang (biaya, gaji, atau harga)"},
    AnswerType.AGE: {"en": "an age", "id": "batas usia"},
    AnswerType.LEVEL: {"en": "a language level", "id": "level bahasa"},
    AnswerType.DATE: {"en": "a date", "id": "tanggal atau tahun"},
    AnswerType.DURATION: {"en": "a duration", "id": "lama waktu"},
    AnswerType.COUNT: {"en": "this number", "id": "jumlah ini"},
    AnswerType.REQUIREMENTS: {"en": "requirements or documents", "id": "syarat atau dokumen"},
}


def abstain_message(lang: Lang, missing: AnswerType | None = None) -> str:
    """The abstention text in ``lang``, naming the missing kind of value when there is one."""
    if missing is None or missing not in _MISSING_VALUE:
        return ABSTAIN_MESSAGES[lang]
    what = _MISSING_VALUE[missing][lang]
    if lang == "id":
        return f"Sumber yang tersedia tidak menyebutkan {what} untuk pertanyaan ini. Bagian yang paling dekat tercantum di bawah."
    return f"The sources do not state {what} for this question. The closest passages are listed below."


_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)|(?<=\S)(\*{1,3}|_{2,3})")


@dataclass(frozen=True)
class Highlight:
    """Offsets of the supporting sentence in the document text."""

    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """A passage that supports one answer sentence; ``text == document_text[start:end]``."""

    marker: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    text: str
    start: int
    end: int
    highlight: Highlight
    score: float
    lang: str
    section: str | None = None
    ranks: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """The answer contract shared by the CLI (``--json``) and ``POST /v1/ask``."""

    question: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[Citation]
    mode: str
    lang: str
    timings_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the documented field order."""
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "citations": [
                {
                    "marker": c.marker,
                    "doc_id": c.doc_id,
                    "title": c.title,
                    "source": c.source,
                    "chunk_id": c.chunk_id,
                    "text": c.text,
                    "start": c.start,
                    "end": c.end,
                    "highlight": asdict(c.highlight),
                    "score": round(c.score, 6),
                    "lang": c.lang,
                    "section": c.section,
                    "ranks": dict(c.ranks),
                }
                for c in self.citations
            ],
            "mode": self.mode,
            "lang": self.lang,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


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


def display_text(text: str) -> str:
    """Sentence text for reading: markdown emphasis markers removed, words untouched."""
    return _EMPHASIS.sub("", text).strip()


class Answerer:
    """Builds :class:`Answer` objects from retrieved passages."""

    def __init__(
        self,
        index: IndexData,
        analyzer: Analyzer,
        thresholds: Mapping[str, float],
        max_sentences: int = 3,
    ) -> None:
        self.index = index
        self.analyzer = analyzer
        self.thresholds = dict(thresholds)
        self.max_sentences = max_sentences

    # --- scoring -------------------------------------------------------------------------
    def _content_words(self, question: str) -> list[tuple[str, set[str]]]:
        """Each content word of the question with its possible stems (English and Indonesian)."""
        words = [w for w in self.analyzer.words(question) if w not in self.analyzer.stopwords]
        return [(w, set(self.analyzer.stems(w))) for w in dict.fromkeys(words)]

    def _tokens(self, sentence: Sentence) -> set[str]:
        tokens = set(self.analyzer.analyse(sentence.text, sentence.lang))
        tokens.update(self.analyzer.words(sentence.text))
        return tokens

    def _overlap(self, content: list[tuple[str, set[str]]], row: int) -> float:
        """Share of question words in the sentence; words found only in the sentence before count half.

        The previous sentence is context: "The results ... of the Tokutei Ginou program" followed
        by "The involvement of ... BP2MI, and LPK" answers a question naming the programme.
        """
        if not content:
            return 0.0
        sentence = self.index.sentences[row]
        tokens = self._tokens(sentence)
        previous: set[str] = set()
        if row > 0 and self.index.sentences[row - 1].doc_id == sentence.doc_id:
            previous = self._tokens(self.index.sentences[row - 1])
        score = 0.0
        for word, stems in content:
            if word in tokens or stems & tokens:
                score += 1.0
            elif word in previous or stems & previous:
                score += 0.5
        return score / len(content)

    @staticmethod
    def _calibrated(analysis: QueryAnalysis, vectors: Mapping[str, np.ndarray], row: int) -> float:
        """Mean over encoders of the query cosine with ``vectors[encoder][row]``, mapped through the anchors."""
        if not analysis.vectors:
            return 0.0
        values = []
        for embedder_id, query in analysis.vectors.items():
            cosine = float(vectors[embedder_id][row] @ query)
            lo, hi = DENSE_ANCHORS.get(embedder_id, DEFAULT_ANCHORS)
            values.append(min(1.0, max(0.0, (cosine - lo) / (hi - lo))))
        return float(np.mean(values))

    def _dense(self, analysis: QueryAnalysis, row: int) -> float:
        """Calibrated dense similarity of sentence ``row`` to the query."""
        return self._calibrated(analysis, self.index.sentence_vectors, row)

    def _dense_passage(self, analysis: QueryAnalysis, passage: Passage) -> float:
        """Calibrated dense similarity of the whole passage (its chunk vector) to the query."""
        return self._calibrated(analysis, self.index.chunk_vectors, passage.row)

    def score_sentences(
        self, analysis: QueryAnalysis, passages: Sequence[Passage], kind: AnswerType | None, question_lang: Lang
    ) -> list[ScoredSentence]:
        """Every sentence of ``passages`` with its support, best first (each sentence once).

        ``kind`` and ``question_lang`` are the question's expected answer type and language.
        """
        content = self._content_words(analysis.text)
        prefers_actors = kind is AnswerType.ACTORS
        dense_share = DENSE_SHARE if analysis.vectors else 0.0
        seen: set[int] = set()
        scored: list[ScoredSentence] = []
        for rank, passage in enumerate(passages, start=1):
            passage_dense = self._dense_passage(analysis, passage)
            rows = self.index.sentence_rows(passage.chunk)
            for row in range(rows.start, rows.stop):
                if row in seen:
                    continue
                seen.add(row)
                sentence = self.index.sentences[row]
                dense = self._dense(analysis, row)
                overlap = self._overlap(content, row)
                if dense_share:
                    # Shared words without semantic agreement are coincidence ("cultural
                    # capital" for "the capital of France"): overlap counts in proportion
                    # to the dense support of the sentence or of its passage, up to OVERLAP_GATE.
                    topical = max(dense, passage_dense)
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
        for embedder_id, vectors in self.index.sentence_vectors.items():
            limit = DUPLICATE_COSINE.get(embedder_id, DEFAULT_DUPLICATE_COSINE)
            if float(vectors[a] @ vectors[b]) >= limit:
                return True
        return False

    def _names_measured(self, item: ScoredSentence, measured: Sequence[str], lang: Lang) -> bool:
        """Whether a sentence in the question's language names what the question counts or measures.

        "Berapa lama kontrak magang?" is not answered by "...program yang telah berjalan lebih
        dari 30 tahun": it states a duration, but of the programme, not of a contract. Across
        languages the words cannot be compared, so such sentences pass.
        """
        if not measured or item.sentence.lang != lang:
            return True
        tokens = self._tokens(item.sentence)
        return any(word in tokens or set(self.analyzer.stems(word)) & tokens for word in measured)

    def best_sentence(
        self, question: str, scored: Sequence[ScoredSentence], kind: AnswerType | None, lang: Lang
    ) -> ScoredSentence | None:
        """The sentence the answer is built on: for a value question, the best one stating such a value."""
        if kind is not None and kind in STRICT_TYPES:
            measured: list[str] = []
            if kind in (AnswerType.COUNT, AnswerType.DURATION):
                measured = measured_words(question, self.analyzer.stopwords)
            return next(
                (
                    item
                    for item in scored
                    if states_value(kind, item.sentence.text) and self._names_measured(item, measured, lang)
                ),
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

    # --- answer --------------------------------------------------------------------------
    def _citation(self, marker: int, item: ScoredSentence) -> Citation:
        chunk = item.passage.chunk
        return Citation(
            marker=marker,
            doc_id=chunk.doc_id,
            title=item.passage.title,
            source=item.passage.source,
            chunk_id=chunk.chunk_id,
            text=chunk.text,
            start=chunk.start,
            end=chunk.end,
            highlight=Highlight(item.sentence.start, item.sentence.end),
            score=item.passage.score,
            lang=chunk.lang,
            section=chunk.section,
            ranks=item.passage.ranks,
        )

    def answer(
        self, question: str, analysis: QueryAnalysis, passages: Sequence[Passage], mode: Mode
    ) -> Answer:
        """Answer ``question`` from ``passages`` (already retrieved for ``analysis``)."""
        started = time.perf_counter()
        lang = detect_language(question, fallback="en")
        kind = expected_type(question)
        scored = self.score_sentences(analysis, passages, kind, lang)
        # A value question with no sentence stating such a value is not answered by the
        # sources, however close their topic: confidence 0.
        best = self.best_sentence(question, scored, kind, lang)
        confidence = best.support if best is not None else 0.0
        if best is None or confidence < self.thresholds[mode]:
            # Abstain, but show the closest passage(s) with their best sentence.
            closest: list[ScoredSentence] = []
            for item in scored:
                if all(item.passage.chunk_id != c.passage.chunk_id for c in closest):
                    closest.append(item)
                if len(closest) >= self.max_sentences:
                    break
            citations = [self._citation(i, item) for i, item in enumerate(closest, start=1)]
            # Name the missing value only when that is why: not when a stated value scored low.
            text = abstain_message(lang, kind if best is None else None)
            abstained = True
        else:
            chosen = self.select(scored, kind, best)
            citations = [self._citation(i, item) for i, item in enumerate(chosen, start=1)]
            text = " ".join(f"{display_text(item.sentence.text)} [{c.marker}]" for item, c in zip(chosen, citations, strict=True))
            abstained = False
        timings = dict(analysis.timings_ms)
        timings.update({f"encoder:{name}": ms for name, ms in analysis.encoder_ms.items()})
        timings["answer"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=question,
            answer=text,
            abstained=abstained,
            confidence=confidence,
            citations=citations,
            mode=mode,
            lang=lang,
            timings_ms=timings,
        )
