"""Helpers and fixtures for the HTTP service tests (``tests/service/api``, ``tests/e2e``, ``tests/architecture``).

Helpers are imported directly (``from tests.support.service import ...``); the fixtures at
the bottom are re-exported by the ``conftest.py`` of the rooms that use them.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.embedders.fake import FakeEmbedder
from indexer.pipeline import IndexReport
from service.api.app import create_app
from service.config import Settings
from tests.support.helpers import CORPUS_DIR, make_settings, run_build

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://tanya.example/problems/"
QUESTION_EN = "Who selects Tokutei Ginou workers?"
QUESTION_ID = "Berapa target peserta magang ke Jepang?"

#: ``client_factory``'s type: ``(index_dir=None, raise_server_exceptions=True, **settings) -> TestClient``.
ClientFactory = Callable[..., TestClient]


def service_settings(index_dir: Path, **overrides: Any) -> Settings:
    """Explicit settings for a test app: fake embedder, no index watcher unless asked."""
    values: dict[str, Any] = {"reload_poll_s": 0}
    values.update(overrides)
    return make_settings(index_dir, **values)


def post_ask(client: TestClient, question: str = QUESTION_EN, **kwargs: Any) -> Any:
    """``POST /v1/ask`` with ``{"question": question}`` (``kwargs`` go to the client, e.g. headers)."""
    return client.post("/v1/ask", json={"question": question}, **kwargs)


def build_into(index_dir: Path, corpus: Path | None = None) -> IndexReport:
    """Build (or rebuild, incrementally) the fake-embedder index at ``index_dir``."""
    return run_build([corpus or CORPUS_DIR], make_settings(index_dir), [FakeEmbedder()])


def assert_problem(response: Any, status: int, title: str | None = None) -> dict[str, Any]:
    """``response`` (an httpx or TestClient response) is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE, response.headers
    body = response.json()
    assert isinstance(body, dict), body
    for key in ("type", "title", "status", "detail"):
        assert key in body, f"problem without {key!r}: {body}"
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"].startswith(PROBLEM_TYPE_BASE), body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    if title is not None:
        assert body["title"] == title, body
    # The problem names the request it answers, as the header does.
    assert "x-request-id" in response.headers
    assert body.get("request_id") == response.headers["x-request-id"], body
    # Never a traceback.
    assert "Traceback" not in response.text
    return body


class Gate:
    """Makes an engine method block until released (bounded), to hold a request in flight."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.timeout_s = timeout_s
        self.calls: list[Any] = []

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(getattr(method, "__self__", None))
            self.entered.set()
            self.release.wait(self.timeout_s)
            return method(*args, **kwargs)

        return gated


# --- "nothing read": record every file the process opens (audit hook, installed once) ----------
_OPENED: list[str] | None = None
_HOOK_INSTALLED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED is not None and args:
        _OPENED.append(str(args[0]))


@contextlib.contextmanager
def files_opened() -> Iterator[list[str]]:
    """The paths of every file opened inside the block (by any thread)."""
    global _OPENED, _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit)
        _HOOK_INSTALLED = True
    opened: list[str] = []
    _OPENED = opened
    try:
        yield opened
    finally:
        _OPENED = None


# --- fixtures (re-exported by the rooms' conftest.py) ------------------------------------------------------
@pytest.fixture(scope="session")
def service_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus indexed once with the fake embedder; read-only for the tests that share it."""
    index_dir = tmp_path_factory.mktemp("service-index") / "index"
    build_into(index_dir)
    return index_dir


@pytest.fixture
def client_factory(service_index: Path) -> Iterator[Callable[..., TestClient]]:
    """``client_factory(index_dir=None, raise_server_exceptions=True, **settings)``: a started TestClient.

    The app's lifespan runs (index loaded) when the client is made; every client is closed
    (lifespan shutdown) at the end of the test. ``index_dir`` defaults to the shared index.
    """
    with contextlib.ExitStack() as stack:

        def make(index_dir: Path | None = None, raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
            settings = service_settings(index_dir or service_index, **overrides)
            client = TestClient(create_app(settings), raise_server_exceptions=raise_server_exceptions)
            return stack.enter_context(client)

        yield make


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    """A started client over the shared index with default service settings (answers never abstain)."""
    return client_factory(abstain_threshold=0.0)
