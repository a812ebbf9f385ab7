"""Fixtures used by more than one room, re-exported by the rooms' ``conftest.py`` that need them.

A room imports only what it uses (``from tests.support.fixtures import corpus_copy``), so
each ``conftest.py`` lists its room's fixtures; the definitions live here once.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from indexer.chunks import ChunkerConfig
from indexer.pipeline import IndexReport
from indexer.tokens import TokenCounter
from service.config import Settings
from tests.support.helpers import CORPUS_DIR, run_build


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of corpus/ (documents and their .meta.json sidecars)."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, target)
    return target


@pytest.fixture
def build(counter: TokenCounter) -> Callable[..., IndexReport]:
    """``build(paths, settings, embedders, chunker=None)`` → IndexReport."""

    def _build(
        paths: Sequence[Path],
        settings: Settings,
        embedders: Sequence[object],
        chunker: ChunkerConfig | None = None,
    ) -> IndexReport:
        return run_build(paths, settings, embedders, counter, chunker)

    return _build
