"""``create_app(settings)``: the FastAPI application.

The lifespan loads the encoders and the index once, then watches the index link and hot-
reloads when ``tanya index`` swaps in a new build. Routes reach the engine only through
the typed dependencies in ``service.api.deps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service.api.deps import Services
from service.api.holder import EngineHolder
from service.api.limits import RateLimiter, Worker
from service.api.metrics import Metrics
from service.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from service.api.openapi import install_docs, install_openapi
from service.api.problems import install_error_handlers
from service.api.routes import STATIC_DIR, api, open_router
from service.config import Settings

log = logging.getLogger("tanya.service")


async def _watch_index(services: Services) -> None:
    """Reload when the index link points at a new build (e.g. after ``tanya index``)."""
    interval = services.http.reload_poll_s
    while True:
        await asyncio.sleep(interval)
        try:
            if services.holder.changed_on_disk():
                result = await to_thread.run_sync(services.holder.load)
                services.metrics.reloads.labels(result="ok" if result.reloaded else "failed").inc()
        except Exception:  # the watcher must outlive any one bad build
            log.exception("index watcher error")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; the index is loaded when the app starts (lifespan).

    ``settings`` is split here into the frozen groups the parts need; nothing below reads it.
    """
    http = settings.http
    metrics = Metrics()
    services = Services(
        http=http,
        holder=EngineHolder(settings.engine),
        metrics=metrics,
        worker=Worker(http.max_concurrency, http.request_timeout_s),
        rate_limiter=RateLimiter(http.rate_limit_per_minute),
        auth_failures=RateLimiter(http.auth_failures_per_minute),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(services.holder.load)
        metrics.observe_index(services.holder.engine)
        watcher = asyncio.create_task(_watch_index(services)) if http.reload_poll_s > 0 else None
        try:
            yield
        finally:
            services.worker.close()
            if watcher:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    app = FastAPI(
        title="Tanya",
        summary="Cited answers about Indonesian workers going to Japan (Tokutei Ginou, magang, METI internships)",
        version="0.1.0",
        lifespan=lifespan,
        # /docs is served from local files (install_docs); ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(open_router)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_docs(app)
    install_openapi(app, keys_required=bool(http.api_keys))
    # Starlette wraps in reverse order of adding: RequestContext (outermost) → CORS → BodyLimit,
    # so a 413 still carries CORS headers and every response gets a request id.
    app.add_middleware(BodyLimitMiddleware, max_bytes=http.max_body_bytes)
    if http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(http.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # Outermost, so that every response (413 and errors included) gets a request id and is measured.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
