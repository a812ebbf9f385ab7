"""What guards the API: the body size limit, API keys, the rate limit and the request deadline."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, MutableMapping
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from service.api.limits import RateLimiter, Worker
from service.api.middleware import BodyLimitMiddleware
from service.api.problems import DeadlineExceededError
from tests.support.service import ClientFactory, Gate, assert_problem
from tests.support.service import post_ask as _ask


# --- body size limit ---------------------------------------------------------------------------------
def _body_of(size: int) -> bytes:
    body = json.dumps({"question": "a" * (size - len(json.dumps({"question": ""})))}).encode()
    assert len(body) == size
    return body


def test_body_over_16_kib_is_413_with_content_length(client: TestClient) -> None:
    response = client.post("/v1/ask", content=_body_of(16 * 1024 + 1), headers={"content-type": "application/json"})
    body = assert_problem(response, 413, "Request body too large")
    assert body["instance"] == "/v1/ask"


def test_body_of_exactly_16_kib_is_not_413(client: TestClient) -> None:
    # Allowed through the size limit; then refused as an over-long question.
    response = client.post("/v1/ask", content=_body_of(16 * 1024), headers={"content-type": "application/json"})
    assert_problem(response, 422)


def test_body_over_16_kib_is_413_when_streamed_without_content_length(client: TestClient) -> None:
    payload = _body_of(20_000)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413, "Request body too large")


def test_body_limit_middleware_counts_every_chunk_and_replays_small_bodies() -> None:
    """Direct ASGI: many small chunks summing over the limit are refused before the app runs."""
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        reached.append(message["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(parts: list[bytes]) -> list[dict[str, Any]]:
        queue = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": "POST", "path": "/v1/ask", "headers": [], "state": {}}
        await BodyLimitMiddleware(app, max_bytes=1000)(scope, receive, send)
        return sent

    refused = anyio.run(call, [b"x" * 300] * 4)
    assert refused[0]["status"] == 413
    assert dict(refused[0]["headers"])[b"content-type"] == b"application/problem+json"
    assert json.loads(refused[1]["body"])["status"] == 413
    assert reached == []  # the app never saw the body

    accepted = anyio.run(call, [b"a" * 250, b"b" * 250, b"c" * 500])
    assert accepted[0]["status"] == 204
    assert reached == [b"a" * 250 + b"b" * 250 + b"c" * 500]


# --- auth -------------------------------------------------------------------------------------------------------------------
def test_api_keys_guard_v1_but_not_health_or_page(client_factory: ClientFactory) -> None:
    client = client_factory(api_keys=["k1", "k2"])
    missing = _ask(client)
    assert_problem(missing, 401, "Unauthorized")
    assert missing.headers["www-authenticate"].lower().startswith("bearer")
    wrong = _ask(client, headers={"Authorization": "Bearer nope"})
    assert_problem(wrong, 401)
    assert "www-authenticate" in wrong.headers
    assert_problem(_ask(client, headers={"X-API-Key": "k3"}), 401)
    assert_problem(_ask(client, headers={"Authorization": "Basic azE6"}), 401)
    assert_problem(client.get("/v1/search", params={"q": "visa"}), 401)
    assert_problem(client.get("/v1/documents"), 401)
    assert_problem(client.post("/v1/admin/reload"), 401)

    assert _ask(client, headers={"Authorization": "Bearer k2"}).status_code == 200
    assert _ask(client, headers={"authorization": "bearer k2"}).status_code == 200
    assert _ask(client, headers={"X-API-Key": "k1"}).status_code == 200
    assert client.get("/v1/documents", headers={"X-API-Key": "k2"}).status_code == 200
    reload = client.post("/v1/admin/reload", headers={"X-API-Key": "k1"})
    assert reload.status_code == 200 and reload.json()["reloaded"] is True

    for open_path in ("/healthz", "/readyz", "/", "/openapi.json", "/docs"):
        assert client.get(open_path).status_code == 200, open_path


def test_api_keys_never_reach_the_logs(client_factory: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    keys = ["key-ALPHA-7f3e9c", "key-BETA-51d0aa"]
    wrong = "key-WRONG-c0ffee"
    client = client_factory(api_keys=keys)
    caplog.set_level(logging.DEBUG)
    statuses = [
        _ask(client, headers={"Authorization": f"Bearer {keys[0]}"}).status_code,
        _ask(client, headers={"X-API-Key": keys[1]}).status_code,
        _ask(client, headers={"X-API-Key": wrong}).status_code,
        client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {keys[1]}"}).status_code,
        client.get("/v1/search", params={"q": "visa"}, headers={"X-API-Key": keys[0]}).status_code,
    ]
    assert statuses == [200, 200, 401, 200, 200]
    access = [r for r in caplog.records if r.name == "tanya.access"]
    assert len(access) == len(statuses)
    for record in caplog.records:
        flat = record.getMessage() + repr(record.__dict__)
        for secret in [*keys, wrong]:
            assert secret not in flat, record.__dict__
    for secret in [*keys, wrong]:
        assert secret not in caplog.text


def test_failed_api_keys_are_limited_per_address(client_factory: ClientFactory) -> None:
    """Issue 10, defect 8: wrong keys never reached the rate limiter, so guessing was unlimited."""
    client = client_factory(api_keys=["right-key"], auth_failures_per_minute=5)
    guesses = [_ask(client, headers={"X-API-Key": f"guess-{i}"}).status_code for i in range(5)]
    assert guesses == [401] * 5
    limited = _ask(client, headers={"X-API-Key": "guess-5"})
    body = assert_problem(limited, 429, "Too many requests")
    assert limited.headers["retry-after"].isdigit() and "failed API key" in body["detail"]
    # Past the limit even the right key waits: otherwise the guesser learns when a guess is right.
    assert_problem(_ask(client, headers={"X-API-Key": "right-key"}), 429)
    assert_problem(_ask(client), 429)  # a missing key counts as a failure too
    assert client.get("/healthz").status_code == 200


def test_a_wrong_credential_next_to_a_right_one_is_401(client_factory: ClientFactory) -> None:
    """Found by Schemathesis: ``Authorization: <garbage>`` with a valid ``X-API-Key`` was accepted."""
    client = client_factory(api_keys=["right-key"])
    for headers in (
        {"Authorization": "Basic cmlnaHQta2V5", "X-API-Key": "right-key"},
        {"Authorization": "Bearer wrong", "X-API-Key": "right-key"},
        {"Authorization": "Bearer right-key", "X-API-Key": "wrong"},
    ):
        assert_problem(_ask(client, headers=headers), 401)
    both = {"Authorization": "Bearer right-key", "X-API-Key": "right-key"}
    assert _ask(client, headers=both).status_code == 200


def test_successful_keys_spend_no_failure_budget(client_factory: ClientFactory) -> None:
    client = client_factory(api_keys=["right-key"], auth_failures_per_minute=2)
    assert all(_ask(client, headers={"X-API-Key": "right-key"}).status_code == 200 for _ in range(6))
    assert [_ask(client, headers={"X-API-Key": "wrong"}).status_code for _ in range(3)] == [401, 401, 429]


def test_rate_limiter_blocked_spends_nothing() -> None:
    limiter = RateLimiter(per_minute=2)
    assert limiter.blocked("a", now=0.0) is None
    assert limiter.check("a", now=0.0) is None and limiter.check("a", now=0.0) is None
    assert limiter.blocked("a", now=0.0) == 30 and limiter.blocked("a", now=30.0) is None
    assert limiter.check("a", now=30.0) is None and limiter.blocked("a", now=30.0) == 30
    assert RateLimiter(per_minute=0).blocked("a") is None


# --- rate limit -------------------------------------------------------------------------------------------------------------
def test_fourth_request_in_a_minute_is_429_with_retry_after(client_factory: ClientFactory) -> None:
    client = client_factory(rate_limit_per_minute=3)
    assert [_ask(client).status_code for _ in range(3)] == [200, 200, 200]
    limited = _ask(client)
    body = assert_problem(limited, 429, "Too many requests")
    retry_after = limited.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 20  # one token per 20 s at 3/min
    assert retry_after in body["detail"]
    # The limit is per client across /v1, but the health endpoints are never limited.
    assert_problem(client.get("/v1/documents"), 429)
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))
    assert all(client.get("/readyz").status_code == 200 for _ in range(10))


def test_each_api_key_has_its_own_budget(client_factory: ClientFactory) -> None:
    client = client_factory(api_keys=["k1", "k2"], rate_limit_per_minute=3)
    k1, k2 = {"X-API-Key": "k1"}, {"Authorization": "Bearer k2"}
    assert [_ask(client, headers=k1).status_code for _ in range(3)] == [200, 200, 200]
    assert_problem(_ask(client, headers=k1), 429)
    assert [_ask(client, headers=k2).status_code for _ in range(3)] == [200, 200, 200]
    assert_problem(_ask(client, headers=k2), 429)
    # Rejected (unauthenticated) requests are refused before the limiter and do not change that.
    assert_problem(_ask(client), 401)


def test_rate_limiter_refills_continuously() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.check("a", now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.check("a", now=0.0) == 20  # 1 token at 0.05 token/s
    assert limiter.check("b", now=0.0) is None  # clients are independent
    assert limiter.check("a", now=10.0) == 10  # half a token back
    assert limiter.check("a", now=20.0) is None  # a whole token back
    assert limiter.check("a", now=20.0) == 20
    # The bucket never holds more than per_minute tokens, however long the pause.
    assert [limiter.check("a", now=10_000.0) for _ in range(4)] == [None, None, None, 20]


def test_rate_limiter_exact_refill_at_one_per_second() -> None:
    limiter = RateLimiter(per_minute=60)
    assert all(limiter.check("c", now=0.0) is None for _ in range(60))
    assert limiter.check("c", now=0.0) == 1
    assert limiter.check("c", now=0.5) == 1  # never 0: Retry-After is at least 1
    assert limiter.check("c", now=1.0) is None
    assert limiter.check("c", now=1.0) == 1


def test_rate_limiter_zero_disables_and_memory_is_bounded() -> None:
    assert all(RateLimiter(0).check("x", now=0.0) is None for _ in range(1000))
    limiter = RateLimiter(per_minute=1, max_clients=100)
    for i in range(1000):
        assert limiter.check(f"client-{i}", now=float(i)) is None
    assert len(limiter._buckets) <= 101


# --- deadline -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["ask", "search"])
def test_slow_engine_hits_the_deadline_with_503(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    client = client_factory(request_timeout_s=0.2)
    engine = client.app.state.services.holder.engine  # type: ignore[attr-defined]
    gate = Gate(timeout_s=10.0)
    monkeypatch.setattr(engine, route, gate.wrap(getattr(engine, route)))
    try:
        response = _ask(client) if route == "ask" else client.get("/v1/search", params={"q": "visa"})
        # The answer came back while the engine call was still blocked (the gate is still closed).
        assert gate.entered.is_set() and not gate.release.is_set()
    finally:
        gate.release.set()
    body = assert_problem(response, 503, "Request took too long")
    assert "0.2 s" in body["detail"]


def test_worker_deadline_unit() -> None:
    import threading

    release = threading.Event()

    async def main() -> None:
        worker = Worker(concurrency=1, timeout_s=0.05)
        assert await worker.run(lambda: 41 + 1) == 42
        with pytest.raises(DeadlineExceededError):
            await worker.run(lambda: release.wait(10))

    try:
        anyio.run(main)
    finally:
        release.set()


def test_abandoned_work_still_counts_against_the_concurrency_limit() -> None:
    """Issue 10, defect 2: work past its deadline kept running outside the limit (threads 4 → 28)."""
    import threading

    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1

    async def main() -> list[bool]:
        worker = Worker(concurrency=2, timeout_s=0.05)
        timed_out: list[bool] = []

        async def one() -> None:
            try:
                await worker.run(slow)
                timed_out.append(False)
            except DeadlineExceededError:
                timed_out.append(True)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        # Every request was answered at its deadline, yet only two ever ran at once, and the
        # six that never got a thread were dropped instead of running later.
        release.set()
        await anyio.sleep(0.2)
        worker.close()
        return timed_out

    try:
        assert anyio.run(main) == [True] * 8
    finally:
        release.set()
    assert most == 2


def test_a_question_over_the_token_bound_is_422_before_any_encoding(client: TestClient) -> None:
    """Issue 10, defect 2: 1,000 characters of punctuation or accents cost seconds of encoding."""
    costly = "a!" * 400  # 800 characters, 800 tokens
    body = assert_problem(_ask(client, costly), 422)
    assert "tokens" in body["detail"] and "256" in body["detail"]
    assert_problem(client.get("/v1/search", params={"q": costly}), 422)
    # An ordinary long question of the same length is still answered.
    ordinary = ("Berapa lama kontrak magang di Jepang " * 25)[:800]
    assert _ask(client, ordinary).status_code == 200


def test_retry_after_is_an_integer_ceiling() -> None:
    # Sanity of the arithmetic the 429 header relies on (no float leaks into Retry-After).
    limiter = RateLimiter(per_minute=7)
    for _ in range(7):
        limiter.check("z", now=0.0)
    retry = limiter.check("z", now=0.0)
    assert isinstance(retry, int) and retry == math.ceil(60 / 7)
