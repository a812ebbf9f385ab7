"""Atomic indexing: a failed build leaves the previous index, and a reader never mixes two builds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.errors import NoDocumentsError
from indexer.store import load_index
from indexer.store import reader as store_reader
from indexer.store import writer as store_writer
from service.qa.engine import Engine
from tests.support.index_builds import FailingEmbedder
from tests.support.index_builds import builds as _builds
from tests.support.index_builds import same as _same
from tests.support.index_builds import snapshot as _snapshot


# --- failures leave the previous index ------------------------------------------------------------------
def test_embedder_failing_midway_leaves_previous_index(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    before = _snapshot(fake_settings.index_dir)
    builds_before = _builds(fake_settings.index_dir)
    # Distinct sentences: identical texts are encoded once, and the encoder must get past a few before failing.
    changed = "".join(f"Dokumen yang diubah, kalimat nomor {i}.\n" for i in range(50))
    (corpus_copy / "kemnaker-im-japan-magang-2024.txt").write_text(changed)
    failing = FailingEmbedder(fail_after=3)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        build([corpus_copy], fake_settings, [failing], chunker=None)
    assert failing.calls > 0  # it did fail mid-way, not before starting
    assert _same(before, _snapshot(fake_settings.index_dir))
    assert _builds(fake_settings.index_dir) == builds_before
    Engine.load(fake_settings.engine, [fake_embedder]).ask("Siapa yang menyeleksi pekerja?")


def test_failing_index_write_leaves_previous_index(corpus_copy, fake_settings, fake_embedder, build, monkeypatch) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    before = _snapshot(fake_settings.index_dir)
    builds_before = _builds(fake_settings.index_dir)
    (corpus_copy / "new.txt").write_text("A brand new document about Japan internships.")

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_writer, "_write_npy", broken_save)  # the sentence vectors' file
    with pytest.raises(OSError, match="No space"):
        build([corpus_copy], fake_settings, [fake_embedder])
    monkeypatch.undo()
    assert _same(before, _snapshot(fake_settings.index_dir))
    assert _builds(fake_settings.index_dir) == builds_before  # the partial build was removed
    assert "new" not in Engine.load(fake_settings.engine, [fake_embedder]).index.documents


def test_the_next_run_removes_what_a_killed_run_left(corpus_copy, fake_settings, fake_embedder, build) -> None:
    """Issue 10 (kill -9 during indexing): a fresh ``.partial`` build and a half-made link stayed for an hour."""
    build([corpus_copy], fake_settings, [fake_embedder])
    index_dir = fake_settings.index_dir
    builds = index_dir.parent / f"{index_dir.name}.builds"
    debris = builds / "20990101T000000-deadbeef.partial"  # what SIGKILL mid-write leaves
    (debris / "dense").mkdir(parents=True)
    (debris / "documents.jsonl").write_text("{}\n")
    stale_link = index_dir.parent / f".{index_dir.name}.link-0badf00d"
    os.symlink("nowhere", stale_link)
    before = _snapshot(index_dir)
    assert _same(before, _snapshot(index_dir)) and load_index(index_dir)  # the old build still loads
    (corpus_copy / "new.txt").write_text("A brand new document about Japan internships.")
    build([corpus_copy], fake_settings, [fake_embedder])
    assert not debris.exists() and not os.path.lexists(stale_link)
    assert not [p for p in _builds(index_dir) if p.name.endswith(".partial")]
    assert "new" in load_index(index_dir).documents


def test_no_documents_raises_and_leaves_index(tmp_path, corpus_copy, fake_settings, fake_embedder, build) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NoDocumentsError):
        build([empty], fake_settings, [fake_embedder])
    assert not fake_settings.index_dir.exists()
    build([corpus_copy], fake_settings, [fake_embedder])
    before = _snapshot(fake_settings.index_dir)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "empty.txt").write_bytes(b"")
    (junk / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(NoDocumentsError, match="left as it was") as info:
        build([junk], fake_settings, [fake_embedder])
    assert str(junk) in str(info.value)
    assert _same(before, _snapshot(fake_settings.index_dir))


def test_load_index_never_mixes_two_builds(corpus_copy, fake_settings, fake_embedder, build, monkeypatch) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    first_target = os.readlink(fake_settings.index_dir)
    (corpus_copy / "kemnaker-im-japan-magang-2024.txt").write_text("Isi yang benar-benar baru untuk build kedua.\n")
    build([corpus_copy], fake_settings, [fake_embedder])
    second_target = os.readlink(fake_settings.index_dir)
    assert first_target != second_target
    # Point back at the first build, then let a "concurrent indexer" swap the link to the
    # second build right after the reader has read the manifest.
    store_writer._swap_link(fake_settings.index_dir, fake_settings.index_dir.parent / first_target)
    real_read_manifest = store_reader.read_manifest

    link = fake_settings.index_dir

    def read_then_swap(index_dir: Path) -> dict[str, object]:
        manifest = real_read_manifest(index_dir)
        store_writer._swap_link(link, link.parent / second_target)
        return manifest

    monkeypatch.setattr(store_reader, "read_manifest", read_then_swap)
    data = load_index(fake_settings.index_dir)
    assert data.path is not None
    assert data.manifest["build_id"] == data.path.name
