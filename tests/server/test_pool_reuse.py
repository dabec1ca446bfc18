"""Under a steady load, an API process reuses its pooled PostgreSQL connections.

A pool keeps ``db_pool_size`` connections and opens up to ``db_max_overflow`` more when more requests than
that hold one at once; each of those is closed when it comes back to a full pool. So a load that keeps
more requests at once than the pool keeps opens and closes a connection again and again: a backend's
start and a login each time, 4.6-5.8 ms of PostgreSQL's CPU, where a read costs it 1.2-1.6 ms. At P6's
load (32 connections on 2 processes) the old pool of 10 closed 61-93 connections per 1000 reads, and
PostgreSQL spent 0.4-0.8 ms more CPU per read than with a pool of 20 (BENCHMARKS.md). Here 16 clients
read at once, as one of P6's two processes serves, twice: the pool may open what they need, and close
none of it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import _live
from tests.support.databases import PostgresTemplates

pytestmark = pytest.mark.postgres

CLIENTS = 16
READS = 25


def _burst(url: str, token: str) -> list[int]:
    """CLIENTS clients at once, each READS list reads on its own kept-alive connection: their statuses."""
    statuses: list[int] = []
    start = threading.Barrier(CLIENTS, timeout=30)

    def client() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            start.wait()
            statuses.extend(http.get("/api/v1/recordings?limit=5").status_code for _ in range(READS))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_a_steady_load_reuses_the_pools_connections(tmp_path: Path, postgres_templates: PostgresTemplates) -> None:
    server = _live(tmp_path, postgres_templates.fresh())  # the default pool
    try:
        engine = server._server.config.app.state.ctx.engine
        closed: list[object] = []
        event.listen(engine, "close", lambda *_: closed.append(None))
        token = server.login()
        for _ in range(2):
            assert _burst(server.url, token) == [200] * (CLIENTS * READS)
        assert len(closed) == 0, (
            f"{len(closed)} connections closed for {2 * CLIENTS * READS} reads by {CLIENTS} clients"
        )
    finally:
        server.stop()
