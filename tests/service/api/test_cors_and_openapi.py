"""CORS (off by default, one configured origin, on problems too) and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.service import ClientFactory, assert_problem
from tests.support.service import post_ask as _ask


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
