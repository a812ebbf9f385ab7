"""Typed FastAPI dependencies: the app's services, the current engine, auth and rate limits."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.api.holder import EngineHolder
from service.api.limits import RateLimiter, Worker
from service.api.metrics import Metrics
from service.api.problems import NotReadyError, RateLimitedError, UnauthorizedError
from service.config import HttpConfig
from service.qa.engine import Engine


@dataclass
class Services:
    """Everything the routes need, created once per app in ``create_app``."""

    http: HttpConfig
    holder: EngineHolder
    metrics: Metrics
    worker: Worker
    rate_limiter: RateLimiter
    #: Failed authentications per client address: key guessing is limited even when requests are not.
    auth_failures: RateLimiter


def get_services(request: Request) -> Services:
    """The services of the app handling this request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_engine(services: ServicesDep) -> Engine:
    """The engine current at the start of the request (kept for the whole request)."""
    engine = services.holder.engine
    if engine is None:
        raise NotReadyError(f"no index is loaded ({services.holder.error or 'starting'}); run 'tanya index'")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def presented_keys(request: Request) -> list[str]:
    """Every credential the request presents: ``Authorization`` (whole, unless it is ``Bearer <key>``) and ``X-API-Key``."""
    keys = []
    auth = request.headers.get("authorization")
    if auth is not None:
        keys.append(auth[7:].strip() if auth[:7].lower() == "bearer " else auth)
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        keys.append(api_key)
    return keys


def _valid(given: bytes, keys: tuple[str, ...]) -> bool:
    # Compare against every key so the time taken does not reveal which (if any) matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def client_address(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with ``--forwarded-allow-ips`` so this is the client's)."""
    return request.client.host if request.client else "unknown"


def require_api_key(request: Request, services: ServicesDep) -> None:
    """When keys are configured, require one; compare in constant time and never log it.

    Every wrong or missing key spends one of the address's ``auth_failures_per_minute``; an
    address with none left gets 429 before its key is even compared, so guessing is bounded.
    """
    keys = services.http.api_keys
    if not keys:
        return
    address = client_address(request)
    retry_after = services.auth_failures.blocked(address)
    if retry_after is not None:
        raise RateLimitedError(
            f"too many failed API key attempts from this address; retry in {retry_after} s", retry_after
        )
    given = presented_keys(request)
    if not given:
        services.auth_failures.check(address)
        raise UnauthorizedError("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    # Every credential presented must be valid: a wrong Authorization header next to a good
    # X-API-Key is a client error (or a probe), not a request to pick the one that works.
    encoded = [key.encode("utf-8", "surrogateescape") for key in given]
    if not all([_valid(key, keys) for key in encoded]):  # a list: every key compared, whatever fails first
        services.auth_failures.check(address)
        raise UnauthorizedError("the API key is not valid")
    request.state.client_id = "key:" + hmac.new(b"tanya", encoded[0], "sha256").hexdigest()[:16]


def rate_limit(request: Request, services: ServicesDep) -> None:
    """Per-client limit (by API key when there is one, else by address)."""
    client = getattr(request.state, "client_id", None) or client_address(request)
    retry_after = services.rate_limiter.check(client)
    if retry_after is not None:
        raise RateLimitedError(
            f"more than {services.rate_limiter.per_minute} requests per minute; retry in {retry_after} s", retry_after
        )


Protected = [Depends(require_api_key), Depends(rate_limit)]
