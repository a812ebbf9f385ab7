"""Build embedders from the spec strings used in settings (``TANYA_EMBEDDERS``).

Specs: ``e5-small``, ``use-m3``, ``sentence-transformers:<name-or-path>`` and ``fake``
(tests). Models are loaded only when :func:`create_embedder` is called, never at import.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.embedders.base import Embedder
from indexer.errors import EmbedderUnavailableError

KNOWN_SPECS = ("e5-small", "use-m3", "sentence-transformers:<name-or-path>", "fake")


def create_embedder(spec: str, threads: int | None = None) -> Embedder:
    """Instantiate the backend named by ``spec`` (this loads its model).

    ``threads``: the encoder's own threads per call (``None``: the backend's default, every
    core). Serving passes 1: two threads shorten a lone question only a little (31 against 38 ms
    in process) and contend under load, where one thread each and requests side by side nearly
    doubled throughput (``bench/qps.py``).
    """
    if spec == "e5-small":
        from indexer.embedders.e5 import E5SmallEmbedder

        return E5SmallEmbedder(num_threads=threads)
    if spec == "use-m3":
        from indexer.embedders.use import UseM3Embedder

        return UseM3Embedder() if threads is None else UseM3Embedder(threads=threads)
    if spec.startswith("sentence-transformers:"):
        from indexer.embedders.st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec.split(":", 1)[1])
    if spec == "fake":
        from indexer.embedders.fake import FakeEmbedder

        return FakeEmbedder()
    raise EmbedderUnavailableError(f"unknown embedder {spec!r}; choose from {', '.join(KNOWN_SPECS)}")


def load_embedders(specs: Sequence[str], threads: int | None = None) -> list[Embedder]:
    """Instantiate (load) the configured encoders, in order (``threads``: see :func:`create_embedder`)."""
    return [create_embedder(spec, threads) for spec in specs]
