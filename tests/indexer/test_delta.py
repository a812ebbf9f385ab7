"""Delta builds (issue 11): a change to a large index writes only the changed documents, stacked on the last
complete build at load time; searches see exactly the documents on disk (fake embedder)."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import numpy as np
import pytest

from indexer.embedders.fake import FakeEmbedder
from indexer.errors import NoDocumentsError
from indexer.lexical import LexicalIndex, SegmentedLexical
from indexer.store import load_index, read_manifest
from indexer.store.reader import load_segment
from indexer.store.records import document_header, document_headers
from service.config import Settings
from service.qa.engine import Engine
from tests.support.helpers import make_settings, run_build
from tests.support.index_builds import builds

WORDS = (
    "visa worker training centre contract salary employer housing language test skill nursing "
    "construction agriculture food service factory placement agency permit residence card insurance "
    "tax pension overtime holiday dormitory interview document passport health examination"
).split()


def _text(seed: int, marker: str) -> str:
    rng = random.Random(seed)
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 12))).capitalize() + f" about {marker}."
        for _ in range(6 + 15 * (seed % 3))  # a third of the documents span several chunks
    ]
    return " ".join(sentences)


def _corpus(folder: Path, documents: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(documents):
        (folder / f"doc{i:02d}.txt").write_text(_text(i, f"marker{i:02d}"), encoding="utf-8")
    return folder


@pytest.fixture
def delta_settings(tmp_path: Path) -> Settings:
    """Deltas from the first chunk on, and up to half the base before a merge."""
    return make_settings(tmp_path / "index", delta_min_chunks=1, max_delta_share=0.5)


def _engine(settings: Settings) -> Engine:
    return Engine.load(settings.engine, [FakeEmbedder()])


def _hits(engine: Engine, query: str, mode: str) -> list[tuple[str, int, int]]:
    return [(p.doc_id, p.start, p.end) for p in engine.search(query, top_k=10, mode=mode)]


def _assert_citations_exact(engine: Engine, query: str) -> None:
    for mode in ("lexical", "dense", "hybrid"):
        for passage in engine.search(query, top_k=10, mode=mode):
            assert engine.document(passage.doc_id).text[passage.start : passage.end] == passage.text


def test_adding_a_document_writes_only_that_document(tmp_path: Path, delta_settings: Settings) -> None:
    corpus = _corpus(tmp_path / "corpus", 12)
    embedder = FakeEmbedder()
    base = run_build([corpus], delta_settings, [embedder])
    assert base.delta_of is None
    calls = embedder.calls
    (corpus / "new.txt").write_text(_text(99, "markernew"), encoding="utf-8")
    report = run_build([corpus], delta_settings, [embedder])

    assert report.changed and report.embedded_documents == ["new"] and len(report.reused_documents) == 12
    assert report.delta_of == base.build_id and f"a delta build on {base.build_id}" in report.summary
    manifest = read_manifest(delta_settings.index_dir)
    assert manifest["base"]["deleted"] == [] and manifest["counts"]["documents"] == 13
    assert list(load_segment(delta_settings.index_dir).documents) == ["new"]  # the build holds only the new document
    new_texts = embedder.calls - calls
    scratch = make_settings(tmp_path / "scratch")
    assert run_build([corpus], scratch, [FakeEmbedder()]).chunks == report.chunks
    one = FakeEmbedder()
    run_build([corpus / "new.txt"], make_settings(tmp_path / "one"), [one])
    assert new_texts == one.calls  # exactly the new document's chunks and sentences were embedded

    delta, whole = _engine(delta_settings), _engine(scratch)
    assert len(delta.index.documents) == 13 and delta.index.live_chunks == whole.index.live_chunks
    for query in ("markernew visa", "marker03 salary", "passport health examination"):
        # Dense search over the stacked build is the from-scratch build's, row for row.
        assert _hits(delta, query, "dense") == _hits(whole, query, "dense")
        _assert_citations_exact(delta, query)
    assert delta.search("markernew", top_k=1, mode="lexical")[0].doc_id == "new"


def test_changed_and_removed_base_documents_are_masked(tmp_path: Path, delta_settings: Settings) -> None:
    corpus = _corpus(tmp_path / "corpus", 12)
    run_build([corpus], delta_settings, [FakeEmbedder()])
    (corpus / "doc03.txt").write_text(_text(303, "markerchanged"), encoding="utf-8")
    (corpus / "doc05.txt").unlink()
    report = run_build([corpus], delta_settings, [FakeEmbedder()])

    assert report.embedded_documents == ["doc03"] and report.removed_documents == ["doc05"]
    assert read_manifest(delta_settings.index_dir)["base"]["deleted"] == ["doc03", "doc05"]
    engine = _engine(delta_settings)
    assert "doc05" not in engine.index.documents
    assert "markerchanged" in engine.document("doc03").text
    for mode in ("lexical", "dense", "hybrid"):
        for query in ("marker05", "marker03", "markerchanged"):
            hits = _hits(engine, query, mode)
            assert all(doc != "doc05" for doc, _, _ in hits)
            # Every doc03 passage found is from its new text (the old rows are masked).
            assert all(
                "markerchanged" in engine.document(doc).text[start:end] for doc, start, end in hits if doc == "doc03"
            )
        if mode != "dense":  # the fake encoder's hashed words do not single out a marker
            assert _hits(engine, "markerchanged", mode)[0][0] == "doc03"
        _assert_citations_exact(engine, "marker03 markerchanged visa")
    # Headers read together are the ones read one by one, in the order asked, from the part holding each
    # document (the changed doc03 from the delta); a removed document is unknown.
    documents = engine.index.documents
    asked = ["doc03", "doc01", "doc03", "doc11", "doc00"]
    together = document_headers(documents, asked)
    assert [d.doc_id for d in together] == asked
    assert together == [document_header(documents, d) for d in asked]
    assert together[0].sha256 == engine.document("doc03").sha256 and all(d.text == "" for d in together)
    with pytest.raises(KeyError):
        document_headers(documents, ["doc01", "doc05"])
    scratch = make_settings(tmp_path / "scratch")
    run_build([corpus], scratch, [FakeEmbedder()])
    whole = _engine(scratch)
    assert engine.index.live_chunks == whole.index.live_chunks
    for query in ("markerchanged", "marker07 permit"):
        assert _hits(engine, query, "dense") == _hits(whole, query, "dense")


def test_successive_deltas_keep_their_base_and_a_no_op_stays_a_no_op(tmp_path: Path, delta_settings: Settings) -> None:
    corpus = _corpus(tmp_path / "corpus", 12)
    first = run_build([corpus], delta_settings, [FakeEmbedder()])
    for i in range(4):  # more builds than KEEP_BUILDS: the base must survive pruning
        (corpus / f"extra{i}.txt").write_text(_text(200 + i, f"markerextra{i}"), encoding="utf-8")
        report = run_build([corpus], delta_settings, [FakeEmbedder()])
        assert report.embedded_documents == [f"extra{i}"]
    manifest = read_manifest(delta_settings.index_dir)
    assert manifest["base"]["build_id"] == first.build_id
    assert any(b.name == first.build_id for b in builds(delta_settings.index_dir))
    # The delta carries its earlier documents forward, reusing their vectors.
    assert sorted(load_segment(delta_settings.index_dir).documents) == [f"extra{i}" for i in range(4)]
    embedder = FakeEmbedder()
    again = run_build([corpus], delta_settings, [embedder])
    assert again.changed is False and embedder.calls == 0
    engine = _engine(delta_settings)
    assert len(engine.index.documents) == 16
    assert engine.search("markerextra2", top_k=1, mode="dense")[0].doc_id == "extra2"


@pytest.mark.parametrize("collector_on", [True, False])
def test_a_run_leaves_the_garbage_collector_as_it_found_it(
    tmp_path: Path, delta_settings: Settings, collector_on: bool
) -> None:
    """Planning pauses the cyclic collector and a delta's writing freezes the plan's objects: after a
    delta, a no-op and a run that fails, the collector is as the caller left it, with nothing frozen."""
    corpus = _corpus(tmp_path / "corpus", 6)
    run_build([corpus], delta_settings, [FakeEmbedder()])
    (corpus / "extra.txt").write_text(_text(300, "markerextra"), encoding="utf-8")
    was = gc.isenabled()
    try:
        gc.enable() if collector_on else gc.disable()
        assert run_build([corpus], delta_settings, [FakeEmbedder()]).embedded_documents == ["extra"]
        assert (gc.isenabled(), gc.get_freeze_count()) == (collector_on, 0)
        assert run_build([corpus], delta_settings, [FakeEmbedder()]).changed is False
        assert (gc.isenabled(), gc.get_freeze_count()) == (collector_on, 0)
        with pytest.raises(NoDocumentsError):
            run_build([tmp_path / "empty"], delta_settings, [FakeEmbedder()])
        assert (gc.isenabled(), gc.get_freeze_count()) == (collector_on, 0)
    finally:
        gc.enable() if was else gc.disable()


def test_a_relative_index_folder_keeps_its_base_through_pruning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pruner once compared the builds' paths as listed (relative here) with the base's resolved
    # path: the second delta deleted the base it stacked on.
    monkeypatch.chdir(tmp_path)
    settings = make_settings(Path("index"), delta_min_chunks=1, max_delta_share=0.5)
    corpus = _corpus(Path("corpus"), 12)
    first = run_build([corpus], settings, [FakeEmbedder()])
    for i in range(3):
        (corpus / f"extra{i}.txt").write_text(_text(300 + i, f"markerextra{i}"), encoding="utf-8")
        run_build([corpus], settings, [FakeEmbedder()])
    assert read_manifest(settings.index_dir)["base"]["build_id"] == first.build_id
    assert (Path("index.builds") / first.build_id / "base.txt").read_text() == ""
    assert len(_engine(settings).index.documents) == 15


def test_a_delta_past_its_share_is_merged_into_a_complete_build(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "index", delta_min_chunks=1, max_delta_share=0.2)
    corpus = _corpus(tmp_path / "corpus", 12)
    run_build([corpus], settings, [FakeEmbedder()])
    (corpus / "doc01.txt").unlink()
    run_build([corpus], settings, [FakeEmbedder()])
    assert "base" in read_manifest(settings.index_dir)
    for i in (2, 4, 6):
        (corpus / f"doc0{i}.txt").write_text(_text(500 + i, f"markermerged{i}"), encoding="utf-8")
    embedder = FakeEmbedder()
    report = run_build([corpus], settings, [embedder])
    manifest = read_manifest(settings.index_dir)
    assert "base" not in manifest and manifest["counts"]["documents"] == 11
    assert sorted(report.embedded_documents) == ["doc02", "doc04", "doc06"]
    scratch = make_settings(tmp_path / "scratch")
    run_build([corpus], scratch, [FakeEmbedder()])
    merged, whole = _engine(settings), _engine(scratch)
    assert merged.index.live is None and len(merged.index.chunks) == len(whole.index.chunks)
    for mode in ("lexical", "dense", "hybrid"):  # a merged build is a complete build: BM25 exact again
        assert _hits(merged, "markermerged4 visa", mode) == _hits(whole, "markermerged4 visa", mode)


def test_small_indexes_are_always_written_whole(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "index")  # delta_min_chunks: 2,000 by default
    corpus = _corpus(tmp_path / "corpus", 4)
    run_build([corpus], settings, [FakeEmbedder()])
    (corpus / "new.txt").write_text(_text(7, "markersmall"), encoding="utf-8")
    run_build([corpus], settings, [FakeEmbedder()])
    assert "base" not in read_manifest(settings.index_dir)


def test_segmented_bm25_uses_the_statistics_of_both_parts() -> None:
    # Passages of equal length: each part's length normalisation is the whole's, so scores match exactly.
    passages = [["visa", "worker"], ["worker", "salary"], ["salary", "salary"], ["visa", "permit"], ["permit", "tax"]]
    whole = LexicalIndex.build(passages)
    live = np.array([True, True, False, True, True])
    stacked = SegmentedLexical([LexicalIndex.build(passages[:3]), LexicalIndex.build(passages[3:])], live)
    for query in (["visa"], ["worker", "permit"], ["salary", "tax", "unknown"]):
        expected = whole.scores(query)
        expected[2] = 0.0  # a masked row scores nothing; its terms still count, as in Lucene before a merge
        assert np.allclose(stacked.scores(query), expected, atol=1e-6)
    assert stacked.rows == 5


def test_a_delta_whose_base_is_gone_is_rebuilt_from_the_files(tmp_path: Path, delta_settings: Settings) -> None:
    import shutil

    corpus = _corpus(tmp_path / "corpus", 12)
    first = run_build([corpus], delta_settings, [FakeEmbedder()])
    (corpus / "new.txt").write_text(_text(99, "markernew"), encoding="utf-8")
    run_build([corpus], delta_settings, [FakeEmbedder()])
    shutil.rmtree(delta_settings.index_dir.resolve().parent / first.build_id)
    report = run_build([corpus], delta_settings, [FakeEmbedder()])
    assert report.changed and len(report.embedded_documents) == 13  # nothing to reuse: everything embedded
    assert "base" not in read_manifest(delta_settings.index_dir)
    assert len(load_index(delta_settings.index_dir).documents) == 13


@pytest.mark.parametrize(
    ("kind", "faiss_type"),
    [
        ({"ann_min_chunks": 1, "ann_index": "hnsw"}, "IndexHNSWSQ"),
        ({"ann_min_chunks": 1}, "IndexIVFPQFastScan"),
        ({"pq_min_chunks": 1}, "IndexPQFastScan"),
    ],
)
def test_a_delta_on_an_approximate_base_searches_as_a_scratch_build(
    tmp_path: Path, kind: dict[str, int], faiss_type: str
) -> None:
    """The base's index holds quantised codes (HNSW's 8-bit, PQ's and IVF's 4-bit) and int8 vectors beside it;
    a delta's rows stack on both, and the base rows of a deleted document are never found."""
    settings = make_settings(tmp_path / "index", delta_min_chunks=1, max_delta_share=0.5, **kind)
    corpus = _corpus(tmp_path / "corpus", 12)
    run_build([corpus], settings, [FakeEmbedder()])
    (corpus / "new.txt").write_text(_text(99, "markernew"), encoding="utf-8")
    (corpus / "doc04.txt").unlink()
    assert run_build([corpus], settings, [FakeEmbedder()]).delta_of is not None
    scratch = make_settings(tmp_path / "scratch", **kind)
    run_build([corpus], scratch, [FakeEmbedder()])
    delta, whole = _engine(settings), _engine(scratch)
    # The delta's rows are views of its own FAISS storage: freed memory would be reused by these
    # allocations and change the rankings below (it did, one run in two, before the index held it).
    gc.collect()
    junk = [np.full(50_000, 7.0, dtype=np.float32) for _ in range(200)]
    assert type(delta.index.faiss_index("fake")).__name__ == faiss_type
    assert delta.index.live_chunks == whole.index.live_chunks
    for query in ("markernew visa", "marker03 salary", "passport health examination"):
        assert _hits(delta, query, "dense") == _hits(whole, query, "dense")
        assert all(doc != "doc04" for doc, _, _ in _hits(delta, query, "hybrid"))
        _assert_citations_exact(delta, query)
    assert len(junk) == 200
