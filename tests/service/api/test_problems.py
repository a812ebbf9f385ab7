"""Health and readiness, the service without an index, and every error as a problem (404, 405, 500)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.helpers import METI
from tests.support.service import ClientFactory, assert_problem, build_into
from tests.support.service import post_ask as _ask


# --- health, readiness, no index ------------------------------------------------------------------------------------
def test_healthz_readyz_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok", "index_build": None, "documents": None, "chunks": None, "detail": None,
    }
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["index_build"] and body["documents"] == 3 and body["chunks"] > 0
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("existing", [True, False], ids=["empty-dir", "missing-dir"])
def test_app_starts_without_an_index_and_becomes_ready_after_a_build(
    client_factory: ClientFactory, tmp_path: Path, existing: bool
) -> None:
    index_dir = tmp_path / "index"
    if existing:
        index_dir.mkdir()
    client = client_factory(index_dir=index_dir)
    assert client.get("/healthz").status_code == 200
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["status"] == "not ready" and not_ready.json()["detail"]
    body = assert_problem(_ask(client), 503, "Service not ready")
    assert "tanya index" in body["detail"]
    # Issue 10: paths and library internals stay in the log, not in what anyone can read.
    for public in (not_ready.text, body["detail"], client.post("/v1/admin/reload").text):
        assert str(tmp_path) not in public and "Errno" not in public and "Index not found" in public, public
    assert_problem(client.get("/v1/search", params={"q": "visa"}), 503)
    assert_problem(client.get("/v1/documents"), 503)
    assert_problem(client.get(f"/v1/documents/{METI}"), 503)
    assert "tanya_index_ready 0.0" in client.get("/metrics").text

    report = build_into(index_dir)
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 200
    assert reload.json() == {"reloaded": True, "build_id": report.build_id, "previous_build_id": None, "error": None}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["index_build"] == report.build_id
    assert _ask(client).status_code == 200


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "Not found")
    assert_problem(client.get("/v1/ask"), 405, "Method not allowed")


def _failing_client(client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    client = client_factory(raise_server_exceptions=False)
    engine = client.app.state.services.holder.engine  # type: ignore[attr-defined]

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(engine, "ask", boom)
    return client


def test_unexpected_error_is_a_generic_500_problem_and_is_logged(
    client_factory: ClientFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _failing_client(client_factory, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="tanya.service"):
        response = _ask(client)
    assert response.status_code == 500
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body = response.json()
    assert {k: body[k] for k in ("type", "title", "status")} == {
        "type": "https://tanya.example/problems/internal-error", "title": "Internal error", "status": 500,
    }
    assert body["detail"] and body["request_id"]
    assert "must not leak" not in response.text and "Traceback" not in response.text
    logged = [r for r in caplog.records if r.name == "tanya.service" and r.exc_info]
    assert logged and logged[0].__dict__.get("request_id") == body["request_id"]


def test_unexpected_error_response_carries_the_request_id_header(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _failing_client(client_factory, monkeypatch)
    response = _ask(client, headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.json()["request_id"] == "trace-500"
    assert response.headers.get("x-request-id") == "trace-500"


# --- invalid Unicode (issue 10, defect 1) -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_lone_surrogate_is_a_422_problem_not_a_500(client: TestClient, mode: str) -> None:
    # JSON may spell a lone surrogate ("\\ud800"); Python then holds a str that no encoder accepts.
    body = '{"question": "a \\ud800", "mode": "' + mode + '"}'
    response = client.post("/v1/ask", content=body.encode(), headers={"content-type": "application/json"})
    problem = assert_problem(response, 422)
    assert "Unicode" in problem["detail"]


def test_undecodable_search_bytes_are_a_clean_answer(client: TestClient) -> None:
    # The percent-encoded UTF-8 of a surrogate in a query string: never a 500.
    response = client.get("/v1/search?q=a%ED%A0%80&mode=lexical")
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("question", ["???", "😀😀😀"])
def test_a_wordless_question_is_a_422_that_says_why(client: TestClient, question: str) -> None:
    problem = assert_problem(_ask(client, question), 422)
    assert "no words" in problem["detail"]


def test_health_probes_answer_head(client_factory: ClientFactory, client: TestClient, tmp_path: Path) -> None:
    # Issue 10, small items: HEAD /healthz and /readyz were 405.
    assert client.head("/healthz").status_code == 200
    assert client.head("/readyz").status_code == 200
    empty = client_factory(index_dir=tmp_path / "none")
    assert empty.head("/healthz").status_code == 200 and empty.head("/readyz").status_code == 503


def test_a_huge_unknown_id_is_not_echoed_whole(client: TestClient) -> None:
    # Issue 10, small items: a 10k-character id came back twice in its 404.
    problem = assert_problem(client.get("/v1/documents/" + "a" * 10_000), 404)
    assert len(problem["detail"]) < 300 and len(problem.get("instance", "")) < 300
    assert len(client.get("/v1/documents/" + "a" * 10_000).content) < 1_000
