"""``tanya serve``'s uvicorn configuration: every bound on clients comes from settings."""

from __future__ import annotations

from pathlib import Path

from service.api.server import BoundedH11Protocol, server_config
from tests.support.helpers import make_settings


def test_server_bounds_come_from_settings(tmp_path: Path) -> None:
    http = make_settings(
        tmp_path, keep_alive_s=3, request_read_timeout_s=2.5, max_connections=50, shutdown_grace_s=4
    ).http
    config = server_config(object(), http, port=9000)
    assert config.port == 9000 and config.host == http.host
    assert config.timeout_keep_alive == 3 and config.limit_concurrency == 50
    assert config.timeout_graceful_shutdown == 4
    assert isinstance(config.http, type) and issubclass(config.http, BoundedH11Protocol)
    assert config.http.read_timeout_s == 2.5
    # Forwarded headers are not believed unless a proxy is named.
    assert config.proxy_headers is False


def test_forwarded_headers_only_from_named_proxies(tmp_path: Path) -> None:
    http = make_settings(tmp_path, forwarded_allow_ips=["127.0.0.1", "10.0.0.2"], max_connections=0).http
    config = server_config(object(), http)
    assert config.proxy_headers is True and config.forwarded_allow_ips == ["127.0.0.1", "10.0.0.2"]
    assert config.limit_concurrency is None  # 0 = no cap
