"""Fixtures of the indexer room: a corpus copy, fake-embedder settings, and ``build``."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.embedders.fake import FakeEmbedder
from service.config import Settings
from tests.support.fixtures import build, corpus_copy  # noqa: F401  (fixtures, re-exported)
from tests.support.helpers import make_settings


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """Settings with the fake embedder and an index under ``tmp_path``."""
    return make_settings(tmp_path / "index")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
