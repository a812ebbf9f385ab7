"""The on-disk index: layout, what loads back, and refusing an index it cannot use (fake embedder)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from indexer import store
from indexer.embedders.fake import FakeEmbedder
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from indexer.store import QuantizedRows, StackedRows, embedder_infos, load_index, read_manifest
from indexer.store.format import missing_files, quantize_rows
from service.qa.engine import Engine
from tests.support.index_builds import ALL, OtherFake
from tests.support.index_builds import builds as _builds


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
    for name in ("manifest.json", "records.sqlite"):
        assert (target / name).is_file()
    # Each chunk's BM25 terms are kept with its record, for the next build to reuse; no spool file is left.
    with sqlite3.connect(target / "records.sqlite") as records:
        assert records.execute("SELECT count(*) FROM terms").fetchone()[0] == report.chunks
    assert not list(target.rglob("*.spool"))
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


@pytest.mark.parametrize("field", ["end", "start", "doc_id"])
@pytest.mark.parametrize("table", ["chunks", "sentences"])
def test_offsets_outside_their_document_are_refused_at_load(
    corpus_copy, fake_settings, fake_embedder, build, table: str, field: str
) -> None:
    """Issue 10, small item: a chunk ending past its document loaded, and cited a cut-off "quotation"."""
    import sqlite3

    build([corpus_copy], fake_settings, [fake_embedder])
    with sqlite3.connect(fake_settings.index_dir.resolve() / "records.sqlite") as db:
        value = {"end": "(SELECT length + 1 FROM documents d WHERE d.doc_id = t.doc_id)", "start": "-1",
                 "doc_id": "'no-such-document'"}[field]
        db.execute(f'UPDATE {table} AS t SET "{field}" = {value} WHERE row = (SELECT max(row) FROM {table})')
    with pytest.raises(IndexCorruptError, match=r"outside its document|names no document"):
        load_index(fake_settings.index_dir)


def test_a_format_1_build_still_loads_and_is_reused(corpus_copy, fake_settings, fake_embedder, build) -> None:
    """Records in JSON lines (format 1, before records.sqlite): read as before, and the next run reuses its vectors."""
    first = build([corpus_copy], fake_settings, [fake_embedder])
    root = fake_settings.index_dir.resolve()
    data = load_index(fake_settings.index_dir)
    for name, rows in (
        ("documents.jsonl", [d.to_record() for d in data.documents.values()]),
        ("chunks.jsonl", [dict(vars(c)) for c in data.chunks]),
        ("sentences.jsonl", [dict(vars(s)) for s in data.sentences]),
    ):
        (root / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (root / "records.sqlite").unlink()
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    (root / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}), encoding="utf-8")
    old = load_index(fake_settings.index_dir)
    assert [c.text for c in old.chunks] == [c.text for c in data.chunks] and dict(old.documents) == dict(data.documents)
    calls = fake_embedder.calls
    (corpus_copy / "added.txt").write_text("An added document about visas.", encoding="utf-8")
    report = build([corpus_copy], fake_settings, [fake_embedder])
    assert report.embedded_documents == ["added"] and len(report.reused_documents) == first.documents
    assert fake_embedder.calls - calls == report.texts_embedded


def test_unparseable_manifest_raises_corrupt(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (fake_settings.index_dir / "manifest.json").write_text("{broken")
    with pytest.raises(IndexCorruptError):
        load_index(fake_settings.index_dir)


def test_damaged_previous_index_is_rebuilt_from_scratch(corpus_copy, fake_settings, fake_embedder, build) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    (fake_settings.index_dir.resolve() / "records.sqlite").unlink()
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


def test_copying_a_build_elsewhere_still_loads(corpus_copy, fake_settings, fake_embedder, build, tmp_path) -> None:
    build([corpus_copy], fake_settings, [fake_embedder])
    copy = tmp_path / "copied-index"
    shutil.copytree(fake_settings.index_dir.resolve(), copy)
    data = load_index(copy, embedder_infos([fake_embedder]), fake_settings.chunker)
    assert sorted(data.documents) == ALL


def test_vectors_are_stored_compactly_and_not_copied_at_load(corpus_copy, fake_settings, fake_embedder, build) -> None:
    """Issue 11: sentence vectors int8 with a scale a row, memory-mapped; chunk vectors a view of FAISS's own copy."""
    build([corpus_copy], fake_settings, [fake_embedder])
    root = fake_settings.index_dir.resolve()
    assert np.load(root / "dense" / "fake.sentences.npy").dtype == np.int8
    assert np.load(root / "dense" / "fake.sentences.scales.npy").dtype == np.float32
    index = load_index(fake_settings.index_dir)
    sentences = index.sentence_vectors["fake"]
    assert isinstance(sentences, QuantizedRows) and isinstance(sentences.codes.base, np.memmap)
    chunk_vectors = index.chunk_vectors["fake"]
    assert not chunk_vectors.flags["OWNDATA"] and chunk_vectors.dtype == np.float32
    # The view is the searched data: searching a chunk's own vector finds that chunk first.
    _, found = index.faiss_index("fake").search(np.ascontiguousarray(chunk_vectors[:3]), 1)
    assert found[:, 0].tolist() == [0, 1, 2]
    texts = [s.text for s in index.sentences[:5]]
    exact = fake_embedder.embed_passages(texts)
    stored = sentences[:5]
    # Each component within half a step of its row's scale. Cosines move by under 0.01 here: the fake's
    # 64-dimensional bag-of-words vectors, a few large components, are the worst case (e5's 384
    # spread-out components move by about 1e-3: eval/README.md, "Vector storage").
    assert np.all(np.abs(stored - exact) <= sentences.scales[:5, None] / 2 + 1e-6)
    assert np.abs(stored @ exact[0] - exact @ exact[0]).max() < 0.01


