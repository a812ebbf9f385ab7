"""The web page, end to end: a real index (default embedders), the real server, a real browser.

Drives Debian's Chromium (``/usr/bin/chromium``) with the ``playwright`` package's sync API;
``playwright install`` is never needed. Screenshots go to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import CORPUS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow  # builds an index with the real embedding models

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[dev]')"
)


# --------------------------------------------------------------------------- server
def _tanya_command() -> list[str]:
    script = Path(sys.executable).with_name("tanya")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TANYA_")}
    env["TANYA_INDEX_DIR"] = str(index_dir)
    env["TANYA_RELOAD_POLL_S"] = "0"
    return env


def _get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Index corpus/ with the default (real) embedders, serve it, yield the base URL."""
    root = tmp_path_factory.mktemp("browser")
    index_dir = root / "index"
    env = _clean_env(index_dir)
    built = subprocess.run(
        [*_tanya_command(), "index", str(CORPUS_DIR), "--index-dir", str(index_dir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, f"tanya index failed:\n{built.stdout}\n{built.stderr}"

    port = _free_port()
    log_path = root / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*_tanya_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tanya serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                status, _ = _get_json(f"{base}/readyz", timeout=2)
            except OSError:
                status = 0
            if status == 200:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"tanya serve not ready after {READY_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()
    # 401s from the auth test are expected network errors in the console; script errors are not.
    script_errors = [e for e in errors if "status of 401" not in e]
    assert not script_errors, f"errors in the page: {script_errors}"


def _ask(page: Any, question: str) -> None:
    """Type the question, press Enter (not the button), wait for the answer to render."""
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_selector("#answer-text", state="visible")
    page.wait_for_function("document.getElementById('results').getAttribute('aria-busy') === 'false'")


def _no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def _watch_busy(page: Any) -> None:
    """Record whether the loading state (disabled button + aria-busy) was ever shown."""
    page.evaluate(
        """() => {
          window.__sawBusy = false;
          const results = document.getElementById('results');
          const button = document.getElementById('ask-button');
          new MutationObserver(() => {
            if (results.getAttribute('aria-busy') === 'true' && button.disabled) window.__sawBusy = true;
          }).observe(results, { attributes: true, attributeFilter: ['aria-busy'] });
        }"""
    )


# --------------------------------------------------------------------------- tests
def test_answer_citations_and_document(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server)
    assert page.locator("label[for=question]").count() == 1
    assert page.locator(".chip").count() >= 4
    _watch_busy(page)
    _ask(page, "Who selects Tokutei Ginou workers?")
    assert page.evaluate("window.__sawBusy"), "no loading state (disabled button, aria-busy) while asking"
    assert page.locator("#ask-button").is_enabled()

    answer = page.locator("#answer-text").inner_text()
    assert "[1]" in answer
    assert page.locator("#answer[data-abstained=false]").count() == 1
    cards = page.locator("#cards > li.card")
    assert cards.count() >= 1
    assert page.locator("#cite-1 mark").count() >= 1
    assert page.locator("#cite-1 mark").first.inner_text().strip()
    assert page.locator("#cards > li.card", has_text="BP2MI").count() >= 1
    # Each card names the document and its source file.
    assert page.locator("#cite-1 .card-title").inner_text().strip()
    assert re.search(r"\.(md|txt|pdf|html?)\b", page.locator("#cite-1 .card-source").inner_text())

    # The [1] marker is a link that moves focus to card 1 and scrolls it into view.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.locator("#answer-text a.cite-ref[data-marker='1']").click()
    page.wait_for_function("document.activeElement && document.activeElement.id === 'cite-1'")
    page.wait_for_function(
        "(() => { const r = document.getElementById('cite-1').getBoundingClientRect();"
        " return r.top >= -1 && r.top < window.innerHeight; })()"
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "answer-desktop.png"), full_page=True)

    # "Open document" shows the whole document with the cited sentence highlighted and in view.
    opener = page.locator("#cite-1 button[data-action=open-document]")
    assert opener.inner_text().strip() in ("Open document", "Buka dokumen")
    opener.click()
    dialog = page.locator("#doc-dialog")
    page.wait_for_selector("#doc-text mark", state="visible")
    assert dialog.evaluate("d => d.open")
    mark_text = page.locator("#doc-text mark").first.inner_text().strip()
    card_mark = page.locator("#cite-1 mark").first.inner_text().strip()
    assert mark_text and mark_text[:40] == card_mark[:40]
    shown = len(page.locator("#doc-text").text_content() or "")
    passage = len(page.locator("#cite-1 .passage-text").text_content() or "")
    assert shown > passage, "the dialog should show the full document, not only the passage"
    page.wait_for_function(
        "(() => { const m = document.querySelector('#doc-text mark').getBoundingClientRect();"
        " const b = document.getElementById('doc-body').getBoundingClientRect();"
        " return m.bottom > b.top && m.top < b.bottom; })()"
    )
    page.screenshot(path=str(artifacts / "document-desktop.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("!document.getElementById('doc-dialog').open")
    assert page.evaluate("document.activeElement.dataset.action") == "open-document"


def test_abstained_answer(server: str, page: Any, artifacts: Path) -> None:
    page.goto(server)
    _ask(page, "What is the capital of France?")
    assert page.locator("#answer[data-abstained=true]").count() == 1
    assert page.locator(".answer-abstained").is_visible()
    assert "do not answer" in page.locator("#answer-text").inner_text()
    assert page.locator("#answer-text a.cite-ref").count() == 0
    assert page.locator("#cards > li.card-abstained").count() >= 1
    assert "closest" in (page.locator("#citations-title").text_content() or "").lower()
    page.screenshot(path=str(artifacts / "abstained.png"), full_page=True)


def test_phone_layout(server: str, browser: Any, artifacts: Path) -> None:
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT_MS)
        page.goto(server)
        assert _no_horizontal_overflow(page), "the empty page scrolls sideways at 360 px"
        # A chip asks its question (Indonesian), then a typed English one.
        page.locator(".chip", has_text="Berapa target").click()
        page.wait_for_selector("#answer-text", state="visible")
        assert "[1]" in page.locator("#answer-text").inner_text()
        _ask(page, "Who selects Tokutei Ginou workers?")
        assert _no_horizontal_overflow(page), "the answer scrolls sideways at 360 px"
        boxes = [page.locator(f"#cite-{n}").bounding_box() for n in (1, 2)]
        if all(boxes):
            assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1, "cards should stack on a phone"
        page.screenshot(path=str(artifacts / "answer-phone.png"), full_page=True)
        page.locator("#cite-1 button[data-action=open-document]").click()
        page.wait_for_selector("#doc-text mark", state="visible")
        assert _no_horizontal_overflow(page)
        page.screenshot(path=str(artifacts / "document-phone.png"))
        page.keyboard.press("Escape")
        page.wait_for_function("!document.getElementById('doc-dialog').open")
    finally:
        context.close()


def test_api_key_error_state_and_escaping(server: str, page: Any) -> None:
    """401 shows a key field, the key goes to sessionStorage and the retry sends it; text is never HTML."""
    hostile = '<img src=x onerror="window.__xss=1"> & <b>bold</b>'
    seen: list[str | None] = []

    def handle(route: Any) -> None:
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth != "Bearer s3cret":
            route.fulfill(
                status=401,
                content_type="application/problem+json",
                body=json.dumps(
                    {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "an API key is required"}
                ),
            )
            return
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                {
                    "question": "q",
                    "answer": f"{hostile} [1]",
                    "abstained": False,
                    "confidence": 0.5,
                    "lang": "en",
                    "mode": "hybrid",
                    "timings_ms": {"total": 12.0},
                    "citations": [
                        {
                            "marker": 1,
                            "doc_id": "x",
                            "title": hostile,
                            "source": "x.txt",
                            "chunk_id": "x:0",
                            "text": f"Before. {hostile} After.",
                            "start": 10,
                            "end": 10 + len(f"Before. {hostile} After."),
                            "highlight": {"start": 18, "end": 18 + len(hostile)},
                            "score": 0.1,
                            "lang": "en",
                            "section": "<i>s</i>",
                            "ranks": {"bm25": 1},
                        }
                    ],
                }
            ),
        )

    page.route("**/v1/ask", handle)
    page.goto(server)
    # An empty question is refused on the page, without a request.
    page.click("#ask-button")
    assert page.locator("#question-error").is_visible()
    assert seen == []

    page.fill("#question", "Who selects Tokutei Ginou workers?")
    page.click("#ask-button")
    page.wait_for_selector("#auth-panel", state="visible")
    message = page.locator("#auth-message").inner_text()
    assert "Unauthorized" in message and "401" in message and "an API key is required" in message
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.fill("#api-key", "s3cret")
    page.press("#api-key", "Enter")
    page.wait_for_selector("#answer-text", state="visible")
    assert seen[-1] == "Bearer s3cret"
    assert page.evaluate("sessionStorage.getItem('tanya.apiKey')") == "s3cret"
    assert page.locator("#auth-panel").is_hidden()
    assert page.locator("#error").is_hidden()
    # Hostile text is shown as text: no element was created from it and no script ran.
    assert page.locator("#results img, #results b, #results i").count() == 0
    assert page.evaluate("window.__xss") is None
    assert "<img src=x" in page.locator("#answer-text").inner_text()
    assert "<img src=x" in page.locator("#cite-1 mark").inner_text()
    assert "<b>bold</b>" in page.locator("#cite-1 .card-title").inner_text()
