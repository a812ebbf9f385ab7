"""HTTP routes. Handlers stay thin: validation is in the schemas, work in the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from indexer.documents import DOC_ID_PATTERN
from indexer.errors import DocumentNotFoundError
from service.api.deps import EngineDep, Protected, ServicesDep
from service.api.problems import MAX_ECHO, PROBLEM_MEDIA_TYPE
from service.api.schemas import AskRequest, DocumentList, DocumentOut, DocumentSummary, Health, ProblemOut, ReloadOut
from service.qa.types import MAX_QUESTION_CHARS, TOP_K_MAX, TOP_K_MIN, Answer, Mode, SearchResult

STATIC_DIR = Path(__file__).parent / "static"
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": description}
    for status, description in {
        401: "Missing or invalid API key",
        413: "Request body too large",
        422: "Invalid request",
        429: "Rate limited (see Retry-After)",
        503: "No index loaded, or the deadline was exceeded",
    }.items()
}

open_router = APIRouter()
api = APIRouter(prefix="/v1", dependencies=Protected, responses=_PROBLEMS)


@open_router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@open_router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> Health:
    """Liveness: the process is up."""
    return Health(status="ok")


@open_router.get("/readyz", response_model=Health, tags=["health"], responses={503: {"model": Health}})
def readyz(services: ServicesDep, response: Response) -> Health:
    """Readiness: 200 only when an index is loaded."""
    engine = services.holder.engine
    if engine is None:
        response.status_code = 503
        return Health(status="not ready", detail=services.holder.error)
    return Health(
        status="ready",
        index_build=engine.index.build_id,
        documents=len(engine.index.documents),
        chunks=engine.index.live_chunks,
        detail=services.holder.last_reload_error,
    )


# HEAD for load balancers and uptime probes that use it; kept out of the schema so that each
# documented operation keeps one id. Same status as the GET, no body.
@open_router.head("/healthz", include_in_schema=False)
def healthz_head() -> Response:
    """Liveness, headers only."""
    return Response(status_code=200)


@open_router.head("/readyz", include_in_schema=False)
def readyz_head(services: ServicesDep) -> Response:
    """Readiness, headers only: 200 with an index loaded, else 503."""
    return Response(status_code=200 if services.holder.engine is not None else 503)


@open_router.get(
    "/metrics", tags=["health"], response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics."""
    services.metrics.observe_index(services.holder.engine)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@api.post("/ask", response_model=Answer, tags=["answers"])
async def ask(body: AskRequest, request: Request, services: ServicesDep, engine: EngineDep) -> Answer:
    """Answer a question with cited sentences from the sources, or abstain."""
    if services.http.log_questions:
        request.state.log_extra = {"question": body.question}
    answer = await services.worker.run(lambda: engine.ask(body.question, top_k=body.top_k, mode=body.mode))
    services.metrics.observe_answer(answer)
    request.state.log_extra = {**getattr(request.state, "log_extra", {}), "abstained": answer.abstained}
    return answer


@api.get("/search", response_model=SearchResult, tags=["answers"])
async def search(
    request: Request,
    services: ServicesDep,
    engine: EngineDep,
    q: str = Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="Search query"),
    top_k: int | None = Query(default=None, ge=TOP_K_MIN, le=TOP_K_MAX),
    mode: Mode | None = None,
) -> SearchResult:
    """Passages only, best first."""
    if services.http.log_questions:
        request.state.log_extra = {"question": q}
    passages = await services.worker.run(lambda: engine.search(q, top_k=top_k, mode=mode))
    return SearchResult(query=q, mode=mode or engine.config.retrieval.mode, results=passages)


@api.get("/documents", response_model=DocumentList, tags=["documents"])
def documents(engine: EngineDep) -> DocumentList:
    """Every indexed document (id, title, language, source)."""
    return DocumentList(
        documents=[
            DocumentSummary(
                doc_id=d.doc_id, title=d.title, lang=d.lang, languages=list(d.languages), source=d.source,
                kind=d.kind, date=d.date,
            )
            for d in engine.index.document_summaries()
        ]
    )


@api.get("/documents/{doc_id}", response_model=DocumentOut, tags=["documents"], responses={404: {"model": ProblemOut, "description": "Unknown document"}})
def document(doc_id: str, engine: EngineDep) -> DocumentOut:
    """A document's metadata and the full text that citation offsets refer to."""
    # Ids are slugs; anything else (dots, slashes, encoded or not) is simply unknown. The
    # lookup is in memory, so no id can make the service read a file.
    if not DOC_ID_PATTERN.match(doc_id):
        shown = doc_id if len(doc_id) <= MAX_ECHO else doc_id[:MAX_ECHO] + "…"
        raise DocumentNotFoundError(f"no document {shown!r}")
    d = engine.document(doc_id)
    return DocumentOut(
        doc_id=d.doc_id, title=d.title, lang=d.lang, languages=list(d.languages), source=d.source, kind=d.kind,
        date=d.date, description=d.description, sha256=d.sha256, format=d.format, text=d.text,
    )


@api.post("/admin/reload", response_model=ReloadOut, tags=["admin"])
async def reload(services: ServicesDep) -> ReloadOut:
    """Load the index build now on disk; on failure the current one keeps serving."""
    from anyio import to_thread

    result = await to_thread.run_sync(services.holder.load)
    services.metrics.reloads.labels(result="ok" if result.reloaded else "failed").inc()
    return ReloadOut(
        reloaded=result.reloaded, build_id=result.build_id, previous_build_id=result.previous_build_id,
        error=result.error,
    )
