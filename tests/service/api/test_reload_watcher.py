"""Hot reload by the index watcher, and in-flight safety: a request finishes on the engine it started on.

Each test builds its own index (fake embedder) from a private copy of the corpus (the
``index_dir`` fixture), so the shared index used by the other service tests is never touched.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.support.helpers import METI
from tests.support.reload import NEW_QUESTION, WAIT_S
from tests.support.reload import add_fact as _add_fact
from tests.support.reload import bad_build as _bad_build
from tests.support.reload import break_missing_chunks as _break_missing_chunks
from tests.support.reload import cited_texts as _cited_texts
from tests.support.reload import point_index_at as _point_index_at
from tests.support.reload import readyz as _readyz
from tests.support.reload import reloads as _reloads
from tests.support.reload import wait_for as _wait_for
from tests.support.service import ClientFactory, Gate, build_into, service_settings


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
    assert ready["index_build"] == build_a and "Index unreadable" in ready["detail"]
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
