"""POST /v1/ask through FastAPI's TestClient (lifespan included), with the fake embedder: answers,
citations, request ids and body validation.

Every error is checked to be RFC 9457 problem+json with type, title, status and detail.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.contract import ANSWER_KEYS, CITATION_KEYS
from tests.support.helpers import KEMNAKER
from tests.support.service import QUESTION_EN, QUESTION_ID, assert_problem
from tests.support.service import post_ask as _ask


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
        # Found by `make stress` (Schemathesis): pydantic's lax mode read these as integers.
        pytest.param({"question": QUESTION_EN, "top_k": True}, id="top_k-true"),
        pytest.param({"question": QUESTION_EN, "top_k": "3"}, id="top_k-string-number"),
        pytest.param({"question": QUESTION_EN, "top_k": 2.5}, id="top_k-fraction"),
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
