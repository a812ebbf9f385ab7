"""CORS (off by default, one configured origin, on problems too) and the OpenAPI document."""

from __future__ import annotations

import re

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


# --- the document says what the code enforces (issue 10, small items) -------------------------------------------
def test_docs_page_loads_only_local_assets(client: TestClient) -> None:
    """/docs loaded Swagger UI from a CDN, which fails offline."""
    page = client.get("/docs").text
    assert "http://" not in page and "https://" not in page
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page):
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN; not offered


def test_error_responses_are_documented_as_problem_json(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if path == "/readyz":  # its 503 is the readiness body, by design
                    continue
                if status[0] in "45":
                    assert set(content) == {"application/problem+json"}, (path, method, status, content)
                    assert content["application/problem+json"]["schema"]["$ref"].endswith("/ProblemOut")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    question = spec["components"]["schemas"]["AskRequest"]["properties"]["question"]
    assert question["minLength"] == 1 and question["maxLength"] == 1000
    assert "securitySchemes" not in spec.get("components", {})


def test_security_schemes_are_declared_when_keys_are_configured(client_factory: ClientFactory) -> None:
    spec = client_factory(api_keys=["k1"]).get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert spec["paths"]["/v1/ask"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_an_unparseable_body_is_the_documented_422(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    body = assert_problem(response, 422, "Invalid request")
    assert body["detail"] == "the body is not valid JSON"
    # Bytes that are not UTF-8 were FastAPI's undocumented 400 (found by Schemathesis).
    undecodable = client.post("/v1/ask", content=b"\xff\xfe\xfa", headers={"content-type": "application/json"})
    assert "UTF-8" in assert_problem(undecodable, 422, "Invalid request")["detail"]
