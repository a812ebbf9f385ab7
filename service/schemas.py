"""HTTP request and response bodies (pydantic), separate from the domain types.

The answer schema mirrors :meth:`service.answers.Answer.to_dict`, the contract shared with
``tanya ask --json``.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.engine import MAX_QUESTION_CHARS

ModeName = Literal["hybrid", "dense", "lexical"]


def _check_question(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty or only whitespace")
    if all(unicodedata.category(ch)[0] in ("C", "Z") for ch in text):
        raise ValueError("must contain visible characters, not only control characters")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"must have at most {MAX_QUESTION_CHARS} characters after stripping (got {len(text)})")
    return text


class AskRequest(BaseModel):
    """``POST /v1/ask``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="1-1,000 characters after stripping", examples=["Who selects Tokutei Ginou workers?"])
    top_k: int | None = Field(default=None, ge=1, le=20, description="Passages to retrieve (1-20)")
    mode: ModeName | None = Field(default=None, description="Retrieval mode (default: hybrid)")

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        return _check_question(value)


class HighlightOut(BaseModel):
    """Offsets of the supporting sentence in the document text."""

    start: int
    end: int


class CitationOut(BaseModel):
    """One cited passage; ``document_text[start:end] == text``."""

    marker: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    text: str
    start: int
    end: int
    highlight: HighlightOut
    score: float
    lang: str
    section: str | None = None
    ranks: dict[str, int | None] = {}


class AnswerOut(BaseModel):
    """The answer contract."""

    question: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[CitationOut]
    mode: str
    lang: str
    timings_ms: dict[str, float]


class PassageOut(BaseModel):
    """A retrieved passage."""

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


class SearchOut(BaseModel):
    """``GET /v1/search``."""

    query: str
    mode: str
    results: list[PassageOut]


class DocumentSummary(BaseModel):
    """One entry of ``GET /v1/documents``."""

    doc_id: str
    title: str
    lang: str
    languages: list[str]
    source: str
    kind: str | None = None
    date: str | None = None


class DocumentList(BaseModel):
    """``GET /v1/documents``."""

    documents: list[DocumentSummary]


class DocumentOut(DocumentSummary):
    """``GET /v1/documents/{doc_id}``: metadata plus the text citation offsets refer to."""

    description: str | None = None
    sha256: str
    format: str
    text: str


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: str
    index_build: str | None = None
    documents: int | None = None
    chunks: int | None = None
    detail: str | None = None


class ReloadOut(BaseModel):
    """``POST /v1/admin/reload``."""

    reloaded: bool
    build_id: str | None
    previous_build_id: str | None
    error: str | None = None


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
