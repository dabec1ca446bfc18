"""The embedded HTTP server's limits: uvicorn as ``custodia server`` and ``custodia up`` run it.

uvicorn's httptools protocol has no limit of its own on the request line or the headers (llhttp
hands over a header only once it is whole, so 4 x 32 MB headers were buffered before any route or
guard ran), and no deadline for a client that sends its request slowly. ``LimitedHttpProtocol``
adds them below the application, before authentication:

- the request head (request line and headers) may take ``max_header_bytes`` (431) and
  ``max_headers`` fields (431), its request line ``max_request_line_bytes`` (414);
- the head must arrive within ``header_timeout_s`` of its first byte (or of the connection) (408);
- while a request body is being received, the client may pause at most ``body_idle_timeout_s``
  (the connection is closed); time spent while the server itself is not reading does not count;
- ``limit_concurrency`` answers 503 past ``max_connections`` connections and tasks.

Request bodies outside tus are capped by ``limits.BodyLimit`` (413). Behind nginx these limits
apply to what nginx forwards; nginx's own (deploy/nginx) hold at the edge.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from evidence_server.config import Settings, get_settings

REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True)
class ServerLimits:
    max_request_line_bytes: int
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    body_idle_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            settings.max_request_line_bytes,
            settings.max_header_bytes,
            settings.max_headers,
            settings.header_timeout_s,
            settings.body_idle_timeout_s,
        )


class _Refuse(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on the request head and deadlines for slow clients."""

    #: None: read from the process's settings (``custodia server``, whose workers are new processes)
    limits: ClassVar[ServerLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = ServerLimits.from_settings(get_settings())
        self.bounds: ServerLimits = cls.limits
        self._in_head = True
        self._head_bytes = 0
        self._fields = 0
        self._in_body = False
        self._last_data = 0.0
        self._deadline: asyncio.TimerHandle | None = None

    # --- deadlines -------------------------------------------------------------------------------

    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(_Refuse(408, "the request head took too long"))

    def _body_stalled(self) -> None:
        self._deadline = None
        if not self._in_body or self.transport.is_closing():
            return
        quiet = self.loop.time() - self._last_data
        if quiet < self.bounds.body_idle_timeout_s:  # bytes came since: wait out the rest
            self._arm(self.bounds.body_idle_timeout_s - quiet, self._body_stalled)
            return
        if self.flow.read_paused:  # the server is not reading: the client is not to blame
            self._arm(self.bounds.body_idle_timeout_s, self._body_stalled)
            return
        self.logger.warning("closing a connection whose request body stalled for %ss", self.bounds.body_idle_timeout_s)
        self.transport.close()

    # --- the protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.bounds.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        else:
            self._last_data = self.loop.time()  # no timer per chunk: the deadline checks this when it fires
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _Refuse):
                self._refuse(cause)
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except _Refuse as refusal:
            self._refuse(refusal)
            return
        if self._in_head and self._head_bytes > self.bounds.max_header_bytes + self.bounds.max_request_line_bytes:
            self._refuse(_Refuse(431, "request head too large"))

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._fields, self._in_body = True, 0, False
        self._arm(self.bounds.header_timeout_s, self._head_too_slow)

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.bounds.max_request_line_bytes:
            raise _Refuse(414, "request line too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self.bounds.max_headers:
            raise _Refuse(431, "too many header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._in_body, self._last_data = True, self.loop.time()
        self._arm(self.bounds.body_idle_timeout_s, self._body_stalled)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def _refuse(self, refusal: _Refuse) -> None:
        """Answer the status and close: nothing of the request is kept or passed on."""
        self._disarm()
        self.logger.warning("refused a request before reading it: %s", refusal.detail)
        body = refusal.detail.encode()
        head = b"HTTP/1.1 %d %s\r\n" % (refusal.status, REASONS.get(refusal.status, b"Bad Request"))
        self.transport.write(
            head
            + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()


def protocol_for(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol class with ``settings``' limits (for a server in this process, such as ``custodia up``)."""
    return type("CustodiaHttpProtocol", (LimitedHttpProtocol,), {"limits": ServerLimits.from_settings(settings)})


def uvicorn_options(settings: Settings, *, in_process: bool = True) -> dict[str, Any]:
    """uvicorn.Config / uvicorn.run keywords: the limited protocol, no trust in forwarding headers
    (``evidence_server.proxies`` decides that from ``trusted_proxies``), a connection cap."""
    return {
        "http": protocol_for(settings) if in_process else LimitedHttpProtocol,
        "proxy_headers": False,
        "server_header": False,
        "limit_concurrency": settings.max_connections or None,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