def test_quantized_rows_read_like_the_matrix_they_stand_for() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 32)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rows[7] = 0.0  # an all-zero row keeps a usable scale
    quantized = QuantizedRows(*quantize_rows(rows))
    assert len(quantized) == 50 and quantized.shape == (50, 32) and quantized.codes.dtype == np.int8
    whole = np.asarray(quantized)
    assert np.abs(whole - rows).max() < 0.01 and not whole[7].any()
    np.testing.assert_allclose(quantized[[3, 1, 3]], whole[[3, 1, 3]])
    np.testing.assert_allclose(quantized[4], whole[4])
    np.testing.assert_allclose(quantized[10:12], whole[10:12])
    vector = rows[0]
    np.testing.assert_allclose(quantized @ vector, whole @ vector, rtol=1e-5, atol=1e-6)
    # Quantizing the dequantized rows again gives the same codes (a reused document is written again).
    again = quantize_rows(whole)
    np.testing.assert_array_equal(again[0], quantized.codes)
    # Stacked with float16 rows of an older base, a delta's int8 rows read as one float32 matrix.
    stacked = StackedRows([rows[:5].astype(np.float16), quantized])
    assert stacked.dtype == np.float32 and len(stacked) == 55
    np.testing.assert_allclose(stacked[[0, 5, 54]], np.stack([rows[0].astype(np.float16), whole[0], whole[49]]), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_build_with_float_sentence_vectors_still_loads(corpus_copy, fake_settings, fake_embedder, build, dtype) -> None:
    """What formats 1 (float32) and 2 (float16) hold: the file's own dtype says how to read it."""
    build([corpus_copy], fake_settings, [fake_embedder])
    dense = fake_settings.index_dir.resolve() / "dense"
    expanded = np.asarray(load_index(fake_settings.index_dir).sentence_vectors["fake"])
    np.save(dense / "fake.sentences.npy", expanded.astype(dtype))
    (dense / "fake.sentences.scales.npy").unlink()
    index = load_index(fake_settings.index_dir)
    assert index.sentence_vectors["fake"].dtype == dtype
    assert Engine.load(fake_settings.engine, [fake_embedder]).ask("Who selects Tokutei Ginou workers?").citations


@pytest.mark.parametrize(
    ("size", "faiss_type", "recorded"),
    [
        ({"pq_min_chunks": 1}, "IndexPQFastScan", {"type": "pq"}),
        ({"ann_min_chunks": 1}, "IndexIVFPQFastScan", {"type": "ivf", "lists": 16}),
    ],
)
def test_an_index_past_the_pq_size_scans_codes_and_rescores_exactly(
    corpus_copy, fake_settings, fake_embedder, build, tmp_path, size, faiss_type, recorded
) -> None:
    """Issue 11: fast-scan PQ from ``pq_min_chunks``, IVF over the same codes from ``ann_min_chunks``: 4-bit
    codes in FAISS, int8 vectors beside it, the found rows rescored with those, so a small index (whose IVF
    lists are all probed) ranks and scores as exact search does."""
    from tests.support.helpers import make_settings

    build([corpus_copy], fake_settings, [fake_embedder])
    pq_settings = make_settings(tmp_path / "pq" / "index", **size)
    build([corpus_copy], pq_settings, [fake_embedder])
    assert read_manifest(pq_settings.index_dir)["dense_index"] == {
        **recorded, "metric": "inner_product", "bits": 4, "dims_per_code": 2, "fast_scan": True,
    }
    assert missing_files(pq_settings.index_dir.resolve(), read_manifest(pq_settings.index_dir)) == []
    flat_engine = Engine.load(fake_settings.engine, [fake_embedder])
    pq_engine = Engine.load(pq_settings.engine, [fake_embedder])
    index = pq_engine.index.faiss_index("fake")
    assert type(index).__name__ == faiss_type and fake_embedder.dim // 2 == index.pq.M
    stored = pq_engine.index.chunk_vectors["fake"]
    assert isinstance(stored, QuantizedRows) and stored.codes.dtype == np.int8
    for question in ("Who selects Tokutei Ginou workers?", "How long is the internship?"):
        exact = flat_engine.search(question, mode="dense")
        found = pq_engine.search(question, mode="dense")
        assert [p.chunk_id for p in found] == [p.chunk_id for p in exact]
        np.testing.assert_allclose(
            [p.signal_scores["fake"] for p in found], [p.signal_scores["fake"] for p in exact], atol=1e-3
        )


def test_a_handful_of_vectors_is_searched_exactly_whatever_the_thresholds() -> None:
    """k-means needs as many points as centroids: below QUANTISED_MIN_ROWS the index stays flat."""
    from indexer.store import DenseIndexConfig
    from indexer.store.format import QUANTISED_MIN_ROWS

    vectors = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    for config in (DenseIndexConfig(pq_min_chunks=1), DenseIndexConfig(ann_min_chunks=1)):
        assert config.kind(5) == "flat" and type(config.build(vectors, 64)).__name__ == "IndexFlatIP"
        assert config.kind(QUANTISED_MIN_ROWS) != "flat"
    assert DenseIndexConfig.ivf_lists(QUANTISED_MIN_ROWS) <= QUANTISED_MIN_ROWS
    wider = np.random.default_rng(1).normal(size=(QUANTISED_MIN_ROWS, 64)).astype(np.float32)
    for config in (DenseIndexConfig(pq_min_chunks=1), DenseIndexConfig(ann_min_chunks=1)):
        assert config.build(wider, 64).ntotal == QUANTISED_MIN_ROWS


def test_an_index_past_the_ann_size_uses_hnsw_and_records_it(corpus_copy, fake_settings, fake_embedder, build, tmp_path) -> None:
    """Issue 11: exact below ``ann_min_chunks``, HNSW from there on (with ``ann_index="hnsw"``), the choice
    written in the manifest."""
    from tests.support.helpers import make_settings

    build([corpus_copy], fake_settings, [fake_embedder])
    assert read_manifest(fake_settings.index_dir)["dense_index"]["type"] == "flat"
    hnsw_settings = make_settings(tmp_path / "hnsw" / "index", ann_min_chunks=1, ann_index="hnsw")
    build([corpus_copy], hnsw_settings, [fake_embedder])
    assert read_manifest(hnsw_settings.index_dir)["dense_index"] == {
        "type": "hnsw", "metric": "inner_product", "m": 48, "ef_construction": 200, "storage": "sq8",
    }
    flat_engine = Engine.load(fake_settings.engine, [fake_embedder])
    hnsw_engine = Engine.load(hnsw_settings.engine, [fake_embedder])
    index = hnsw_engine.index.faiss_index("fake")
    assert type(index).__name__ == "IndexHNSWSQ" and index.hnsw.efSearch >= 600
    # The index holds 8-bit codes; the int8 vectors (a scale a row) stored beside it rescore what it finds.
    stored = hnsw_engine.index.chunk_vectors["fake"]
    assert isinstance(stored, QuantizedRows) and isinstance(stored.codes.base, np.memmap) and stored.codes.dtype == np.int8
    np.testing.assert_allclose(np.asarray(stored), flat_engine.index.chunk_vectors["fake"], atol=5e-3)
    question = "Who selects Tokutei Ginou workers?"
    flat_storage = make_settings(tmp_path / "hnsw-flat" / "index", ann_min_chunks=1, ann_index="hnsw", hnsw_storage="flat")
    build([corpus_copy], flat_storage, [fake_embedder])
    assert read_manifest(flat_storage.index_dir)["dense_index"]["storage"] == "flat"
    assert type(Engine.load(flat_storage.engine, [fake_embedder]).index.faiss_index("fake")).__name__ == "IndexHNSWFlat"
    # 17 chunks: HNSW visits them all, so it finds what exact search finds.
    flat_ids = [p.chunk_id for p in flat_engine.search(question, mode="dense")]
    assert [p.chunk_id for p in hnsw_engine.search(question, mode="dense")] == flat_ids
    # What format 3 wrote beside HNSW (float16 rows, no scales) still loads and ranks the same.
    dense = hnsw_settings.index_dir.resolve() / "dense"
    np.save(dense / "fake.chunks.npy", np.asarray(stored).astype(np.float16))
    (dense / "fake.chunks.scales.npy").unlink()
    manifest_path = hnsw_settings.index_dir.resolve() / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["format_version"] = 3
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    older = Engine.load(hnsw_settings.engine, [fake_embedder])
    assert older.index.chunk_vectors["fake"].dtype == np.float16
    assert [p.chunk_id for p in older.search(question, mode="dense")] == flat_ids
