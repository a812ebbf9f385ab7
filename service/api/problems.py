"""HTTP errors and the one place where every error becomes RFC 9457 problem+json.

Domain errors (``indexer.errors``) and the service's own errors below are mapped to a
status here (``STATUS``; a test checks that every error class has an entry); validation
errors and unknown routes too. Nothing reaches a client as a traceback: an unexpected
exception is logged with its request id and answered with a generic 500 problem. The body
is built by :func:`problem_body` alone, for the handlers here and the ASGI middleware.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import (
    ConfigError,
    DocumentError,
    DocumentNotFoundError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidQueryError,
    NoDocumentsError,
    TanyaError,
)

log = logging.getLogger("tanya.service")
PROBLEM_TYPE_BASE = "https://tanya.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ServiceError(TanyaError):
    """Errors that exist only over HTTP."""


class UnauthorizedError(ServiceError):
    """Missing or wrong API key."""

    title = "Unauthorized"


class RateLimitedError(ServiceError):
    """The client sent too many requests."""

    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLargeError(ServiceError):
    """The request body is over the limit."""

    title = "Request body too large"


class DeadlineExceededError(ServiceError):
    """The answer took longer than the configured deadline."""

    title = "Request took too long"


class NotReadyError(ServiceError):
    """No index is loaded yet."""

    title = "Service not ready"


#: The status of every error class (the most specific entry in a class's MRO wins).
STATUS: dict[type[TanyaError], int] = {
    InvalidQueryError: 422,
    DocumentNotFoundError: 404,
    # Raised while indexing, never while answering; mapped so that no route could turn them into a 500.
    DocumentError: 422,
    NoDocumentsError: 422,
    UnauthorizedError: 401,
    RateLimitedError: 429,
    PayloadTooLargeError: 413,
    DeadlineExceededError: 503,
    NotReadyError: 503,
    IndexNotFoundError: 503,
    IndexMismatchError: 503,
    IndexCorruptError: 503,
    ConfigError: 500,  # the server is misconfigured: the client can do nothing about it
    ServiceError: 500,
}


def status_for(error: TanyaError) -> int:
    """HTTP status of a domain or service error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


#: The most characters of client-supplied text (a path, an id) a problem echoes.
MAX_ECHO = 120


def problem_body(
    status: int, title: str, detail: str, instance: str | None = None, request_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The RFC 9457 body: ``type``, ``title``, ``status``, ``detail``, and ``instance``/``request_id`` when known."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        # The path is the client's own text: echo a bounded prefix, not 10,000 characters of it.
        body["instance"] = instance if len(instance) <= MAX_ECHO else instance[:MAX_ECHO] + "…"
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem(
    status: int, title: str, detail: str, request: Request | None = None, headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An ``application/problem+json`` response."""
    instance = request.url.path if request is not None else None
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = problem_body(status, title, detail, instance, request_id, **extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_for(error: TanyaError, request: Request | None = None) -> JSONResponse:
    """The problem response for a Tanya error."""
    headers = {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="tanya"'
    return problem(status_for(error), error.title, error.detail, request, headers or None)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through :func:`problem`."""

    @app.exception_handler(TanyaError)
    async def _tanya(request: Request, exc: TanyaError) -> JSONResponse:
        return problem_for(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":  # its "loc" is a character offset, not a field
            return problem(422, "Invalid request", "the body is not valid JSON", request, errors=errors)
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return problem(422, "Invalid request", f"{where}: {first['msg']}", request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not decode (not UTF-8, say). The API documents
            # one status for a body it cannot use, 422, whatever the parser stumbled on.
            return problem(422, "Invalid request", "the body is not valid JSON text (UTF-8)", request)
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
        title = titles.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, title, detail, request, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error", exc_info=exc, extra={"request_id": getattr(request.state, "request_id", None)}
        )
        return problem(500, "Internal error", "the server failed to handle this request; it has been logged", request)
