"""GET /v1/search and /v1/documents: ranked passages, document text, unknown ids and path traversal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.contract import PASSAGE_KEYS
from tests.support.helpers import CORPUS_IDS, KEMNAKER, METI, TOKUTEI
from tests.support.service import assert_problem, build_into, files_opened

DOC_IDS = sorted(p.split(".")[0] for p in CORPUS_IDS)


# --- GET /v1/search --------------------------------------------------------------------------------------
def test_search_returns_ranked_passages(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "tokutei ginou", "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"query", "mode", "results"}
    assert body["query"] == "tokutei ginou"
    assert body["mode"] == "hybrid"
    assert 1 <= len(body["results"]) <= 3
    scores = [p["score"] for p in body["results"]]
    assert scores == sorted(scores, reverse=True)
    for passage in body["results"]:
        assert set(passage) == PASSAGE_KEYS
        assert set(passage["ranks"]) == {"bm25", "fake"}
        assert all(r is None or r >= 1 for r in passage["ranks"].values())
        text = client.get(f"/v1/documents/{passage['doc_id']}").json()["text"]
        assert text[passage["start"] : passage["end"]] == passage["text"]


def test_search_mode_lexical_uses_bm25_only(client: TestClient) -> None:
    body = client.get("/v1/search", params={"q": "magang jepang", "mode": "lexical"}).json()
    assert body["mode"] == "lexical"
    assert body["results"]
    assert [p["ranks"]["bm25"] for p in body["results"]] == list(range(1, len(body["results"]) + 1))
    assert all(set(p["ranks"]) == {"bm25"} for p in body["results"])


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="missing-q"),
        pytest.param({"q": ""}, id="empty-q"),
        pytest.param({"q": "   "}, id="whitespace-q"),
        pytest.param({"q": "a" * 1001}, id="long-q"),
        pytest.param({"q": "visa", "top_k": 0}, id="top_k-0"),
        pytest.param({"q": "visa", "top_k": 21}, id="top_k-21"),
        pytest.param({"q": "visa", "mode": "bogus"}, id="mode-bogus"),
    ],
)
def test_search_rejects_invalid_queries_with_422(client: TestClient, params: dict[str, Any]) -> None:
    assert_problem(client.get("/v1/search", params=params), 422)


# --- documents ---------------------------------------------------------------------------------------------
def test_documents_list_and_detail(client: TestClient) -> None:
    listing = client.get("/v1/documents")
    assert listing.status_code == 200
    docs = listing.json()["documents"]
    assert sorted(d["doc_id"] for d in docs) == sorted([METI, TOKUTEI, KEMNAKER]) == DOC_IDS
    for summary in docs:
        detail = client.get(f"/v1/documents/{summary['doc_id']}")
        assert detail.status_code == 200
        doc = detail.json()
        assert {k: doc[k] for k in summary} == summary
        assert doc["text"] and len(doc["sha256"]) == 64


def test_unknown_document_is_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/documents/no-such-document"), 404, "Document not found")
    assert "no-such-document" in body["detail"]


TRAVERSALS = [
    "/v1/documents/../etc/passwd",
    "/v1/documents/..%2F..%2Fetc%2Fpasswd",
    "/v1/documents/%2e%2e%2fsecret",
    "/v1/documents/%2e%2e%2f%2e%2e%2fsecret",
    "/v1/documents/....//x",
    "/v1/documents/a/b",
    "/v1/documents/%2e%2e",
    "/v1/documents/..",
    "/v1/documents/..%5c..%5csecret",
    "/v1/documents/%252e%252e%252fsecret",
    "/v1/documents/secret%00",
    "/v1/documents/%2Fetc%2Fpasswd",
    "/static/..%2F..%2Fetc%2Fpasswd",
    "/static/%2e%2e/%2e%2e/secret",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_404_and_reads_nothing(client: TestClient, tmp_path: Path, path: str) -> None:
    (tmp_path / "secret").write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    with files_opened() as opened:
        response = client.get(path)
    assert_problem(response, 404)
    assert "TOP-SECRET-CONTENT" not in response.text and "root:" not in response.text
    assert not [p for p in opened if "passwd" in p or "secret" in p], opened


def test_the_file_recorder_sees_real_reads(client: TestClient) -> None:
    """Control for the test above: serving the page does open a file, and the recorder sees it."""
    with files_opened() as opened:
        assert client.get("/").status_code == 200
    assert any(p.endswith("index.html") for p in opened), opened


def test_every_cited_document_can_be_fetched_whatever_its_file_name(
    tmp_path: Path, client_factory: Callable[..., TestClient]
) -> None:
    """Issue 10, defect 7: ``日本.txt`` and ``ジャパン.txt`` shared an id, and ids over 200 characters were cited
    but answered 404 (or 422) at ``GET /v1/documents/{id}``."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["日本.txt", "ジャパン.txt", "k" * 230 + ".txt", "same.md", "same.txt"]
    for i, name in enumerate(names):
        (corpus / name).write_text(f"Pekerja magang nomor {i} berangkat ke Jepang.", encoding="utf-8")
    report = build_into(tmp_path / "index", corpus)
    assert report.documents == len(names) and not report.skipped and len(report.collisions) == 1
    client = client_factory(tmp_path / "index")
    listed = client.get("/v1/documents").json()["documents"]
    assert sorted(Path(d["source"]).name for d in listed) == sorted(names)
    for doc in listed:
        fetched = client.get(f"/v1/documents/{doc['doc_id']}")
        assert fetched.status_code == 200, (doc["doc_id"], fetched.text)
        assert fetched.json()["source"] == doc["source"]


def test_a_delta_build_serves_its_documents_and_hides_removed_ones(tmp_path, client_factory) -> None:
    """Issue 11: over a delta build (base + changed documents), the API lists, shows and cites exactly the files on disk."""
    import shutil

    from indexer.embedders.fake import FakeEmbedder
    from indexer.store import read_manifest
    from tests.support.helpers import CORPUS_DIR, make_settings, run_build

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    index_dir = tmp_path / "index"
    settings = make_settings(index_dir, delta_min_chunks=1, max_delta_share=1.0)
    run_build([corpus], settings, [FakeEmbedder()])
    removed = sorted(p for p in corpus.glob("*.txt"))[0]
    removed_id = removed.stem
    removed.unlink()
    removed.with_name(removed.name + ".meta.json").unlink(missing_ok=True)
    (corpus / "delta-note.txt").write_text("A note added later: the delta marker zylophant appears here.", encoding="utf-8")
    run_build([corpus], settings, [FakeEmbedder()])
    assert "base" in read_manifest(index_dir)

    client = client_factory(index_dir=index_dir)
    listed = [d["doc_id"] for d in client.get("/v1/documents").json()["documents"]]
    assert "delta-note" in listed and removed_id not in listed
    assert client.get(f"/v1/documents/{removed_id}").status_code == 404
    shown = client.get("/v1/documents/delta-note").json()
    assert "zylophant" in shown["text"]
    body = client.get("/v1/search", params={"q": "zylophant", "mode": "lexical"}).json()
    hit = body["results"][0]
    assert hit["doc_id"] == "delta-note" and shown["text"][hit["start"] : hit["end"]] == hit["text"]
