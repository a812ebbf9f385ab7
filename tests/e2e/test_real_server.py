"""The real server: ``python -m service.cli serve`` in a subprocess, over real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import REPO_ROOT
from tests.support.service import QUESTION_EN, assert_problem, build_into

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.stderr().splitlines():
            line = line.strip()
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self) -> int:
        """SIGTERM, then the exit status (bounded; killed if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            pytest.fail(f"the server did not stop within {STOP_TIMEOUT_S} s of SIGTERM; stderr:\n{self.stderr()}")


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode} before it was ready; stderr:\n{server.stderr()}")
        try:
            response = httpx.get(server.base_url + "/readyz", timeout=1.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    pytest.fail(f"the server was not ready within {START_TIMEOUT_S} s (last: {last}); stderr:\n{server.stderr()}")


@contextlib.contextmanager
def start_server(tmp_path: Path, **settings: str) -> Iterator[Server]:
    """``tanya serve`` over the fake-embedder index, with extra ``TANYA_*`` settings; killed at the end."""
    index_dir = tmp_path / "index"
    build_into(index_dir)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TANYA_")}
    env.update(
        {
            "TANYA_INDEX_DIR": str(index_dir),
            "TANYA_EMBEDDERS": "fake",
            "TANYA_RERANKER": "off",
            "TANYA_ABSTAIN_THRESHOLD": "0",
            "TANYA_RELOAD_POLL_S": "0",
            "PYTHONPATH": os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p),
            "PYTHONUNBUFFERED": "1",
            **{f"TANYA_{key.upper()}": value for key, value in settings.items()},
        }
    )
    stderr_path = tmp_path / "server.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,  # no .env is read from the developer's checkout
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    handle = Server(process, f"http://127.0.0.1:{port}", stderr_path)
    try:
        _wait_ready(handle)
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with start_server(tmp_path) as handle:
        yield handle


def _graceful(server: Server) -> int:
    status = server.stop()
    messages = [line.get("msg") for line in server.json_lines()]
    assert "Application shutdown complete." in messages, server.stderr()
    return status


def test_real_server_answers_logs_json_and_shuts_down_on_sigterm(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        response = http.post("/v1/ask", json={"question": QUESTION_EN}, headers={"X-Request-ID": "e2e-ask-1"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["citations"] and not answer["abstained"]
        assert response.headers["x-request-id"] == "e2e-ask-1"
        citation = answer["citations"][0]
        text = http.get(f"/v1/documents/{citation['doc_id']}").json()["text"]
        assert text[citation["start"] : citation["end"]] == citation["text"]
        # A streamed (chunked) body over the limit is refused over real HTTP too.
        big = json.dumps({"question": "a" * 20_000}).encode()
        chunked = http.post(
            "/v1/ask", content=iter([big[i : i + 4096] for i in range(0, len(big), 4096)]),
            headers={"content-type": "application/json"},
        )
        assert_problem(chunked, 413)
        assert_problem(http.post("/v1/ask", json={"question": ""}), 422)

    status = _graceful(server)
    lines = server.json_lines()
    assert lines, server.stderr()
    access = [line for line in lines if line.get("logger") == "tanya.access"]
    ask_lines = [line for line in access if line.get("request_id") == "e2e-ask-1"]
    assert len(ask_lines) == 1, server.stderr()
    assert ask_lines[0]["route"] == "/v1/ask" and ask_lines[0]["status"] == 200 and ask_lines[0]["method"] == "POST"
    assert all(line.get("request_id") for line in access)
    assert {413, 422} <= {line["status"] for line in access}
    assert QUESTION_EN not in server.stderr()  # questions are not logged by default
    # Graceful: the process ends by itself after SIGTERM (uvicorn re-raises the signal after a clean
    # shutdown, so the status is 0 or -SIGTERM; see the strict test below).
    assert status in (0, -signal.SIGTERM), server.stderr()


def test_real_server_exits_0_on_sigterm(server: Server) -> None:
    assert httpx.get(server.base_url + "/healthz", timeout=5.0).status_code == 200
    assert _graceful(server) == 0


# --- slow and idle clients (issue 10, defect 3) ------------------------------------------------------------
def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=STOP_TIMEOUT_S)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (reads EOF) before STOP_TIMEOUT_S; a reset counts as closed."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_silent_and_trickling_clients_are_disconnected(tmp_path: Path) -> None:
    """A connection that sent nothing, or one byte every so often, was held open forever."""
    with start_server(tmp_path, request_read_timeout_s="1") as server:
        silent = _connect(server)
        trickling = _connect(server)
        head = b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sent = 0
        closed = False
        try:
            for byte in head:  # one byte every 0.25 s: the whole head would take 18 s
                trickling.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        assert closed or _closed_by_server(trickling), "the trickling client was never disconnected"
        assert sent < len(head)
        assert _closed_by_server(silent), "the silent client was never disconnected"
        # A body that never finishes is bounded the same way.
        slow_body = _connect(server)
        slow_body.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"question": ')
        assert _closed_by_server(slow_body)
        # Ordinary clients are unaffected.
        assert httpx.post(server.base_url + "/v1/ask", json={"question": QUESTION_EN}, timeout=10).status_code == 200
        for sock in (silent, trickling, slow_body):
            sock.close()


def test_idle_sockets_cannot_take_the_service_down(tmp_path: Path) -> None:
    """130 idle sockets made /healthz time out; now past TANYA_MAX_CONNECTIONS new requests get a quick 503,
    and the idle ones are dropped at the read deadline."""
    with start_server(tmp_path, request_read_timeout_s="1", max_connections="8") as server:
        idle = [_connect(server) for _ in range(12)]
        try:
            over = httpx.get(server.base_url + "/healthz", timeout=STOP_TIMEOUT_S)
            assert over.status_code == 503
            assert all(_closed_by_server(sock) for sock in idle)
            assert httpx.get(server.base_url + "/healthz", timeout=STOP_TIMEOUT_S).status_code == 200
        finally:
            for sock in idle:
                sock.close()


# --- the contract, fuzzed (issue 10; `make stress` runs the same with ≥1,000 cases per configuration) ------------
#: Schemathesis checks, all but "positive data acceptance": the API refuses some schema-valid
#: questions on purpose ("???" has no words; 256 encoder tokens at most), which JSON Schema cannot say.
SCHEMA_CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


@pytest.mark.parametrize("keys", [False, True], ids=["open", "with-api-key"])
def test_schemathesis_finds_no_server_error_or_contract_violation(tmp_path: Path, keys: bool) -> None:
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    settings = {"api_keys": "ci-key", "auth_failures_per_minute": "0"} if keys else {}
    # One worker: with two threads, hypothesis's ast.parse (describing a lambda) hit CPython 3.11.7's
    # spurious "AST constructor recursion depth mismatch" SystemError (python/cpython#106905) once in
    # a fresh-clone run, a runtime error inside schemathesis, not a finding about this server.
    with start_server(tmp_path, **settings) as server:
        run = subprocess.run(
            [str(st), "run", f"{server.base_url}/openapi.json", *SCHEMA_CHECKS, "--max-examples", "15",
             "--workers", "1", "--suppress-health-check", "all", "--seed", "13", "--phases", "examples,coverage,fuzzing",
             *(["-H", "X-API-Key: ci-key"] if keys else [])],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
