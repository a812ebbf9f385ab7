"""The OpenAPI document and the ``/docs`` page, saying exactly what the code enforces.

FastAPI's defaults describe error responses as ``application/json`` and load Swagger UI from
a CDN (which fails offline). Here every 4xx/5xx response is ``application/problem+json``
with the :class:`ProblemOut` schema, the API-key schemes are declared when keys are
configured, and Swagger UI's files are served from the ``fastapi-swagger`` package.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.problems import PROBLEM_MEDIA_TYPE

DOCS_ASSETS = "/docs-assets"
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every error response's body declared as ``application/problem+json`` only."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                body = str(content.get("application/json", ""))
                if status[:1] in ("4", "5") and ("ProblemOut" in body or "HTTPValidationError" in body):
                    del content["application/json"]
                    content[PROBLEM_MEDIA_TYPE] = {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install_openapi(app: FastAPI, keys_required: bool) -> None:
    """Replace ``app.openapi`` with the corrected document (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            problem_responses(schema)
            if keys_required:
                schema.setdefault("components", {})["securitySchemes"] = _SECURITY_SCHEMES
                for path, operations in schema["paths"].items():
                    if path.startswith("/v1/"):
                        for operation in operations.values():
                            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from files shipped in a package, so it works with no network."""
    assets = files("fastapi_swagger") / "resources"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
