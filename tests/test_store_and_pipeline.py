"""The on-disk index and the incremental, atomic indexing pipeline (fake embedder)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import KEMNAKER, METI, TOKUTEI, make_settings

from indexer import store
from indexer.chunks import ChunkerConfig
from indexer.embedders.fake import FakeEmbedder
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, NoDocumentsError
from indexer.store import embedder_infos, load_index, read_manifest
from indexer.store import reader as store_reader
from indexer.store import writer as store_writer
from service.qa.engine import Engine

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


def _builds(index_dir: Path) -> list[Path]:
    return sorted(p for p in (index_dir.parent / f"{index_dir.name}.builds").iterdir())


def _snapshot(index_dir: Path) -> dict[str, object]:
    data = load_index(index_dir)
    return {
        "build_id": data.build_id,
        "target": os.readlink(index_dir),
        "documents": {k: d.to_record() for k, d in data.documents.items()},
        "chunks": [c.chunk_id for c in data.chunks],
        "vectors": data.chunk_vectors["fake"].copy(),
    }


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    return (
        a["build_id"] == b["build_id"]
        and a["target"] == b["target"]
        and a["documents"] == b["documents"]
        and a["chunks"] == b["chunks"]
        and np.array_equal(a["vectors"], b["vectors"])  # type: ignore[arg-type]
    )


# --- first build and layout -----------------------------------------------------------------------
def test_first_build_writes_a_complete_symlinked_index(corpus_copy, fake_settings, fake_embedder, build) -> None:
    report = build([corpus_copy], fake_settings, [fake_embedder])
    index_dir = fake_settings.index_dir
    assert report.changed
    assert sorted(report.embedded_documents) == ALL
    assert report.reused_documents == [] and report.removed_documents == [] and report.skipped == []
    assert report.documents == 3
    assert report.texts_embedded == report.chunks + report.sentences == fake_embedder.calls
    assert report.build_id and report.full_rebuild_reason is None

    assert index_dir.is_symlink()
    target = index_dir.resolve()
    assert target.parent == (index_dir.parent / "index.builds").resolve()
    assert target.name == report.build_id
    for name in ("manifest.json", "documents.jsonl", "chunks.jsonl", "sentences.jsonl"):
        assert (target / name).is_file()
    assert (target / "dense" / "fake.faiss").is_file()
    assert (target / "dense" / "fake.sentences.npy").is_file()
    assert (target / "bm25").is_dir()

    manifest = read_manifest(index_dir)
    assert manifest["format"] == store.FORMAT and manifest["format_version"] == store.FORMAT_VERSION
    assert manifest["build_id"] == report.build_id
    assert manifest["embedders"] == [{"id": "fake", "dim": 64, "version": "fake-1"}]
    assert manifest["chunker"] == fake_settings.chunker.to_record()
    assert manifest["counts"] == {"documents": 3, "chunks": report.chunks, "sentences": report.sentences}
    assert sorted(d["doc_id"] for d in manifest["documents"]) == ALL


def test_loaded_index_matches_the_sources(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    data = load_index(fake_settings.index_dir)
    for doc in data.documents.values():
        assert doc.text.encode() == (corpus_copy / doc.source).read_bytes()
    for chunk in data.chunks:
        assert data.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
        rows = data.sentence_rows(chunk)
        assert all(s.doc_id == chunk.doc_id for s in data.sentences[rows])
    for sentence in data.sentences:
        assert data.documents[sentence.doc_id].text[sentence.start : sentence.end] == sentence.text
    vectors = data.chunk_vectors["fake"]
    assert vectors.shape == (len(data.chunks), 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert data.sentence_vectors["fake"].shape == (len(data.sentences), 64)
    assert data.lexical.rows == len(data.chunks)


# --- incremental ----------------------------------------------------------------------------------
def test_reindexing_an_unchanged_corpus_embeds_nothing(corpus_copy, fake_settings, fake_embedder, build) -> None:
    first = build([corpus_copy], fake_settings, [fake_embedder])
    before = _snapshot(fake_settings.index_dir)
    calls = fake_embedder.calls
    second = build([corpus_copy], fake_settings, [fake_embedder])
    assert second.changed is False
    assert second.texts_embedded == 0
    assert fake_embedder.calls == calls
    assert second.embedded_documents == [] and sorted(second.reused_documents) == ALL
    assert second.build_id == first.build_id
    assert (second.chunks, second.sentences) == (first.chunks, first.sentences)
    assert "up to date" in second.summary and "nothing embedded" in second.summary
    assert _same(before, _snapshot(fake_settings.index_dir))
    assert len(_builds(fake_settings.index_dir)) == 1  # no new build was written


def test_changing_one_file_reembeds_only_that_file(corpus_copy, fake_settings, fake_embedder, build, counter) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    old = load_index(fake_settings.index_dir)
    calls = fake_embedder.calls
    path = corpus_copy / "kemnaker-im-japan-magang-2024.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nKalimat baru ditambahkan untuk pengujian.\n", encoding="utf-8")

    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.changed
    assert report.embedded_documents == [KEMNAKER]
    assert sorted(report.reused_documents) == sorted([METI, TOKUTEI])
    assert report.removed_documents == []
    new = load_index(fake_settings.index_dir)
    n_chunks = sum(1 for c in new.chunks if c.doc_id == KEMNAKER)
    n_sentences = sum(1 for s in new.sentences if s.doc_id == KEMNAKER)
    assert report.texts_embedded == n_chunks + n_sentences == fake_embedder.calls - calls
    assert new.documents[KEMNAKER].text.endswith("Kalimat baru ditambahkan untuk pengujian.\n")
    assert new.build_id != old.build_id
    # Unchanged documents keep their exact chunks and vectors.
    for doc_id in (METI, TOKUTEI):
        old_rows = [i for i, c in enumerate(old.chunks) if c.doc_id == doc_id]
        new_rows = [i for i, c in enumerate(new.chunks) if c.doc_id == doc_id]
        assert [old.chunks[i] for i in old_rows] == [new.chunks[i] for i in new_rows]
        assert np.array_equal(old.chunk_vectors["fake"][old_rows], new.chunk_vectors["fake"][new_rows])
        old_s = [i for i, s in enumerate(old.sentences) if s.doc_id == doc_id]
        new_s = [i for i, s in enumerate(new.sentences) if s.doc_id == doc_id]
        assert np.array_equal(old.sentence_vectors["fake"][old_s], new.sentence_vectors["fake"][new_s])
    # The reused rows line up with a fresh, from-scratch build of the same corpus.
    fresh_settings = make_settings(fake_settings.index_dir.parent / "fresh")
    build([corpus_copy], fresh_settings, [FakeEmbedder()])
    fresh = load_index(fresh_settings.index_dir)
    assert [c.chunk_id for c in fresh.chunks] == [c.chunk_id for c in new.chunks]
    assert np.allclose(fresh.chunk_vectors["fake"], new.chunk_vectors["fake"])
    assert np.allclose(fresh.sentence_vectors["fake"], new.sentence_vectors["fake"])


def test_removing_a_file_drops_it(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    calls = fake_embedder.calls
    (corpus_copy / "meti-japan-internship-program.txt").unlink()
    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.changed
    assert report.removed_documents == [METI]
    assert report.embedded_documents == [] and report.texts_embedded == 0
    assert fake_embedder.calls == calls
    data = load_index(fake_settings.index_dir)
    assert sorted(data.documents) == sorted([KEMNAKER, TOKUTEI])
    assert all(c.doc_id != METI for c in data.chunks)
    assert all(s.doc_id != METI for s in data.sentences)
    assert data.chunk_vectors["fake"].shape[0] == len(data.chunks)
    engine = Engine.load(fake_settings.engine, [fake_embedder])
    assert all(p.doc_id != METI for p in engine.search("METI Japan Internship Program", top_k=20, mode="lexical"))


def test_adding_a_file_embeds_only_the_new_file(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (corpus_copy / "extra.md").write_text("# Extra\n\nA new note about visas for Tokutei Ginou workers.\n")
    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.embedded_documents == ["extra"]
    assert sorted(report.reused_documents) == ALL
    assert "extra" in load_index(fake_settings.index_dir).documents


def test_sidecar_title_change_reembeds_the_document(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    sidecar = corpus_copy / "meti-japan-internship-program.txt.meta.json"
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    meta["title"] = "A new title"
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.embedded_documents == [METI]
    assert load_index(fake_settings.index_dir).documents[METI].title == "A new title"


def test_sidecar_metadata_change_reaches_the_index(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    sidecar = corpus_copy / "meti-japan-internship-program.txt.meta.json"
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    meta["date"] = "2031-01-01"
    meta["description"] = "Updated description."
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    build([corpus_copy], fake_settings, [fake_embedder])
    doc = load_index(fake_settings.index_dir).documents[METI]
    assert (doc.date, doc.description) == ("2031-01-01", "Updated description.")


def test_changed_chunker_forces_a_full_rebuild(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    calls = fake_embedder.calls
    report = build([corpus_copy], fake_settings, [fake_embedder], chunker=ChunkerConfig(max_tokens=64))
    assert report.changed and sorted(report.embedded_documents) == ALL and report.reused_documents == []
    assert report.full_rebuild_reason and "chunk" in report.full_rebuild_reason
    assert fake_embedder.calls - calls == report.texts_embedded > 0
    assert read_manifest(fake_settings.index_dir)["chunker"]["max_tokens"] == 64


def test_old_builds_are_pruned(corpus_copy, fake_settings, fake_embedder, build, monkeypatch) -> None:
    # Distinct, increasing timestamps so that build names sort in creation order.
    ticks = iter(range(1000))
    monkeypatch.setattr(store_writer.time, "strftime", lambda fmt, *a: f"20990101T0000{next(ticks):02d}")
    path = corpus_copy / "kemnaker-im-japan-magang-2024.txt"
    targets = []
    for i in range(4):
        path.write_text(f"Versi {i} dari dokumen ini untuk pengujian indeks.\n", encoding="utf-8")
        build([corpus_copy], fake_settings, [fake_embedder])
        targets.append(fake_settings.index_dir.resolve())
    builds = _builds(fake_settings.index_dir)
    assert [b.resolve() for b in builds] == targets[-store_writer.KEEP_BUILDS :]  # the current and the previous one
    assert load_index(fake_settings.index_dir).documents[KEMNAKER].text.startswith("Versi 3")


def test_pruning_keeps_the_previous_build_within_one_second(
    corpus_copy, fake_settings, fake_embedder, build, monkeypatch
) -> None:
    import uuid

    # Four builds in the same second whose random suffixes happen to decrease.
    monkeypatch.setattr(store_writer.time, "strftime", lambda fmt, *a: "20990101T000000")
    counter = iter(range(10_000, 0, -1))
    monkeypatch.setattr(store_writer.uuid, "uuid4", lambda: uuid.UUID(int=next(counter) << 96))
    path = corpus_copy / "kemnaker-im-japan-magang-2024.txt"
    targets = []
    for i in range(4):
        path.write_text(f"Versi {i} dari dokumen ini untuk pengujian indeks.\n", encoding="utf-8")
        build([corpus_copy], fake_settings, [fake_embedder])
        targets.append(fake_settings.index_dir.resolve())
    remaining = {b.resolve() for b in _builds(fake_settings.index_dir)}
    assert targets[-2] in remaining  # the build readers were using until the last swap
    assert remaining == set(targets[-store_writer.KEEP_BUILDS :])


# --- mismatch ------------------------------------------------------------------------------------------
def test_mismatched_chunker_is_refused_clearly(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    other = fake_settings.model_copy(update={"chunk_max_tokens": 64})
    with pytest.raises(IndexMismatchError) as info:
        Engine.load(other.engine, [fake_embedder])
    message = str(info.value)
    assert "chunk" in message and "64" in message and "tanya index" in message


def test_mismatched_embedders_are_refused_clearly(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    with pytest.raises(IndexMismatchError) as info:
        Engine.load(fake_settings.engine, [fake_embedder, OtherFake()])
    message = str(info.value)
    assert "embedders" in message and "fake" in message and "other-fake" in message
    with pytest.raises(IndexMismatchError, match="other-fake"):
        Engine.load(fake_settings.engine, [OtherFake()])


def test_mismatched_embedder_dimension_is_refused(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    with pytest.raises(IndexMismatchError, match="dim"):
        Engine.load(fake_settings.engine, [FakeEmbedder(dim=32)])


def test_unknown_index_format_is_refused(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    manifest_path = fake_settings.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="v99"):
        load_index(fake_settings.index_dir)


def test_missing_index_raises_not_found(tmp_path, fake_settings, fake_embedder) -> None:
    with pytest.raises(IndexNotFoundError, match="tanya index"):
        Engine.load(fake_settings.engine, [fake_embedder])
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(IndexNotFoundError):
        load_index(tmp_path / "empty-dir")


def test_damaged_index_raises_corrupt(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (fake_settings.index_dir.resolve() / "dense" / "fake.sentences.npy").unlink()
    with pytest.raises(IndexCorruptError):
        load_index(fake_settings.index_dir)


def test_unparseable_manifest_raises_corrupt(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (fake_settings.index_dir / "manifest.json").write_text("{broken")
    with pytest.raises(IndexCorruptError):
        load_index(fake_settings.index_dir)


def test_damaged_previous_index_is_rebuilt_from_scratch(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (fake_settings.index_dir.resolve() / "chunks.jsonl").unlink()
    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.changed and sorted(report.embedded_documents) == ALL
    assert report.full_rebuild_reason
    Engine.load(fake_settings.engine, [fake_embedder])


def test_plain_directory_at_index_dir_is_kept_as_a_legacy_build(corpus_copy, fake_settings, fake_embedder, build) -> None:
    fake_settings.index_dir.mkdir(parents=True)
    (fake_settings.index_dir / "old-file").write_text("keep me")
    build([corpus_copy], fake_settings, [fake_embedder])
    assert fake_settings.index_dir.is_symlink()
    legacy = [b for b in _builds(fake_settings.index_dir) if b.name.startswith("legacy-")]
    assert len(legacy) == 1 and (legacy[0] / "old-file").read_text() == "keep me"


# --- failures leave the previous index ------------------------------------------------------------------
def test_embedder_failing_midway_leaves_previous_index(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    before = _snapshot(fake_settings.index_dir)
    builds_before = _builds(fake_settings.index_dir)
    (corpus_copy / "kemnaker-im-japan-magang-2024.txt").write_text("Dokumen yang diubah sama sekali.\n" * 50)
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

    monkeypatch.setattr(store_writer.np, "save", broken_save)
    with pytest.raises(OSError, match="No space"):
        build([corpus_copy], fake_settings, [fake_embedder])
    monkeypatch.undo()
    assert _same(before, _snapshot(fake_settings.index_dir))
    assert _builds(fake_settings.index_dir) == builds_before  # the partial build was removed
    assert "new" not in Engine.load(fake_settings.engine, [fake_embedder]).index.documents


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


def test_embedder_infos_record_id_dim_and_version() -> None:
    infos = embedder_infos([FakeEmbedder(), OtherFake(dim=16)])
    assert [(i.id, i.dim, i.version) for i in infos] == [("fake", 64, "fake-1"), ("other-fake", 16, "fake-1")]


def test_two_embedders_are_stored_side_by_side(corpus_copy, fake_settings, build) -> None:
    settings = fake_settings.model_copy(update={"embedders": ["fake", "other-fake"]})
    embedders = [FakeEmbedder(), OtherFake(dim=32)]
    build([corpus_copy], settings, embedders)
    engine = Engine.load(settings.engine, embedders)
    assert set(engine.index.chunk_vectors) == {"fake", "other-fake"}
    assert engine.index.chunk_vectors["other-fake"].shape[1] == 32
    passages = engine.search("Tokutei Ginou", mode="hybrid")
    assert passages and all(set(p.ranks) == {"bm25", "fake", "other-fake"} for p in passages)


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


def test_copying_a_build_elsewhere_still_loads(corpus_copy, fake_settings, fake_embedder, build, tmp_path) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    copy = tmp_path / "copied-index"
    shutil.copytree(fake_settings.index_dir.resolve(), copy)
    data = load_index(copy, embedder_infos([fake_embedder]), fake_settings.chunker)
    assert sorted(data.documents) == ALL
