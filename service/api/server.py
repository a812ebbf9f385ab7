"""Running the app under uvicorn with bounds on slow and idle clients.

uvicorn bounds the idle time between two requests on a connection (``timeout_keep_alive``)
and, with ``limit_concurrency``, the connections it serves at once; it bounds neither how
long a client may take to send its request head and body nor how long a fresh connection
may stay silent. A client sending one byte every two seconds, or nothing, held a connection
(and a file descriptor) forever. :class:`BoundedH11Protocol` adds that one missing bound:
each request must arrive in full within ``request_read_timeout_s`` of its first moment
(the connection opening, or the previous response finishing), or the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.config import HttpConfig

log = logging.getLogger("tanya.server")


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for reading each request (head and body)."""

    #: Seconds a client has to send one whole request; set per server by :func:`server_config`.
    read_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request as soon as the connection opens."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Stop the clock once the request is complete (h11 says the client is DONE)."""
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()

    def on_response_complete(self) -> None:
        """The next request on this connection gets its own deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No timer outlives its connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            # Nothing useful can be answered to a half-sent request: close, as nginx does (408 without a body).
            log.info("closing a connection that did not send its request within %g s", self.read_timeout_s)
            self.transport.close()


def server_config(app: Any, http: HttpConfig, host: str | None = None, port: int | None = None) -> uvicorn.Config:
    """The uvicorn configuration Tanya serves with, every bound taken from ``http``."""
    protocol = type("TanyaH11Protocol", (BoundedH11Protocol,), {"read_timeout_s": http.request_read_timeout_s})
    return uvicorn.Config(
        app,
        host=host or http.host,
        port=port or http.port,
        http=protocol,
        log_config=None,
        access_log=False,  # the app logs every request itself, as JSON with its request id
        timeout_keep_alive=int(http.keep_alive_s),
        limit_concurrency=http.max_connections or None,
        timeout_graceful_shutdown=int(http.shutdown_grace_s),
        # Forwarded headers are believed only from the proxies named in TANYA_FORWARDED_ALLOW_IPS:
        # otherwise any client could pick the address its rate limits are counted under.
        proxy_headers=bool(http.forwarded_allow_ips),
        forwarded_allow_ips=list(http.forwarded_allow_ips) or None,
    )
