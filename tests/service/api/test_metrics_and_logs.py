"""Prometheus metrics after some requests, and the access log (questions are private by default)."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import QUESTION_ID, ClientFactory
from tests.support.service import post_ask as _ask


# --- metrics ----------------------------------------------------------------------------------------------------------------
def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def test_metrics_after_some_requests(client: TestClient) -> None:
    assert _ask(client).status_code == 200
    assert _ask(client, QUESTION_ID).status_code == 200
    assert client.get("/v1/search", params={"q": "visa"}).status_code == 200
    assert client.get("/v1/documents/unknown-doc").status_code == 404
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def value(name: str, **labels: str) -> float:
        found = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
        assert found, f"no sample {name} {labels}"
        return sum(found)

    assert value("tanya_http_requests_total", route="/v1/ask", method="POST", status="200") == 2
    assert value("tanya_http_requests_total", route="/v1/ask", method="POST", status="422") == 1
    assert value("tanya_http_requests_total", route="/v1/search", method="GET", status="200") == 1
    assert value("tanya_http_requests_total", route="/v1/documents/{doc_id}", method="GET", status="404") == 1
    assert value("tanya_http_request_duration_seconds_count", route="/v1/ask", status="200") == 2
    assert value("tanya_http_request_duration_seconds_bucket", route="/v1/ask", status="200", le="+Inf") == 2
    assert value("tanya_answers_total", outcome="answered") + sum(
        v for n, ls, v in samples if n == "tanya_answers_total" and ls.get("outcome") == "abstained"
    ) == 2
    assert value("tanya_encoder_seconds_count", encoder="fake") == 2
    ready = client.get("/readyz").json()
    assert value("tanya_index_documents") == ready["documents"] == 3
    assert value("tanya_index_chunks") == ready["chunks"]
    built = value("tanya_index_build_timestamp_seconds")
    assert 1.6e9 < built <= time.time() + 60
    assert value("tanya_index_ready") == 1


# --- logging of questions --------------------------------------------------------------------------------------------
MARKER_QUESTION = "Apakah zebrafinch-7731 perlu visa kerja di Jepang?"


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # The test client's own HTTP library logs the URLs it requests; that is not the service.
    return [r for r in caplog.records if not r.name.startswith("httpx")]


def _records_mentioning(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in _server_records(caplog) if text in r.getMessage() or text in repr(r.__dict__)]


def test_invented_methods_do_not_grow_the_metrics(client: TestClient) -> None:
    # Issue 10, defect 4: each invented method added about 17 series.
    for n in range(30):
        client.request(f"M{n}", "/v1/ask")
        client.request(f"X{n}", f"/no/such/path/{n}")
    samples = _samples(client.get("/metrics").text)
    methods = {labels["method"] for name, labels, _ in samples if name == "tanya_http_requests_total"}
    routes = {labels["route"] for name, labels, _ in samples if name == "tanya_http_requests_total"}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods
    assert "other" in methods and len(routes) <= 3, routes
    other = sum(v for name, labels, v in samples if name == "tanya_http_requests_total" and labels["method"] == "other")
    assert other == 60


def test_questions_are_not_logged_by_default(client_factory: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    client = client_factory()
    caplog.set_level(logging.DEBUG)
    assert _ask(client, MARKER_QUESTION).status_code == 200
    assert client.get("/v1/search", params={"q": MARKER_QUESTION}).status_code == 200
    access = [r for r in caplog.records if r.name == "tanya.access"]
    assert len(access) == 2
    for record in access:
        for field in ("request_id", "method", "route", "path", "status", "duration_ms"):
            assert field in record.__dict__, field
        assert "question" not in record.__dict__
    assert access[0].__dict__["route"] == "/v1/ask" and access[0].__dict__["status"] == 200
    assert "abstained" in access[0].__dict__
    assert _server_records(caplog)
    assert not _records_mentioning(caplog, "zebrafinch")


def test_questions_are_logged_when_enabled(client_factory: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    client = client_factory(log_questions=True)
    caplog.set_level(logging.INFO, logger="tanya.access")
    response = _ask(client, f"  {MARKER_QUESTION} ")
    assert response.status_code == 200
    assert client.get("/v1/search", params={"q": "zebrafinch search"}).status_code == 200
    access = [r for r in caplog.records if r.name == "tanya.access"]
    assert [r.__dict__.get("question") for r in access] == [MARKER_QUESTION, "zebrafinch search"]
    assert access[0].__dict__["request_id"] == response.headers["x-request-id"]
