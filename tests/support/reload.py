"""Helpers of the hot-reload tests (``tests/service/api/test_reload*.py``).

The tests import them under their former private names (``add_fact as _add_fact``), so the
test bodies read as they always did.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import METI
from tests.support.service import build_into

NEW_FACT = "The zorblax quota for METI interns is exactly 4242 people per year."
NEW_QUESTION = "What is the zorblax quota for METI interns?"
WAIT_S = 10.0


def add_fact(corpus: Path) -> None:
    path = corpus / f"{METI}.txt"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + NEW_FACT + "\n", encoding="utf-8")


def point_index_at(index_dir: Path, target: Path) -> None:
    """Atomically make the index link point at ``target`` (as ``tanya index`` does)."""
    temporary = index_dir.parent / f".link-{uuid.uuid4().hex[:8]}"
    os.symlink(target, temporary)
    os.replace(temporary, index_dir)


def bad_build(root: Path, manifest: str | None) -> Path:
    """A build directory whose manifest is ``manifest`` (None: no manifest at all)."""
    target = root / f"bad-build-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True)
    if manifest is not None:
        (target / "manifest.json").write_text(manifest, encoding="utf-8")
    return target


def readyz(client: TestClient) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until true (bounded); fail saying what did not happen."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


def reloads(client: TestClient, result: str) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tanya_index_reloads_total" and s.labels.get("result") == result
    )


def cited_texts(client: TestClient, question: str = NEW_QUESTION) -> list[str]:
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return [c["text"] for c in response.json()["citations"]]


def break_missing_chunks(index_dir: Path, corpus: Path) -> None:
    build_into(index_dir, corpus)
    (index_dir.resolve() / "records.sqlite").unlink()
