"""Pooled PostgreSQL connections: one that rested is tried before it is handed out, so a server that dropped
it (a restart, an idle timeout, an administrator) costs no request; one just handed back is not tried
(a round trip per request, a tenth of the API's reads under load)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from evidence_server import db
from tests.support.databases import PostgresTemplates

pytestmark = pytest.mark.postgres


def _backend(conn) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_rested_connection_the_server_dropped_is_replaced_unseen(
    postgres_templates: PostgresTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_templates.fresh()
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            dropped = _backend(conn)
        other = create_engine(url)  # someone else ends the pooled connection's backend
        with other.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}).scalar_one()
        other.dispose()
        monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # the first one has rested
        pings: list[bool] = []
        monkeypatch.setattr(
            engine.dialect, "do_ping", lambda c: pings.append(True) or type(engine.dialect).do_ping(engine.dialect, c)
        )
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1  # no error: a fresh connection
            assert _backend(conn) != dropped
        assert pings, "the rested connection was not tried"
    finally:
        engine.dispose()


def test_a_connection_back_a_moment_ago_is_handed_out_untried(
    postgres_templates: PostgresTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(postgres_templates.fresh())
    try:
        with engine.connect() as conn:
            first = _backend(conn)
        pings: list[bool] = []
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(True) or True)
        for _ in range(5):
            with engine.connect() as conn:
                assert _backend(conn) == first
        assert pings == []
    finally:
        engine.dispose()


def test_after_the_server_dropped_every_pooled_connection_only_the_first_request_fails(
    postgres_templates: PostgresTemplates,
) -> None:
    """Connections back a moment ago are not tried (above): when the server has just dropped them all
    (a restart under load), the first request meets a dead one, and that error retires all of them."""
    url = postgres_templates.fresh()
    engine = db.make_engine(url)
    try:
        first, second = engine.connect(), engine.connect()
        dropped = [_backend(first), _backend(second)]
        first.close()
        second.close()
        other = create_engine(url)
        with other.connect() as killer:
            for pid in dropped:
                assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        other.dispose()
        outcomes = []
        for _ in range(3):
            try:
                with engine.connect() as conn:
                    outcomes.append(conn.execute(text("SELECT 1")).scalar_one() == 1)
            except OperationalError:
                outcomes.append(False)
        assert outcomes == [False, True, True]
    finally:
        engine.dispose()
