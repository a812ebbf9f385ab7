"""The incremental indexing pipeline: only what changed is embedded; old builds are pruned (fake embedder)."""

from __future__ import annotations

import json
import os
from itertools import pairwise

import numpy as np

from indexer.chunks import ChunkerConfig
from indexer.embedders.fake import FakeEmbedder
from indexer.store import load_index, read_manifest
from indexer.store import writer as store_writer
from service.qa.engine import Engine
from tests.support.helpers import KEMNAKER, METI, TOKUTEI, make_settings
from tests.support.index_builds import ALL
from tests.support.index_builds import builds as _builds
from tests.support.index_builds import same as _same
from tests.support.index_builds import snapshot as _snapshot


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


def test_a_no_op_reindex_reads_no_document_and_does_not_load_the_build(
    corpus_copy, fake_settings, fake_embedder, build
) -> None:
    """Issue 11: unchanged files are known by path, size and mtime (from the manifest), so a no-op costs a stat each."""
    from tests.support.service import files_opened

    first = build([corpus_copy], fake_settings, [fake_embedder])
    with files_opened() as opened:
        second = build([corpus_copy], fake_settings, [fake_embedder])
    assert second.changed is False and second.build_id == first.build_id
    assert (second.chunks, second.sentences) == (first.chunks, first.sentences)
    build_files = [p for p in opened if ".builds" in p and not p.endswith(("manifest.json", ".lock"))]
    assert [p for p in opened if p.startswith(str(corpus_copy))] == [] and build_files == [], opened


def test_touched_or_residecared_files_are_read_again(corpus_copy, fake_settings, fake_embedder, build) -> None:
    first = build([corpus_copy], fake_settings, [fake_embedder])
    target = sorted(corpus_copy.glob("*.txt"))[0]
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # `touch`: same bytes, new mtime
    touched = build([corpus_copy], fake_settings, [fake_embedder])
    assert touched.changed is False and touched.texts_embedded == 0  # read again, found identical
    sidecar = target.with_name(target.name + ".meta.json")
    sidecar.write_text(json.dumps({"description": "A new description."}), encoding="utf-8")
    described = build([corpus_copy], fake_settings, [fake_embedder])
    assert described.changed is True and described.texts_embedded == 0 and described.build_id != first.build_id
    doc_id = target.name.split(".")[0]
    assert load_index(fake_settings.index_dir).documents[doc_id].description == "A new description."


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


def test_unchanged_chunks_keep_their_bm25_terms(corpus_copy, fake_settings, fake_embedder, build, tmp_path, monkeypatch) -> None:
    """Issue 11: adding a document analyses only its chunks; BM25 equals a from-scratch build's."""
    from indexer.lexical import Analyzer

    first = build([corpus_copy], fake_settings, [fake_embedder])
    (corpus_copy / "added.txt").write_text("Program magang baru untuk perawat di Osaka. Kontraknya tiga tahun.")
    analysed: list[str] = []
    real = Analyzer.analyse

    def counting(self, text, lang):  # type: ignore[no-untyped-def]
        analysed.append(text)
        return real(self, text, lang)

    monkeypatch.setattr(Analyzer, "analyse", counting)
    second = build([corpus_copy], fake_settings, [fake_embedder])
    monkeypatch.undo()
    assert second.chunks > first.chunks and len(analysed) == second.chunks - first.chunks
    scratch_settings = make_settings(tmp_path / "scratch" / "index")
    build([corpus_copy], scratch_settings, [fake_embedder])
    incremental, scratch = load_index(fake_settings.index_dir), load_index(scratch_settings.index_dir)
    for query in (["magang"], ["osaka", "perawat"], ["tokutei", "ginou"]):
        np.testing.assert_array_equal(incremental.lexical.scores(query), scratch.lexical.scores(query))


def test_progress_counts_texts_and_documents(corpus_copy, fake_settings, fake_embedder) -> None:
    """Issue 11: the progress says how many documents are embedded, as well as texts (for rate and ETA)."""
    from indexer.pipeline import IndexProgress, build_index

    states: list[IndexProgress] = []
    report = build_index([corpus_copy], fake_settings.index, [fake_embedder], progress=states.append)
    assert states[0].texts_done == 0 and states[0].documents_done == 0
    assert states[-1] == IndexProgress(report.texts_embedded, report.texts_embedded, len(ALL), len(ALL))
    assert all(a.texts_done <= b.texts_done and a.documents_done <= b.documents_done for a, b in pairwise(states))


def test_files_past_the_text_budget_are_read_again_and_index_the_same(corpus_copy, tmp_path, fake_embedder) -> None:
    """Issue 11: memory while indexing does not grow with the corpus; texts past a budget are not held."""
    from indexer.pipeline import build_index
    from tests.support.helpers import make_settings

    held = make_settings(tmp_path / "held" / "index")
    budget = make_settings(tmp_path / "budget" / "index", index_text_budget_chars=1)
    first = build_index([corpus_copy], held.index, [fake_embedder])
    second = build_index([corpus_copy], budget.index, [fake_embedder])
    assert second.chunks == first.chunks and second.texts_embedded == first.texts_embedded
    a, b = load_index(held.index_dir), load_index(budget.index_dir)
    for doc_id in a.documents:
        assert b.documents[doc_id] == a.documents[doc_id]  # the full text, read again
    assert list(b.chunks) == list(a.chunks)
    np.testing.assert_array_equal(b.chunk_vectors["fake"], a.chunk_vectors["fake"])
