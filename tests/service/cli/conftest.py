"""Fixtures of the command-line room: a CliRunner, a fake-embedder environment, and an index
built through ``tanya index``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.support.fixtures import corpus_copy  # noqa: F401  (fixture, re-exported)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TANYA_* variables for a fast CLI: fake embedder, no reranker, index under tmp_path. Returns the index dir."""
    index_dir = tmp_path / "cli-index"
    monkeypatch.setenv("TANYA_EMBEDDERS", "fake")
    monkeypatch.setenv("TANYA_RERANKER", "off")
    monkeypatch.setenv("TANYA_INDEX_DIR", str(index_dir))
    return index_dir


@pytest.fixture
def indexed(runner: CliRunner, cli_env: Path, corpus_copy: Path) -> Path:  # noqa: F811  (the corpus_copy fixture)
    """An index of the corpus copy, built through the CLI. Returns the corpus copy."""
    result = runner.invoke(app, ["index", str(corpus_copy)])
    assert result.exit_code == 0, result.output
    return corpus_copy
