"""Fixtures of the HTTP API room: the shared fake-embedder index, started TestClients, and a
private index for the hot-reload tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fixtures import corpus_copy  # noqa: F401  (fixture, re-exported)
from tests.support.service import build_into, client, client_factory, service_index  # noqa: F401  (fixtures, re-exported)


@pytest.fixture
def index_dir(tmp_path: Path, corpus_copy: Path) -> Path:  # noqa: F811  (the corpus_copy fixture)
    """A private index over ``corpus_copy`` (build A), for the tests that rebuild or break it (hot reload)."""
    target = tmp_path / "index"
    build_into(target, corpus_copy)
    return target
