"""Hot reload through POST /v1/admin/reload: a rebuilt index is swapped in; a broken one is not.

Each test builds its own index (fake embedder) from a private copy of the corpus (the
``index_dir`` fixture), so the shared index used by the other service tests is never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.embedders.fake import FakeEmbedder
from tests.support.helpers import METI, make_settings, run_build
from tests.support.reload import NEW_FACT, NEW_QUESTION
from tests.support.reload import add_fact as _add_fact
from tests.support.reload import bad_build as _bad_build
from tests.support.reload import break_missing_chunks as _break_missing_chunks
from tests.support.reload import cited_texts as _cited_texts
from tests.support.reload import point_index_at as _point_index_at
from tests.support.reload import readyz as _readyz
from tests.support.reload import reloads as _reloads
from tests.support.service import ClientFactory, assert_problem, build_into


# --- POST /v1/admin/reload -------------------------------------------------------------------------------
def test_reload_swaps_in_a_rebuilt_index(client_factory: ClientFactory, index_dir: Path, corpus_copy: Path) -> None:
    client = client_factory(index_dir=index_dir, abstain_threshold=0.0)
    build_a = _readyz(client)["index_build"]
    assert not any("zorblax" in t for t in _cited_texts(client))

    _add_fact(corpus_copy)
    report = build_into(index_dir, corpus_copy)
    assert report.changed and report.embedded_documents == [METI]
    build_b = report.build_id
    assert build_b != build_a
    # No watcher (reload_poll_s=0): the app keeps serving A until asked to reload.
    assert _readyz(client)["index_build"] == build_a

    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 200
    assert reload.json() == {"reloaded": True, "build_id": build_b, "previous_build_id": build_a, "error": None}
    ready = _readyz(client)
    assert ready["index_build"] == build_b and ready["detail"] is None

    document = client.get(f"/v1/documents/{METI}").json()["text"]
    assert NEW_FACT in document
    answer = client.post("/v1/ask", json={"question": NEW_QUESTION}).json()
    assert any("zorblax" in c["text"] for c in answer["citations"]), answer
    for citation in answer["citations"]:
        text = client.get(f"/v1/documents/{citation['doc_id']}").json()["text"]
        assert text[citation["start"] : citation["end"]] == citation["text"]
    hits = client.get("/v1/search", params={"q": "zorblax quota", "mode": "lexical"}).json()["results"]
    assert hits and hits[0]["doc_id"] == METI and "zorblax" in hits[0]["text"]
    assert _reloads(client, "ok") == 1


def test_reload_with_nothing_new_reloads_the_same_build(client_factory: ClientFactory, index_dir: Path) -> None:
    client = client_factory(index_dir=index_dir)
    build = _readyz(client)["index_build"]
    assert client.post("/v1/admin/reload").json() == {
        "reloaded": True, "build_id": build, "previous_build_id": build, "error": None,
    }


def _break_missing_manifest(index_dir: Path, corpus: Path) -> None:
    build_into(index_dir, corpus)
    (index_dir.resolve() / "manifest.json").unlink()


def _break_other_chunker(index_dir: Path, corpus: Path) -> None:
    # A complete build, but made with settings the service does not run with.
    run_build([corpus], make_settings(index_dir, chunk_max_tokens=64), [FakeEmbedder()])


def _break_foreign_format(index_dir: Path, corpus: Path) -> None:
    _point_index_at(index_dir, _bad_build(index_dir.parent, json.dumps({"format": "other", "format_version": 99})))


def _break_unparsable_manifest(index_dir: Path, corpus: Path) -> None:
    _point_index_at(index_dir, _bad_build(index_dir.parent, "{not json"))


def _break_dangling_link(index_dir: Path, corpus: Path) -> None:
    _point_index_at(index_dir, index_dir.parent / "no-such-build")


BREAKERS = {
    "missing-chunks": _break_missing_chunks,
    "missing-manifest": _break_missing_manifest,
    "other-chunker": _break_other_chunker,
    "foreign-format": _break_foreign_format,
    "unparsable-manifest": _break_unparsable_manifest,
    "dangling-link": _break_dangling_link,
}


@pytest.mark.parametrize("breaker", list(BREAKERS))
def test_failed_reload_keeps_the_old_build_serving(
    client_factory: ClientFactory, index_dir: Path, corpus_copy: Path, breaker: str
) -> None:
    client = client_factory(index_dir=index_dir)
    build_a = _readyz(client)["index_build"]
    engine_a = client.app.state.services.holder.engine  # type: ignore[attr-defined]

    _add_fact(corpus_copy)
    BREAKERS[breaker](index_dir, corpus_copy)
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 200, reload.text
    result = reload.json()
    assert result["reloaded"] is False
    assert result["build_id"] == build_a and result["previous_build_id"] == build_a
    assert isinstance(result["error"], str) and result["error"]

    ready = _readyz(client)
    assert ready["status"] == "ready" and ready["index_build"] == build_a
    assert ready["detail"] == result["error"]  # readiness says the last reload failed
    assert client.app.state.services.holder.engine is engine_a  # type: ignore[attr-defined]
    assert client.post("/v1/ask", json={"question": NEW_QUESTION}).status_code == 200
    assert NEW_FACT not in client.get(f"/v1/documents/{METI}").json()["text"]
    assert _reloads(client, "failed") == 1

    # A good build afterwards is picked up and clears the error.
    if index_dir.is_symlink() and not index_dir.exists():
        index_dir.unlink()
    report = build_into(index_dir, corpus_copy)
    recovered = client.post("/v1/admin/reload").json()
    assert recovered == {"reloaded": True, "build_id": report.build_id, "previous_build_id": build_a, "error": None}
    assert _readyz(client)["detail"] is None
    assert NEW_FACT in client.get(f"/v1/documents/{METI}").json()["text"]


NON_OBJECT_MANIFESTS = {
    "json-list": "[]",
    "json-null": "null",
    "bad-embedder-entry": json.dumps({"format": "tanya-index", "format_version": 1, "embedders": [{"id": "fake"}]}),
}


@pytest.mark.parametrize("manifest", list(NON_OBJECT_MANIFESTS))
def test_reload_of_a_build_with_a_non_object_manifest_is_a_failed_reload(
    client_factory: ClientFactory, index_dir: Path, manifest: str
) -> None:
    client = client_factory(index_dir=index_dir, raise_server_exceptions=False)
    build_a = _readyz(client)["index_build"]
    _point_index_at(index_dir, _bad_build(index_dir.parent, NON_OBJECT_MANIFESTS[manifest]))
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 200, reload.text
    assert reload.json()["reloaded"] is False and reload.json()["build_id"] == build_a
    assert _readyz(client)["index_build"] == build_a


def test_reload_needs_a_key_when_keys_are_set(client_factory: ClientFactory, index_dir: Path) -> None:
    client = client_factory(index_dir=index_dir, api_keys=["admin-key"])
    assert_problem(client.post("/v1/admin/reload"), 401)
    assert_problem(client.post("/v1/admin/reload", headers={"X-API-Key": "other"}), 401)
    assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer admin-key"}).json()["reloaded"] is True


def test_reload_is_rate_limited_like_the_rest_of_v1(client_factory: ClientFactory, index_dir: Path) -> None:
    client = client_factory(index_dir=index_dir, rate_limit_per_minute=1)
    assert client.post("/v1/admin/reload").status_code == 200
    response = client.post("/v1/admin/reload")
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
