"""Abuse limits kept in memory per server process: failed logins per address, uploads per station,
and a cap on request bodies.

The counters are per process: with several API workers each enforces its own share, which is
still a hard ceiling (workers x limit). Account lockout, which must hold across processes, lives
in the database (``users.failed_logins``, ``users.locked_until``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Keys a counter remembers at most; beyond, the stalest are forgotten (bounded memory under a flood).
MAX_KEYS = 50_000


class WindowCounter:
    """Events per key in a sliding window of ``window_s`` seconds; thread-safe."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._events: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= MAX_KEYS:
                stalest = sorted(self._events, key=lambda k: self._events[k][-1] if self._events[k] else 0.0)
                for k in stalest[: MAX_KEYS // 10]:
                    del self._events[k]
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def retry_after(self, key: Hashable) -> int | None:
        """Seconds until ``key`` may act again, or None when it is under the limit now."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) < self.limit:
                return None
            return max(1, math.ceil(events[0] + self.window_s - now))

    def hit(self, key: Hashable) -> None:
        with self._lock:
            self._recent(key, self.clock()).append(self.clock())

    def take(self, key: Hashable) -> int | None:
        """Count one event if under the limit (None); else the seconds to wait, counting nothing."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if self.limit > 0 and len(events) >= self.limit:
                return max(1, math.ceil(events[0] + self.window_s - now))
            events.append(now)
            return None

    def forgive(self, key: Hashable) -> None:
        """Take back the newest event of ``key`` (an attempt counted as it started, that succeeded)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()

    def clear(self, key: Hashable) -> None:
        with self._lock:
            self._events.pop(key, None)


#: The key of counters that hold for every client together.
EVERYONE = "*"


@dataclass
class Limits:
    """The counters one server process keeps (see Settings: login_*, upload_*, anonymous_*, credential_*).

    ``anonymous``: requests to public routes and failed authentications, per client address.
    ``credentials``: attempts at the routes that check a secret (login, enrolment), all clients together.
    """

    login_failures: WindowCounter
    upload_creates: WindowCounter
    anonymous: WindowCounter
    credentials: WindowCounter
    push_objects: WindowCounter | None = None  # objects per recorder (serial), push ingest

    @classmethod
    def from_settings(cls, settings: object) -> Limits:
        return cls(
            login_failures=WindowCounter(
                getattr(settings, "login_failures_per_address", 20), getattr(settings, "login_failure_window_s", 600)
            ),
            upload_creates=WindowCounter(getattr(settings, "upload_creates_per_minute", 600), 60.0),
            anonymous=WindowCounter(getattr(settings, "anonymous_requests_per_minute", 300), 60.0),
            credentials=WindowCounter(getattr(settings, "credential_attempts_per_minute", 600), 60.0),
            push_objects=WindowCounter(
                getattr(settings, "push_objects_per_minute", 240), getattr(settings, "push_rate_window_s", 60.0)
            ),
        )


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, before a route reads them into memory.

    tus PATCH requests are left alone: the upload route bounds them by the declared Upload-Length.
    Plain ASGI, so uploads are not slowed down.
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int], exempt: Callable[[Scope], bool]) -> None:
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(413, f"request body larger than {limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)


class _BodyTooLarge(HTTPException):
    """An HTTPException, so a route reading the body answers 413 through the usual handler."""


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body larger than %d bytes"}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
