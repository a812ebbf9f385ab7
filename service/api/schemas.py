"""HTTP request bodies and the responses that are not domain types.

Answers and passages are answered with the domain types themselves
(``service.qa.types``): the OpenAPI schema is generated from them, so there is no second
copy of the answer contract here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.errors import InvalidQueryError
from service.qa.query import clean_question
from service.qa.types import MAX_QUESTION_CHARS, TOP_K_MAX, TOP_K_MIN, Mode


class AskRequest(BaseModel):
    """``POST /v1/ask``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        description=f"1-{MAX_QUESTION_CHARS:,} characters after stripping, with at least one letter or digit",
        examples=["Who selects Tokutei Ginou workers?"],
        # Documented, not enforced here: clean_question() checks the stripped text (so do not count spaces).
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS},
    )
    top_k: int | None = Field(
        default=None, ge=TOP_K_MIN, le=TOP_K_MAX, description=f"Passages to retrieve ({TOP_K_MIN}-{TOP_K_MAX})"
    )
    mode: Mode | None = Field(default=None, description="Retrieval mode (default: hybrid)")

    @field_validator("top_k", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        # JSON Schema's integer: 3 and 3.0, but not true or "3", which pydantic's lax mode would take.
        if isinstance(value, bool | str):
            raise ValueError("top_k must be a JSON integer")
        return value

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        # The library's own check, so the API and the CLI accept exactly the same questions.
        try:
            return clean_question(value)
        except InvalidQueryError as exc:
            raise ValueError(exc.detail) from None


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
