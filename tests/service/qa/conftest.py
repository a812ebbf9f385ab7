"""Fixtures of the question-answering library room: an engine over the corpus (fake embedder)."""

from __future__ import annotations

import shutil

import pytest

from indexer.embedders.fake import FakeEmbedder
from service.qa.engine import Engine
from tests.support.fixtures import build, corpus_copy  # noqa: F401  (fixtures, re-exported)
from tests.support.helpers import CORPUS_DIR, make_settings, run_build


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
