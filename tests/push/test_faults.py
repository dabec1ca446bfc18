"""Faults of the push path: a full staging area (507, nothing lost), the per-recorder rate (503), a server
killed mid-object (the client's retry finishes, nothing duplicated)."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from swiftclient.exceptions import ClientException

from tests.push.conftest import SERIAL, USER_UUID, make_world, md5, register
from tests.support.live import LiveServer

CONTAINER = f"{USER_UUID}_{SERIAL}_20261204_101500"


def _recordings(server: LiveServer) -> list[Any]:
    from evidence_server.context import ServerContext
    from evidence_server.recordings.models import Recording

    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as s:
        recs = list(s.scalars(select(Recording)))
    ctx.close()
    return recs


def test_full_staging_answers_507_and_loses_nothing(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory()
    world = make_world(server)
    conn = world.swift()
    register(world, conn)
    conn.put_container(CONTAINER)
    first = os.urandom(300_000)
    conn.put_object(CONTAINER, "20261204_101500_1.mp4", contents=first, etag=md5(first))

    server.stop()
    server.env["CUSTODIA_PUSH_STAGING_RESERVE_BYTES"] = str(10**18)  # no disk has that much room
    server.start()
    second = os.urandom(300_000)
    with pytest.raises(ClientException) as err:
        world.swift().put_object(CONTAINER, "20261204_102000_1.mp4", contents=second, etag=md5(second))
    assert err.value.http_status == 507
    assert len(_recordings(server)) == 1  # the clip held before is untouched, nothing half-recorded
    assert not list((server.data_dir / "staging").glob("*.part"))

    server.stop()
    del server.env["CUSTODIA_PUSH_STAGING_RESERVE_BYTES"]
    server.start()
    assert world.swift().put_object(CONTAINER, "20261204_102000_1.mp4", contents=second, etag=md5(second)) == md5(
        second
    )
    assert sorted(r.size for r in _recordings(server)) == [300_000, 300_000]


def test_a_recorder_past_its_rate_is_told_503_with_retry_after(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(CUSTODIA_PUSH_OBJECTS_PER_MINUTE="2")
    world = make_world(server)
    conn = world.swift()
    register(world, conn)
    conn.put_container(CONTAINER)
    for i in range(2):
        data = os.urandom(1000)
        conn.put_object(CONTAINER, f"20261204_10150{i}_1.mp4", contents=data, etag=md5(data))
    data = os.urandom(1000)
    with pytest.raises(ClientException) as err:
        conn.put_object(CONTAINER, "20261204_101509_1.mp4", contents=data, etag=md5(data))
    assert err.value.http_status == 503
    assert int(err.value.http_response_headers["retry-after"]) >= 1
    assert len(_recordings(server)) == 2


def test_the_client_retrying_after_503_gets_its_clip_in(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(CUSTODIA_PUSH_OBJECTS_PER_MINUTE="1", CUSTODIA_PUSH_RATE_WINDOW_S="2")
    world = make_world(server)
    conn = world.swift(retries=6)  # swiftclient's own backoff on 5xx
    register(world, conn)
    conn.put_container(CONTAINER)
    clips = [os.urandom(2000) for _ in range(3)]
    started = time.monotonic()
    for i, data in enumerate(clips):
        body = io.BytesIO(data)  # seekable: swiftclient rewinds it to retry
        assert conn.put_object(CONTAINER, f"20261204_10150{i}_1.mp4", contents=body, etag=md5(data)) == md5(data)
    assert time.monotonic() - started >= 2  # the second and third clips waited for the window
    assert len(_recordings(server)) == 3


def _half_put(url: str, token: str, path: str, data: bytes) -> socket.socket:
    """Send a PUT's headers and half its body, then stop sending (the server is killed meanwhile)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"PUT {parts.path}/{path} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Auth-Token: {token}\r\n"
        f"ETag: {md5(data)}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[: len(data) // 2])
    return sock


def test_a_restart_mid_object_is_finished_by_the_retry_without_duplicates(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(mode="process")
    world = make_world(server)
    conn = world.swift()
    register(world, conn)
    conn.put_container(CONTAINER)
    data = os.urandom(8 * 1024 * 1024)
    url, token = conn.get_auth()
    sock = _half_put(url, token, f"{CONTAINER}/20261204_101500_1.mp4", data)
    staging = server.data_dir / "staging"
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size > 0 for p in staging.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(staging.glob("*.part")), "the first half never reached staging"
    server.kill()
    sock.close()
    server.restart()

    retry = world.swift(retries=3)
    assert retry.put_object(CONTAINER, "20261204_101500_1.mp4", contents=data, etag=md5(data)) == md5(data)
    recs = _recordings(server)
    assert len(recs) == 1 and recs[0].size == len(data)
    assert not list(staging.glob("*.part"))  # the interrupted upload's bytes are gone, not kept twice

    from evidence_server.context import ServerContext
    from evidence_server.uploads.models import Upload

    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as s:
        assert sorted(u.state for u in s.scalars(select(Upload))) == ["superseded", "verified"]
    ctx.close()
