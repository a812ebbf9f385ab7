"""The domain error hierarchy shared by the indexer, the CLI and the HTTP service.

Each error carries a short ``title`` (stable, for problem+json and logs) and a human
``detail`` (the message). Each class maps to an HTTP status in ``service.api.problems``
(``STATUS``) and to an exit code in ``service.cli`` (``EXIT_CODES``); a test checks that
every class is mapped in both.
"""

from __future__ import annotations


class TanyaError(Exception):
    """Base class for every error Tanya raises on purpose."""

    title = "Tanya error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(TanyaError):
    """A setting is invalid or names something that cannot be used."""

    title = "Invalid configuration"


class TokenizerUnavailableError(ConfigError):
    """The tiktoken vocabulary could not be found offline."""

    title = "Tokenizer unavailable"


class EmbedderUnavailableError(ConfigError):
    """An embedding backend is unknown or its package/model is not installed."""

    title = "Embedder unavailable"


class IndexNotFoundError(TanyaError):
    """No index exists at the configured directory."""

    title = "Index not found"


class IndexMismatchError(TanyaError):
    """The index on disk was built with other embedders, chunker or format."""

    title = "Index mismatch"


class IndexCorruptError(TanyaError):
    """The index directory exists but cannot be read."""

    title = "Index unreadable"


class DocumentNotFoundError(TanyaError):
    """A document id is not in the index."""

    title = "Document not found"


class DocumentError(TanyaError):
    """A source file cannot be read as a document (it is skipped with a warning)."""

    title = "Unreadable document"


class InvalidQueryError(TanyaError):
    """A question or search query is empty, too long or otherwise unusable."""

    title = "Invalid question"


class NoDocumentsError(TanyaError):
    """Indexing found no readable document under the given paths."""

    title = "No documents"
