"""The on-disk index: ``format`` (layout, manifest, compatibility), ``writer`` and ``reader``."""

from __future__ import annotations

from indexer.store.format import (
    FORMAT,
    FORMAT_VERSION,
    DeltaBase,
    DenseIndexConfig,
    EmbedderInfo,
    IndexData,
    QuantizedRows,
    RowMatrix,
    StackedRows,
    check_compatible,
    document_fingerprint,
    embedder_infos,
    metadata_hash,
    read_manifest,
)
from indexer.store.reader import load_index
from indexer.store.writer import BuildWriter

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "BuildWriter",
    "DeltaBase",
    "DenseIndexConfig",
    "EmbedderInfo",
    "IndexData",
    "QuantizedRows",
    "RowMatrix",
    "StackedRows",
    "check_compatible",
    "document_fingerprint",
    "embedder_infos",
    "load_index",
    "metadata_hash",
    "read_manifest",
]
