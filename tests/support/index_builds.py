"""Helpers of the index tests (``tests/indexer/test_store.py``, ``test_pipeline_incremental.py``,
``test_atomicity.py``): extra fake embedders and snapshots of an index on disk.

The tests import the functions under their former private names (``snapshot as _snapshot``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from indexer.embedders.fake import FakeEmbedder
from indexer.store import load_index
from tests.support.helpers import KEMNAKER, METI, TOKUTEI

#: The doc ids of the corpus, sorted.
ALL = sorted([KEMNAKER, METI, TOKUTEI])


class OtherFake(FakeEmbedder):
    """A second deterministic embedder with another id."""

    id = "other-fake"


class FailingEmbedder(FakeEmbedder):
    """Works for ``fail_after`` texts, then raises (an encoder crashing mid-run)."""

    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        if self.calls + len(texts) > self.fail_after:
            raise RuntimeError("encoder crashed")
        return super()._encode_passages(texts)


def builds(index_dir: Path) -> list[Path]:
    """The build folders (not the lock or the embedding cache beside them)."""
    return sorted(p for p in (index_dir.parent / f"{index_dir.name}.builds").iterdir() if p.is_dir())


def snapshot(index_dir: Path) -> dict[str, object]:
    data = load_index(index_dir)
    return {
        "build_id": data.build_id,
        "target": os.readlink(index_dir),
        "documents": {k: d.to_record() for k, d in data.documents.items()},
        "chunks": [c.chunk_id for c in data.chunks],
        "vectors": data.chunk_vectors["fake"].copy(),
    }


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    return (
        a["build_id"] == b["build_id"]
        and a["target"] == b["target"]
        and a["documents"] == b["documents"]
        and a["chunks"] == b["chunks"]
        and np.array_equal(a["vectors"], b["vectors"])  # type: ignore[arg-type]
    )
