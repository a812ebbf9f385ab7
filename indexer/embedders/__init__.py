"""Dense embedding backends, selected by a spec string in settings.

Specs: ``e5-small``, ``use-m3``, ``sentence-transformers:<name-or-path>`` and ``fake``
(tests). Models are loaded only when :func:`create_embedder` is called, never at import.
"""

from __future__ import annotations

from indexer.embedders.base import Embedder, normalise
from indexer.errors import EmbedderUnavailableError

__all__ = ["KNOWN_SPECS", "Embedder", "create_embedder", "normalise"]

KNOWN_SPECS = ("e5-small", "use-m3", "sentence-transformers:<name-or-path>", "fake")


def create_embedder(spec: str) -> Embedder:
    """Instantiate the backend named by ``spec`` (this loads its model)."""
    if spec == "e5-small":
        from indexer.embedders.e5 import E5SmallEmbedder

        return E5SmallEmbedder()
    if spec == "use-m3":
        from indexer.embedders.use import UseM3Embedder

        return UseM3Embedder()
    if spec.startswith("sentence-transformers:"):
        from indexer.embedders.st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec.split(":", 1)[1])
    if spec == "fake":
        from indexer.embedders.fake import FakeEmbedder

        return FakeEmbedder()
    raise EmbedderUnavailableError(f"unknown embedder {spec!r}; choose from {', '.join(KNOWN_SPECS)}")
