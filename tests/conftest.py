"""Shared fixtures for the Tanya test suite.

Every path is computed from this file, so the suite does not depend on the current
directory; every test runs with the ``TANYA_*`` environment cleared and inside its own
temporary working directory (so a stray ``.env`` cannot change the settings).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from helpers import CORPUS_DIR, make_settings, run_build

from indexer.chunks import ChunkerConfig
from indexer.embedders.fake import FakeEmbedder
from indexer.pipeline import IndexReport
from indexer.tokens import TokenCounter, get_counter
from service.config import Settings
from service.qa.engine import Engine


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TANYA_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    """The cl100k_base token counter (loaded once)."""
    return get_counter(None)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of corpus/ (documents and their .meta.json sidecars)."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, target)
    return target


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """Settings with the fake embedder and an index under ``tmp_path``."""
    return make_settings(tmp_path / "index")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


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


@pytest.fixture(scope="module")
def fake_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine over the real corpus with the fake embedder (built once per module).

    ``abstain_threshold`` is 0 so that any question with a candidate sentence is answered.
    """
    root = tmp_path_factory.mktemp("fake-engine")
    corpus = root / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    settings = make_settings(root / "index", abstain_threshold=0.0)
    embedders = [FakeEmbedder()]
    run_build([corpus], settings, embedders)
    return Engine.load(settings.engine, embedders)


# --- HTTP service tests (tests/test_service_*.py): fixtures live in service_fixtures.py ----------
from service_fixtures import client, client_factory, service_index  # noqa: E402, F401
