"""The embedded server's limits, before any route or guard runs (issue 15, item 8): `custodia server`
as production runs it, spoken to over raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import count
from tests.support.databases import SqliteTemplates
from tests.support.live import LiveServer

MB = 1024 * 1024
LIMITS = {
    "CUSTODIA_HEADER_TIMEOUT_S": "1",
    "CUSTODIA_BODY_IDLE_TIMEOUT_S": "1",
    "CUSTODIA_MAX_REQUEST_BODY_BYTES": "65536",
    "CUSTODIA_MAX_CONNECTIONS": "20",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("limits")
    live = LiveServer(
        data_dir=tmp / "server", database_url=sqlite_templates.fresh(tmp / "db"), mode="process", env=LIMITS
    )
    live.data_dir.mkdir(parents=True)
    live.bootstrap()
    live.start()
    yield live
    live.stop()


def memory_kib(server: LiveServer) -> dict[str, int]:
    """The server process's resident memory now (VmRSS) and at its peak (VmHWM)."""
    assert server._proc is not None
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{server._proc.pid}/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=20)


def answer(sock: socket.socket) -> bytes:
    """What the server said before it closed (b"" if it reset the connection without a word); a server
    that keeps the connection open past the socket's timeout fails the test (TimeoutError)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def status(reply: bytes) -> int | None:
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else None


def huge_header(server: LiveServer, size: int) -> bytes:
    with connect(server) as sock:
        sock.sendall(b"GET /api/v1/auth/me HTTP/1.1\r\nHost: custodia\r\nX-Pad: ")
        chunk = b"a" * MB
        try:
            for _ in range(size // MB):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused long before the end
        return answer(sock)


def test_four_32_mb_headers_before_authentication_are_refused_and_not_kept_in_memory(server: LiveServer) -> None:
    before = memory_kib(server)
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: huge_header(server, 32 * MB), range(4)))
    count("oversized headers sent (MB)", 4 * 32)
    assert all(status(r) in (431, None) for r in replies), [r[:80] for r in replies]  # never 401: no route ran
    assert any(status(r) == 431 for r in replies)
    after = memory_kib(server)
    # before: the 128 MB of headers were buffered (peak) and much of it stayed resident
    assert after["VmHWM"] - before["VmHWM"] < 32 * 1024, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 16 * 1024, (before, after)
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_long_request_line_and_too_many_header_fields_are_refused(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: custodia\r\n\r\n")
        assert status(answer(sock)) == 414
    with connect(server) as sock:
        fields = b"".join(b"X-F%d: v\r\n" % i for i in range(150))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: custodia\r\n" + fields + b"\r\n")
        assert status(answer(sock)) == 431


def test_a_client_that_sends_its_request_head_slowly_is_cut_off(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: custodia\r\n")  # and never the blank line
        assert status(answer(sock)) == 408
    with connect(server) as sock:  # slowloris: one byte at a time keeps no connection open for long
        started, closed = time.monotonic(), False
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: custodia\r\nX-Slow: " + b"z" * 200:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        reply = b"" if closed else answer(sock)
        assert closed or status(reply) == 408
        assert time.monotonic() - started < 20  # the 230 bytes would have taken 23 s
    with connect(server) as sock:  # a connection that says nothing at all is closed too
        reply = answer(sock)
        assert reply == b"" or status(reply) == 408


def test_a_request_body_that_stalls_is_cut_off(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: custodia\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"username": '
        )
        reply = answer(sock)  # the server closes the connection (before: it waited forever)
        assert status(reply) in (None, 400, 422), reply[:80]


def test_request_bodies_outside_tus_are_capped(server: LiveServer) -> None:
    big = b"{" + b" " * (70 * 1024) + b"}"
    declared = httpx.post(server.url + "/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"username": "'
        for _ in range(70):
            yield b"u" * 1024
        yield b'"}'

    streamed = httpx.post(
        server.url + "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_connections_beyond_the_cap_get_503(server: LiveServer) -> None:
    idle = [connect(server) for _ in range(20)]
    try:
        time.sleep(0.2)
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: custodia\r\n\r\n")
            assert status(answer(sock)) == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(server.url + "/healthz").status_code == 200
