"""Slow and oversized clients, refused by the server itself.

uvicorn times out only idle keep-alive connections: a connection that sends nothing, or
its headers or body one byte every ten seconds, stays open for as long as the client
likes, and uvicorn's httptools protocol reads headers of any size (a review held 20,500
such connections until the process ran out of file descriptors, and sent a 50 MB
``X-API-Key``). :func:`guarded_protocol` adds to uvicorn's protocol:

* a deadline for the request line and headers (``header_timeout``), armed when the
  connection opens and again when the next request on it begins;
* a deadline for the body once the headers are in (``body_timeout``);
* a cap on the bytes of the request line and headers (``max_header_bytes``): 431;
* uvicorn's own ``limit_concurrency`` caps connections and tasks per process (503 beyond).

A client past a deadline gets ``408`` when nothing of its request has been answered yet,
and the connection is closed. A refused connection is closed the way nginx does it
("lingering close"): the answer is sent, the sending side shut, and whatever the client is
still sending is read and dropped for up to ``LINGER_S`` seconds — closing with unread
data would make the kernel reset the connection, and the client would lose the answer. Behind a reverse proxy (docs/deploy.md) the proxy enforces
the same limits first.
"""
from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

LINGER_S = 2.0

__all__ = ["guarded_protocol"]


def guarded_protocol(*, header_timeout: float, body_timeout: float, max_header_bytes: int):
    """A uvicorn HTTP protocol class (``uvicorn.Config(http=...)``) with the limits above."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._deadline = None
            self._head_bytes, self._tail = 0, b""
            self._in_head, self._discarding = True, False
            self._arm(header_timeout, "headers")

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expire, what)

        def _disarm(self) -> None:
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self, what: str) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            log.info("closing a connection whose %s did not arrive in time", what)
            if self.cycle is None or not self.cycle.response_started:
                self._refuse(408, b"Request Timeout")
                self._linger_close()
            else:
                self.transport.close()

        def _refuse(self, status: int, reason: bytes) -> None:
            body = b'{"detail": "' + reason + b'"}'
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                                 b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))

        def _linger_close(self) -> None:
            """Send what was written, shut the sending side, drop what still arrives and
            close after ``LINGER_S`` (or when the client closes first)."""
            self._discarding = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._deadline = self.loop.call_later(LINGER_S, self.transport.close)
            else:
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._discarding:
                return
            if self._in_head:
                # count the head only: a chunk can hold the end of the headers and the body
                probe = self._tail + data
                end = probe.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
                self._tail = data[-3:]
                if self._head_bytes > max_header_bytes:
                    log.info("refusing a request whose headers exceed %d bytes", max_header_bytes)
                    self._disarm()
                    self._refuse(431, b"Request Header Fields Too Large")
                    self._linger_close()
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._in_head:  # the next request on a kept-alive connection
                self._in_head, self._head_bytes, self._tail = True, 0, b""
                self._arm(header_timeout, "headers")

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._arm(body_timeout, "body")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol
