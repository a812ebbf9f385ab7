"""Hot reload: POST /v1/admin/reload, the index watcher, failed reloads and in-flight safety.

Each test builds its own index (fake embedder) from a private copy of the corpus, so the
shared index used by the other service tests is never touched.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import METI, make_settings, run_build
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import Gate, assert_problem, build_into, service_settings

from indexer.embedders.fake import FakeEmbedder
from service.api.app import create_app

ClientFactory = Callable[..., TestClient]
NEW_FACT = "The zorblax quota for METI interns is exactly 4242 people per year."
NEW_QUESTION = "What is the zorblax quota for METI interns?"
WAIT_S = 10.0


def _add_fact(corpus: Path) -> None:
    path = corpus / f"{METI}.txt"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + NEW_FACT + "\n", encoding="utf-8")


def _point_index_at(index_dir: Path, target: Path) -> None:
    """Atomically make the index link point at ``target`` (as ``tanya index`` does)."""
    temporary = index_dir.parent / f".link-{uuid.uuid4().hex[:8]}"
    os.symlink(target, temporary)
    os.replace(temporary, index_dir)


def _bad_build(root: Path, manifest: str | None) -> Path:
    """A build directory whose manifest is ``manifest`` (None: no manifest at all)."""
    target = root / f"bad-build-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True)
    if manifest is not None:
        (target / "manifest.json").write_text(manifest, encoding="utf-8")
    return target


def _readyz(client: TestClient) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until true (bounded); fail saying what did not happen."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


def _reloads(client: TestClient, result: str) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tanya_index_reloads_total" and s.labels.get("result") == result
    )


def _cited_texts(client: TestClient, question: str = NEW_QUESTION) -> list[str]:
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return [c["text"] for c in response.json()["citations"]]


@pytest.fixture
def index_dir(tmp_path: Path, corpus_copy: Path) -> Path:
    """A private index over ``corpus_copy`` (build A)."""
    target = tmp_path / "index"
    build_into(target, corpus_copy)
    return target


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


def _break_missing_chunks(index_dir: Path, corpus: Path) -> None:
    build_into(index_dir, corpus)
    (index_dir.resolve() / "chunks.jsonl").unlink()


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


# --- the watcher ---------------------------------------------------------------------------------------------
def test_watcher_picks_up_a_new_build(client_factory: ClientFactory, index_dir: Path, corpus_copy: Path) -> None:
    client = client_factory(index_dir=index_dir, reload_poll_s=0.2, abstain_threshold=0.0)
    build_a = _readyz(client)["index_build"]
    _add_fact(corpus_copy)
    build_b = build_into(index_dir, corpus_copy).build_id
    _wait_for(lambda: _readyz(client)["index_build"] == build_b, f"the watcher loading build {build_b}")
    assert build_b != build_a
    assert any("zorblax" in t for t in _cited_texts(client))
    assert _reloads(client, "ok") >= 1


def test_watcher_skips_a_broken_build_once_and_recovers(
    client_factory: ClientFactory, index_dir: Path, corpus_copy: Path
) -> None:
    client = client_factory(index_dir=index_dir, reload_poll_s=0.1)
    build_a = _readyz(client)["index_build"]
    _add_fact(corpus_copy)
    _break_missing_chunks(index_dir, corpus_copy)
    _wait_for(lambda: _readyz(client)["detail"] is not None, "the watcher trying the broken build")
    ready = _readyz(client)
    assert ready["index_build"] == build_a and "incomplete or damaged" in ready["detail"]
    assert client.post("/v1/ask", json={"question": NEW_QUESTION}).status_code == 200

    build_c = build_into(index_dir, corpus_copy).build_id
    _wait_for(lambda: _readyz(client)["index_build"] == build_c, f"the watcher loading build {build_c}")
    assert _readyz(client)["detail"] is None
    # The broken build was tried once, not on every poll while it stayed in place.
    assert _reloads(client, "failed") == 1
    assert _reloads(client, "ok") == 1


def test_watcher_survives_a_non_object_manifest(tmp_path: Path, index_dir: Path, corpus_copy: Path) -> None:
    settings = service_settings(index_dir, reload_poll_s=0.05)
    # The client is managed here, not by the fixture, so a failing shutdown fails this test, not teardown.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        build_a = _readyz(client)["index_build"]
        reloads_seen = _reloads(client, "ok") + _reloads(client, "failed")
        _point_index_at(index_dir, _bad_build(tmp_path, "[]"))
        _wait_for(lambda: _readyz(client)["detail"] is not None, "the watcher reporting the bad build", 2.0)
        assert _readyz(client)["index_build"] == build_a
        # A good build, made elsewhere and swapped in, must still be picked up.
        other = tmp_path / "other" / "index"
        _add_fact(corpus_copy)
        build_b = build_into(other, corpus_copy).build_id
        _point_index_at(index_dir, other.resolve())
        _wait_for(lambda: _readyz(client)["index_build"] == build_b, "the watcher loading the next good build", 3.0)
        assert _reloads(client, "ok") + _reloads(client, "failed") > reloads_seen


# --- in-flight safety ---------------------------------------------------------------------------------------------
def test_an_engine_held_across_reloads_keeps_answering(
    client_factory: ClientFactory, index_dir: Path, corpus_copy: Path
) -> None:
    client = client_factory(index_dir=index_dir, abstain_threshold=0.0)
    holder = client.app.state.services.holder  # type: ignore[attr-defined]
    old = holder.engine
    old_path = old.index.path
    _add_fact(corpus_copy)
    build_into(index_dir, corpus_copy)
    assert client.post("/v1/admin/reload").json()["reloaded"] is True
    assert holder.engine is not old

    before = old.ask(NEW_QUESTION)
    assert before.citations and not any("zorblax" in c.text for c in before.citations)
    assert any("zorblax" in t for t in _cited_texts(client))

    # Two more builds prune the old build's directory (two builds are kept): the old engine
    # holds everything in memory and still answers, identically.
    for extra in ("One more sentence for build C.", "And one for build D."):
        with (corpus_copy / f"{METI}.txt").open("a", encoding="utf-8") as handle:
            handle.write("\n" + extra + "\n")
        build_into(index_dir, corpus_copy)
        assert client.post("/v1/admin/reload").json()["reloaded"] is True
    assert old_path is not None and not old_path.exists()
    after = old.ask(NEW_QUESTION)
    assert after.to_dict()["citations"] == before.to_dict()["citations"]
    assert old.search("magang", top_k=3)
    assert old.document(METI).text.count("zorblax") == 0


def test_a_request_in_flight_during_a_reload_finishes_on_its_engine(
    client_factory: ClientFactory, index_dir: Path, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_factory(index_dir=index_dir, abstain_threshold=0.0)
    holder = client.app.state.services.holder  # type: ignore[attr-defined]
    old = holder.engine
    gate = Gate(timeout_s=WAIT_S)
    monkeypatch.setattr(old, "ask", gate.wrap(old.ask))
    _add_fact(corpus_copy)
    build_b = build_into(index_dir, corpus_copy).build_id

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(client.post, "/v1/ask", json={"question": NEW_QUESTION})
        try:
            assert gate.entered.wait(WAIT_S), "the request never reached the engine"
            reload = client.post("/v1/admin/reload")
            assert reload.json()["reloaded"] is True and reload.json()["build_id"] == build_b
            assert holder.engine is not old
            assert not in_flight.done()
        finally:
            gate.release.set()
        response = in_flight.result(timeout=WAIT_S)

    assert response.status_code == 200, response.text
    assert gate.calls == [old]
    assert not any("zorblax" in c["text"] for c in response.json()["citations"])
    # The next request is answered by the new build.
    assert any("zorblax" in t for t in _cited_texts(client))


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
