"""The HTTP API through FastAPI's TestClient (lifespan included), with the fake embedder.

Every error is checked to be RFC 9457 problem+json with type, title, status and detail.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from helpers import CORPUS_IDS, KEMNAKER, METI, TOKUTEI
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import (
    ANSWER_KEYS,
    CITATION_KEYS,
    PASSAGE_KEYS,
    QUESTION_EN,
    QUESTION_ID,
    Gate,
    assert_problem,
    build_into,
    files_opened,
)

from service.api.limits import RateLimiter, Worker
from service.api.middleware import BodyLimitMiddleware
from service.api.problems import DeadlineExceededError

ClientFactory = Callable[..., TestClient]
DOC_IDS = sorted(p.split(".")[0] for p in CORPUS_IDS)


def _ask(client: TestClient, question: str = QUESTION_EN, **kwargs: Any) -> Any:
    return client.post("/v1/ask", json={"question": question}, **kwargs)


# --- POST /v1/ask ----------------------------------------------------------------------------------
@pytest.mark.parametrize("question", [QUESTION_EN, QUESTION_ID])
def test_ask_answers_with_citations_that_match_the_document_text(client: TestClient, question: str) -> None:
    response = _ask(client, question)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    answer = response.json()
    assert set(answer) == ANSWER_KEYS
    assert answer["question"] == question
    assert answer["abstained"] is False
    assert answer["mode"] == "hybrid"
    assert 0.0 <= answer["confidence"] <= 1.0
    assert answer["citations"], answer
    texts: dict[str, str] = {}
    for citation in answer["citations"]:
        assert set(citation) == CITATION_KEYS
        doc_id = citation["doc_id"]
        if doc_id not in texts:
            doc = client.get(f"/v1/documents/{doc_id}")
            assert doc.status_code == 200, doc.text
            texts[doc_id] = doc.json()["text"]
        text = texts[doc_id]
        assert text[citation["start"] : citation["end"]] == citation["text"]
        highlight = citation["highlight"]
        assert citation["start"] <= highlight["start"] < highlight["end"] <= citation["end"]
        assert f"[{citation['marker']}]" in answer["answer"]
    assert [c["marker"] for c in answer["citations"]] == list(range(1, len(answer["citations"]) + 1))


def test_ask_answers_an_indonesian_question_from_the_indonesian_source(client: TestClient) -> None:
    answer = _ask(client, QUESTION_ID).json()
    assert answer["lang"] == "id"
    assert KEMNAKER in {c["doc_id"] for c in answer["citations"]}


def test_ask_strips_the_question_and_honours_top_k_and_mode(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": f"  {QUESTION_EN}\n", "top_k": 1, "mode": "lexical"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["question"] == QUESTION_EN
    assert answer["mode"] == "lexical"


def test_request_id_is_generated_and_an_incoming_one_is_echoed(client: TestClient) -> None:
    first, second = _ask(client), _ask(client)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    echoed = _ask(client, headers={"X-Request-ID": "trace-abc-123"})
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == "trace-abc-123"
    # On errors too, in the header and the problem body.
    bad = client.post("/v1/ask", json={"question": ""}, headers={"X-Request-ID": "trace-err-1"})
    assert assert_problem(bad, 422)["request_id"] == "trace-err-1"
    # An over-long id is not trusted (it is logged and echoed): a fresh one replaces it.
    long_id = "x" * 65
    replaced = _ask(client, headers={"X-Request-ID": long_id})
    assert replaced.headers["x-request-id"] not in ("", long_id)


# --- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"question": ""}, id="empty"),
        pytest.param({"question": "   \t\n "}, id="whitespace"),
        pytest.param({"question": "\u0000\u0001"}, id="control-only"),
        pytest.param({"question": " \u0000 \u200b\u0001 "}, id="control-and-format-only"),
        pytest.param({"question": "a" * 1001}, id="1001-chars"),
        pytest.param({"question": "  " + "a" * 1001 + "  "}, id="1001-chars-after-strip"),
        pytest.param({"question": QUESTION_EN, "top_k": 0}, id="top_k-0"),
        pytest.param({"question": QUESTION_EN, "top_k": 21}, id="top_k-21"),
        pytest.param({"question": QUESTION_EN, "top_k": "many"}, id="top_k-not-int"),
        pytest.param({"question": QUESTION_EN, "mode": "bogus"}, id="mode-bogus"),
        pytest.param({"question": QUESTION_EN, "unknown": 1}, id="unknown-field"),
        pytest.param({}, id="missing-question"),
        pytest.param({"question": 42}, id="question-not-string"),
        pytest.param([QUESTION_EN], id="not-an-object"),
    ],
)
def test_ask_rejects_invalid_bodies_with_422(client: TestClient, body: Any) -> None:
    body_out = assert_problem(client.post("/v1/ask", json=body), 422, "Invalid request")
    assert body_out["instance"] == "/v1/ask"
    assert body_out["errors"] and all({"loc", "msg", "type"} <= set(e) for e in body_out["errors"])


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_ask_rejects_a_non_json_body_with_422(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_problem(client.post("/v1/ask", content=b"this is {not json", headers=headers), 422)


def test_question_length_limit_is_after_stripping(client: TestClient) -> None:
    exactly = ("magang " * 200)[:1000]
    assert len(exactly) == 1000 and exactly == exactly.strip()
    ok = client.post("/v1/ask", json={"question": "   " + exactly + " \n"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["question"] == exactly
    detail = assert_problem(client.post("/v1/ask", json={"question": exactly + "x"}), 422)["detail"]
    assert "question" in detail


# --- body size limit ---------------------------------------------------------------------------------
def _body_of(size: int) -> bytes:
    body = json.dumps({"question": "a" * (size - len(json.dumps({"question": ""})))}).encode()
    assert len(body) == size
    return body


def test_body_over_16_kib_is_413_with_content_length(client: TestClient) -> None:
    response = client.post("/v1/ask", content=_body_of(16 * 1024 + 1), headers={"content-type": "application/json"})
    body = assert_problem(response, 413, "Request body too large")
    assert body["instance"] == "/v1/ask"


def test_body_of_exactly_16_kib_is_not_413(client: TestClient) -> None:
    # Allowed through the size limit; then refused as an over-long question.
    response = client.post("/v1/ask", content=_body_of(16 * 1024), headers={"content-type": "application/json"})
    assert_problem(response, 422)


def test_body_over_16_kib_is_413_when_streamed_without_content_length(client: TestClient) -> None:
    payload = _body_of(20_000)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413, "Request body too large")


def test_body_limit_middleware_counts_every_chunk_and_replays_small_bodies() -> None:
    """Direct ASGI: many small chunks summing over the limit are refused before the app runs."""
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        reached.append(message["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(parts: list[bytes]) -> list[dict[str, Any]]:
        queue = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": "POST", "path": "/v1/ask", "headers": [], "state": {}}
        await BodyLimitMiddleware(app, max_bytes=1000)(scope, receive, send)
        return sent

    refused = anyio.run(call, [b"x" * 300] * 4)
    assert refused[0]["status"] == 413
    assert dict(refused[0]["headers"])[b"content-type"] == b"application/problem+json"
    assert json.loads(refused[1]["body"])["status"] == 413
    assert reached == []  # the app never saw the body

    accepted = anyio.run(call, [b"a" * 250, b"b" * 250, b"c" * 500])
    assert accepted[0]["status"] == 204
    assert reached == [b"a" * 250 + b"b" * 250 + b"c" * 500]


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


# --- auth -------------------------------------------------------------------------------------------------------------------
def test_api_keys_guard_v1_but_not_health_or_page(client_factory: ClientFactory) -> None:
    client = client_factory(api_keys=["k1", "k2"])
    missing = _ask(client)
    assert_problem(missing, 401, "Unauthorized")
    assert missing.headers["www-authenticate"].lower().startswith("bearer")
    wrong = _ask(client, headers={"Authorization": "Bearer nope"})
    assert_problem(wrong, 401)
    assert "www-authenticate" in wrong.headers
    assert_problem(_ask(client, headers={"X-API-Key": "k3"}), 401)
    assert_problem(_ask(client, headers={"Authorization": "Basic azE6"}), 401)
    assert_problem(client.get("/v1/search", params={"q": "visa"}), 401)
    assert_problem(client.get("/v1/documents"), 401)
    assert_problem(client.post("/v1/admin/reload"), 401)

    assert _ask(client, headers={"Authorization": "Bearer k2"}).status_code == 200
    assert _ask(client, headers={"authorization": "bearer k2"}).status_code == 200
    assert _ask(client, headers={"X-API-Key": "k1"}).status_code == 200
    assert client.get("/v1/documents", headers={"X-API-Key": "k2"}).status_code == 200
    reload = client.post("/v1/admin/reload", headers={"X-API-Key": "k1"})
    assert reload.status_code == 200 and reload.json()["reloaded"] is True

    for open_path in ("/healthz", "/readyz", "/", "/openapi.json", "/docs"):
        assert client.get(open_path).status_code == 200, open_path


def test_api_keys_never_reach_the_logs(client_factory: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    keys = ["key-ALPHA-7f3e9c", "key-BETA-51d0aa"]
    wrong = "key-WRONG-c0ffee"
    client = client_factory(api_keys=keys)
    caplog.set_level(logging.DEBUG)
    statuses = [
        _ask(client, headers={"Authorization": f"Bearer {keys[0]}"}).status_code,
        _ask(client, headers={"X-API-Key": keys[1]}).status_code,
        _ask(client, headers={"X-API-Key": wrong}).status_code,
        client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {keys[1]}"}).status_code,
        client.get("/v1/search", params={"q": "visa"}, headers={"X-API-Key": keys[0]}).status_code,
    ]
    assert statuses == [200, 200, 401, 200, 200]
    access = [r for r in caplog.records if r.name == "tanya.access"]
    assert len(access) == len(statuses)
    for record in caplog.records:
        flat = record.getMessage() + repr(record.__dict__)
        for secret in [*keys, wrong]:
            assert secret not in flat, record.__dict__
    for secret in [*keys, wrong]:
        assert secret not in caplog.text


# --- rate limit -------------------------------------------------------------------------------------------------------------
def test_fourth_request_in_a_minute_is_429_with_retry_after(client_factory: ClientFactory) -> None:
    client = client_factory(rate_limit_per_minute=3)
    assert [_ask(client).status_code for _ in range(3)] == [200, 200, 200]
    limited = _ask(client)
    body = assert_problem(limited, 429, "Too many requests")
    retry_after = limited.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 20  # one token per 20 s at 3/min
    assert retry_after in body["detail"]
    # The limit is per client across /v1, but the health endpoints are never limited.
    assert_problem(client.get("/v1/documents"), 429)
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))
    assert all(client.get("/readyz").status_code == 200 for _ in range(10))


def test_each_api_key_has_its_own_budget(client_factory: ClientFactory) -> None:
    client = client_factory(api_keys=["k1", "k2"], rate_limit_per_minute=3)
    k1, k2 = {"X-API-Key": "k1"}, {"Authorization": "Bearer k2"}
    assert [_ask(client, headers=k1).status_code for _ in range(3)] == [200, 200, 200]
    assert_problem(_ask(client, headers=k1), 429)
    assert [_ask(client, headers=k2).status_code for _ in range(3)] == [200, 200, 200]
    assert_problem(_ask(client, headers=k2), 429)
    # Rejected (unauthenticated) requests are refused before the limiter and do not change that.
    assert_problem(_ask(client), 401)


def test_rate_limiter_refills_continuously() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.check("a", now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.check("a", now=0.0) == 20  # 1 token at 0.05 token/s
    assert limiter.check("b", now=0.0) is None  # clients are independent
    assert limiter.check("a", now=10.0) == 10  # half a token back
    assert limiter.check("a", now=20.0) is None  # a whole token back
    assert limiter.check("a", now=20.0) == 20
    # The bucket never holds more than per_minute tokens, however long the pause.
    assert [limiter.check("a", now=10_000.0) for _ in range(4)] == [None, None, None, 20]


def test_rate_limiter_exact_refill_at_one_per_second() -> None:
    limiter = RateLimiter(per_minute=60)
    assert all(limiter.check("c", now=0.0) is None for _ in range(60))
    assert limiter.check("c", now=0.0) == 1
    assert limiter.check("c", now=0.5) == 1  # never 0: Retry-After is at least 1
    assert limiter.check("c", now=1.0) is None
    assert limiter.check("c", now=1.0) == 1


def test_rate_limiter_zero_disables_and_memory_is_bounded() -> None:
    assert all(RateLimiter(0).check("x", now=0.0) is None for _ in range(1000))
    limiter = RateLimiter(per_minute=1, max_clients=100)
    for i in range(1000):
        assert limiter.check(f"client-{i}", now=float(i)) is None
    assert len(limiter._buckets) <= 101


# --- deadline -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["ask", "search"])
def test_slow_engine_hits_the_deadline_with_503(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    client = client_factory(request_timeout_s=0.2)
    engine = client.app.state.services.holder.engine  # type: ignore[attr-defined]
    gate = Gate(timeout_s=10.0)
    monkeypatch.setattr(engine, route, gate.wrap(getattr(engine, route)))
    try:
        response = _ask(client) if route == "ask" else client.get("/v1/search", params={"q": "visa"})
        # The answer came back while the engine call was still blocked (the gate is still closed).
        assert gate.entered.is_set() and not gate.release.is_set()
    finally:
        gate.release.set()
    body = assert_problem(response, 503, "Request took too long")
    assert "0.2 s" in body["detail"]


def test_worker_deadline_unit() -> None:
    import threading

    release = threading.Event()

    async def main() -> None:
        worker = Worker(concurrency=1, timeout_s=0.05)
        assert await worker.run(lambda: 41 + 1) == 42
        with pytest.raises(DeadlineExceededError):
            await worker.run(lambda: release.wait(10))

    try:
        anyio.run(main)
    finally:
        release.set()


# --- logging of questions --------------------------------------------------------------------------------------------
MARKER_QUESTION = "Apakah zebrafinch-7731 perlu visa kerja di Jepang?"


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # The test client's own HTTP library logs the URLs it requests; that is not the service.
    return [r for r in caplog.records if not r.name.startswith("httpx")]


def _records_mentioning(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in _server_records(caplog) if text in r.getMessage() or text in repr(r.__dict__)]


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


# --- CORS ---------------------------------------------------------------------------------------------------------------------
def test_cors_is_off_by_default(client: TestClient) -> None:
    response = _ask(client, headers={"Origin": "https://example.org"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/v1/ask", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_the_configured_origin_only(client_factory: ClientFactory) -> None:
    client = client_factory(cors_origins=["https://example.org"])
    allowed = _ask(client, headers={"Origin": "https://example.org"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://example.org"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    other = _ask(client, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/v1/ask",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://example.org"
    # Error responses carry the header too, so a browser can read the problem.
    problem = client.post("/v1/ask", json={"question": ""}, headers={"Origin": "https://example.org"})
    assert_problem(problem, 422)
    assert problem.headers["access-control-allow-origin"] == "https://example.org"


def test_cors_header_on_a_413_problem(client_factory: ClientFactory) -> None:
    client = client_factory(cors_origins=["https://example.org"])
    response = client.post(
        "/v1/ask", content=b"x" * 20_000, headers={"Origin": "https://example.org", "content-type": "application/json"}
    )
    assert_problem(response, 413)
    assert response.headers.get("access-control-allow-origin") == "https://example.org"


# --- OpenAPI ------------------------------------------------------------------------------------------------------------------
def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "post" in paths["/v1/ask"]
    assert "get" in paths["/v1/search"]
    assert "get" in paths["/v1/documents/{doc_id}"]
    assert "get" in paths["/v1/documents"]
    assert "post" in paths["/v1/admin/reload"]
    assert {"401", "422", "429", "503"} <= set(paths["/v1/ask"]["post"]["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")


def test_retry_after_is_an_integer_ceiling() -> None:
    # Sanity of the arithmetic the 429 header relies on (no float leaks into Retry-After).
    limiter = RateLimiter(per_minute=7)
    for _ in range(7):
        limiter.check("z", now=0.0)
    retry = limiter.check("z", now=0.0)
    assert isinstance(retry, int) and retry == math.ceil(60 / 7)
