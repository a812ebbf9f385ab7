"""ASGI middleware: request ids, access logs and metrics, and the request-body size limit."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.metrics import Metrics
from service.api.problems import PROBLEM_MEDIA_TYPE, problem_body

access_log = logging.getLogger("tanya.access")

#: The HTTP methods that get their own metrics label; any other is counted as "other".
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-ID``), then logs and measures it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        # Accept a caller's id only if it is short and printable (it is echoed and logged).
        request_id = incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        started_response = False

        async def send_tracking(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # Unexpected errors would otherwise reach Starlette's outermost error middleware,
            # which answers without our request id; answer the problem here instead.
            logging.getLogger("tanya.service").exception("unhandled error", extra={"request_id": request_id})
            if started_response:
                raise
            await _send_problem(
                send_with_id, 500, "Internal error", "the server failed to handle this request; it has been logged",
                scope, request_id,
            )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            # Label values must come from a fixed set: an invented method per request ("M17")
            # would otherwise add series without bound (the route is already a template).
            kind = method if method in METRIC_METHODS else "other"
            self.metrics.requests.labels(route=label, method=kind, status=str(status)).inc()
            self.metrics.latency.labels(route=label, method=kind, status=str(status)).observe(elapsed)
            extra: dict[str, Any] = {
                "request_id": request_id,
                "method": method,
                "route": label,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client": (scope.get("client") or ("?",))[0],
            }
            extra.update(scope["state"].get("log_extra", {}))
            access_log.info("request", extra=extra)


async def _send_problem(
    send: Send, status: int, title: str, detail: str, scope: Scope, request_id: str | None
) -> None:
    body = json.dumps(problem_body(status, title, detail, scope.get("path"), request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answers 413 problem+json when a request body exceeds ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, send: Send) -> None:
        await _send_problem(
            send, 413, "Request body too large", f"the request body is larger than {self.max_bytes} bytes",
            scope, scope.get("state", {}).get("request_id"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        # Buffer the (small) body so a chunked upload cannot exceed the limit either.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
