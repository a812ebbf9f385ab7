"""The one domain contract: bounds, modes, and the ``Passage``/``Citation``/``Answer`` types.

These models *are* the JSON contract: ``tanya ask --json``, ``tanya search --json`` and the
HTTP responses are their ``model_dump(mode="json")``, and the OpenAPI schema is generated
from them. Serialisation rounds floats for reading; the values held in memory (used by
ranking, abstention and the eval harness) keep full precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_serializer

from indexer.chunks import Chunk

#: Retrieval modes: BM25 only, the dense encoders only, or both fused.
Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = get_args(Mode)

#: Longest question or search query accepted, in characters after stripping.
MAX_QUESTION_CHARS = 1000
#: Most tokens a question may cost any dense encoder (about 1,000 characters of ordinary text;
#: E5 takes ~250 ms at this length on 2 cores, against 1.4 s for 1,000 adversarial tokens).
MAX_QUESTION_TOKENS = 256
#: Passages a caller may ask for.
TOP_K_MIN = 1
TOP_K_MAX = 20


def _rounded(values: Mapping[str, float], digits: int) -> dict[str, float]:
    return {key: round(value, digits) for key, value in values.items()}


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what the CLI prints and the HTTP API returns)."""
        return self.model_dump(mode="json")


class Passage(_Contract):
    """A retrieved chunk with its fused score and its rank (1-based) under each signal.

    ``text == document_text[start:end]``. ``row`` (the chunk's row in the index) is kept
    out of the JSON form: it means nothing outside one index build.
    """

    doc_id: str
    title: str
    source: str
    chunk_id: str
    text: str
    start: int
    end: int
    section: str | None
    lang: str
    score: float
    ranks: dict[str, int | None]
    signal_scores: dict[str, float]
    _row: int = PrivateAttr(default=-1)

    @property
    def row(self) -> int:
        """Row of the chunk in the index it was retrieved from."""
        return self._row

    @classmethod
    def of_chunk(
        cls,
        chunk: Chunk,
        row: int,
        title: str,
        source: str,
        score: float,
        ranks: dict[str, int | None],
        signal_scores: dict[str, float],
    ) -> Passage:
        """The passage for ``chunk`` (at ``row`` of the index) under a retrieval's scores."""
        passage = cls(
            doc_id=chunk.doc_id, title=title, source=source, chunk_id=chunk.chunk_id, text=chunk.text,
            start=chunk.start, end=chunk.end, section=chunk.section, lang=chunk.lang, score=score, ranks=ranks,
            signal_scores=signal_scores,
        )
        passage._row = row
        return passage

    @field_serializer("score")
    def _score(self, value: float) -> float:
        return round(value, 6)

    @field_serializer("signal_scores")
    def _signal_scores(self, value: dict[str, float]) -> dict[str, float]:
        return _rounded(value, 6)


class Highlight(_Contract):
    """Offsets of the supporting sentence in the document text."""

    start: int
    end: int


class Citation(_Contract):
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
    ranks: dict[str, int | None] = {}

    @field_serializer("score")
    def _score(self, value: float) -> float:
        return round(value, 6)


class Answer(_Contract):
    """An extractive, cited answer, or an abstention that still lists the closest passages."""

    question: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[Citation]
    mode: str
    lang: str
    timings_ms: dict[str, float]

    @field_serializer("confidence")
    def _confidence(self, value: float) -> float:
        return round(value, 4)

    @field_serializer("timings_ms")
    def _timings(self, value: dict[str, float]) -> dict[str, float]:
        return _rounded(value, 2)


class SearchResult(_Contract):
    """``tanya search --json`` and ``GET /v1/search``."""

    query: str
    mode: str
    results: list[Passage]
