"""Database engine, sessions and the declarative base (SQLAlchemy 2.0, UTC-aware timestamps only)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Select, create_engine, event, func, literal_column, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; refuses naive datetimes; always returns UTC-aware values (SQLite included)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use UTC-aware timestamps")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No JIT: PostgreSQL compiles a query whose *estimated* cost passes jit_above_cost, and the
    # visibility filters' subqueries (never run when the other side of their OR holds) inflate the
    # estimates of cheap lookups: a case-number search spent ~70 ms compiling for 0.3 ms of work.
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, connect_args={"options": "-c jit=off"})
    _ping_after_idle(engine)
    return engine


#: A pooled connection idle longer than this is tried before it is handed out (``pool_pre_ping`` tries
#: every one: a round trip per request, a tenth of the reads per second the API serves under load).
IDLE_PING_S = 2.0


def _ping_after_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, for connections that rested: one back in the pool within the last
    ``IDLE_PING_S`` was working a moment ago. A server that restarts under load breaks the requests then in
    flight whichever way; the first error on a broken connection invalidates the pool's older connections."""

    @event.listens_for(engine, "checkin")
    def _rested_since(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001  (any failure: take another connection)
            raise DisconnectionError("a pooled connection did not answer") from exc
        if not alive:
            raise DisconnectionError("a pooled connection did not answer")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request, closed after it.

    ``async`` so FastAPI does not hop to its thread pool twice a request for it: making a session does
    no I/O (it connects on first use, in the sync route or dependency that uses it), and closing one
    that holds no connection (none was used, or the route committed) does none either. Closing one
    that does (a ROLLBACK, the connection back to the pool) runs in a worker thread, shielded from
    cancellation and outside the thread pool's capacity limit, as FastAPI does for sync dependencies.
    """
    session = request.app.state.ctx.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


#: How far a list counts its matches: past this many beyond the page shown, it says "more than N". Counting
#: every visible recording on each page view took 3 to 45 s at 10M recordings (issue 18).
COUNT_CAP = 10_000


def count_upto(session: Session, q: Select[Any], cap: int) -> tuple[int, bool]:
    """How many rows ``q`` selects, counting no further than ``cap``: ``(n, False)``, or ``(cap, True)`` when
    there are more. The count stops at the ``cap + 1``-th match instead of going on through the table."""
    first: Select[Any] = q.with_only_columns(literal_column("1").label("one"), maintain_column_froms=True).order_by(
        None
    )
    n = session.scalar(select(func.count()).select_from(first.limit(cap + 1).subquery())) or 0
    return (cap, True) if n > cap else (n, False)


def total_of_page(session: Session, q: Select[Any], offset: int, limit: int, shown: int) -> tuple[int, bool]:
    """The total a page of ``q`` reports (and whether there are more): on the last page it is known without
    counting; before it, ``count_upto`` counts up to ``COUNT_CAP`` past the page."""
    if shown < limit and (shown or offset == 0):
        return offset + shown, False
    return count_upto(session, q, offset + limit + COUNT_CAP)
