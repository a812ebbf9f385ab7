"""Resumable indexing (issue 11): a run that dies keeps what it encoded, and the next run encodes only the rest."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexer.embedders.fake import FakeEmbedder
from indexer.store import load_index
from indexer.store.embedding_cache import EmbeddingCache, cache_path, embed_cached, text_hash
from tests.support.helpers import REPO_ROOT, make_settings, run_build
from tests.support.index_builds import FailingEmbedder
from tests.support.index_builds import same as _same
from tests.support.index_builds import snapshot as _snapshot

BATCH = 4
KILL_AFTER_BATCHES = 5


def _big_corpus(folder: Path, documents: int = 12, sentences: int = 20) -> Path:
    """Documents of distinct sentences (identical texts are encoded once, which would hide recomputation)."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(documents):
        body = " ".join(f"Dokumen {d} menjelaskan program magang nomor {s} di prefektur {d * 100 + s}." for s in range(sentences))
        (folder / f"doc-{d:02d}.txt").write_text(body + "\n", encoding="utf-8")
    return folder


def _texts_to_embed(index_dir: Path, corpus: Path, tmp_path: Path) -> int:
    """Distinct texts a from-scratch build of ``corpus`` encodes (measured on a throwaway index)."""
    counter = FakeEmbedder()
    report = run_build([corpus], make_settings(tmp_path / "measure" / "index", embed_batch_size=BATCH), [counter])
    assert report.texts_encoded == counter.calls
    return counter.calls


def test_embed_cached_encodes_each_distinct_text_once_and_reads_back_the_rest(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    texts = ["satu", "dua", "satu", "tiga", "empat", "dua"]
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        ticks: list[int] = []
        vectors, hits, encoded = embed_cached(embedder.embed_passages, "fake@1", embedder.dim, texts, cache, 2, ticks.append)
        assert (hits, encoded, embedder.calls, sum(ticks)) == (0, 4, 4, len(texts))
        np.testing.assert_array_equal(vectors, embedder.embed_passages(texts))
        again, hits, encoded = embed_cached(embedder.embed_passages, "fake@1", embedder.dim, texts, cache, 2)
        assert (hits, encoded) == (len(texts), 0)
        np.testing.assert_array_equal(again, vectors)
        # Another encoder (or another version of the weights) never reads these vectors.
        _, hits, _ = embed_cached(embedder.embed_passages, "fake@2", embedder.dim, texts, cache, 2)
        assert hits == 0
        assert cache.count("fake@1") == 4 and text_hash("satu") != text_hash("dua")


def test_a_crashed_run_resumes_without_recomputing_a_completed_embedding(tmp_path: Path) -> None:
    corpus = _big_corpus(tmp_path / "corpus")
    total = _texts_to_embed(tmp_path / "index", corpus, tmp_path)
    settings = make_settings(tmp_path / "index", embed_batch_size=BATCH)
    failing = FailingEmbedder(fail_after=BATCH * 7)  # seven batches go through, the eighth crashes
    with pytest.raises(RuntimeError, match="encoder crashed"):
        run_build([corpus], settings, [failing])
    assert failing.calls == BATCH * 7
    with EmbeddingCache(cache_path(settings.index_dir)) as cache:
        assert cache.count() == BATCH * 7
    resumed = FakeEmbedder()
    report = run_build([corpus], settings, [resumed])
    assert resumed.calls == total - BATCH * 7  # not one of the seven batches encoded again
    assert report.texts_from_cache == BATCH * 7 and report.texts_encoded == total - BATCH * 7
    # The vectors are the ones a clean run computes, and the cache is emptied once the build holds them.
    clean = load_index(tmp_path / "measure" / "index")
    built = load_index(settings.index_dir)
    np.testing.assert_array_equal(built.chunk_vectors["fake"], clean.chunk_vectors["fake"])
    np.testing.assert_array_equal(built.sentence_vectors["fake"], clean.sentence_vectors["fake"])
    with EmbeddingCache(cache_path(settings.index_dir)) as cache:
        assert cache.count() == 0


_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from indexer.embedders.fake import FakeEmbedder
    from tests.support.helpers import make_settings, run_build

    class Announcing(FakeEmbedder):
        def _encode_passages(self, texts):
            time.sleep(0.05)  # slow enough to be killed mid-run
            return super()._encode_passages(texts)

        def embed_passages(self, texts):
            vectors = super().embed_passages(texts)
            print("batch", flush=True)  # printed before the cache commit: the kill may land on either side
            return vectors

    corpus, index_dir, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    run_build([corpus], make_settings(index_dir, embed_batch_size=batch), [Announcing()])
    """
)


def test_sigkill_mid_run_keeps_the_old_build_and_the_next_run_resumes(tmp_path: Path) -> None:
    """Issue 11: a real ``kill -9`` while encoding; the previous build serves, nothing completed is recomputed."""
    corpus = _big_corpus(tmp_path / "corpus", documents=3)
    settings = make_settings(tmp_path / "index", embed_batch_size=BATCH)
    run_build([corpus], settings, [FakeEmbedder()])
    before = _snapshot(settings.index_dir)
    _big_corpus(corpus, documents=12)  # nine new documents to encode
    total = _texts_to_embed(tmp_path / "index", corpus, tmp_path) - _texts_to_embed(
        tmp_path / "small", _big_corpus(tmp_path / "small-corpus", documents=3), tmp_path / "small"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(corpus), str(settings.index_dir), str(BATCH)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    for _ in range(KILL_AFTER_BATCHES):
        assert process.stdout.readline() == "batch\n"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert _same(before, _snapshot(settings.index_dir))  # the previous build is untouched and still loads
    assert len(load_index(settings.index_dir).documents) == 3
    with sqlite3.connect(cache_path(settings.index_dir)) as db:
        saved = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    assert saved >= (KILL_AFTER_BATCHES - 1) * BATCH  # every batch committed before the kill is there

    resumed = FakeEmbedder()
    report = run_build([corpus], settings, [resumed])
    assert resumed.calls == total - saved, json.dumps(report.__dict__, default=str)
    assert report.texts_from_cache == saved
    assert len(load_index(settings.index_dir).documents) == 12
