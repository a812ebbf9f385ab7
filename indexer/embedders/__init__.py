"""Dense embedding backends: one module per backend, a protocol, and a factory.

``base`` holds the :class:`Embedder` protocol and the shared plumbing, ``factory`` turns
settings specs into loaded backends, and ``fake`` is a deterministic stand-in for tests.
"""

from __future__ import annotations

from indexer.embedders.base import BaseEmbedder, Embedder, embed_in_batches, normalise
from indexer.embedders.factory import KNOWN_SPECS, create_embedder, load_embedders

__all__ = [
    "KNOWN_SPECS",
    "BaseEmbedder",
    "Embedder",
    "create_embedder",
    "embed_in_batches",
    "load_embedders",
    "normalise",
]
