"""An object's storage key, held from the moment its bytes are stored until its record commits.

An upload stores its object and then commits its recording, in that order, so for a moment the store
holds an object the database does not yet name. The fixity sweep lists the store and looks the objects
it cannot place up again before it calls any an orphan; an upload that committed between the two
readings was placed, but one still finishing (a long audit append, a busy database) was not, and became
an integrity incident that stayed (the multi-host fault test met one, with the orphan grace at 0).

On PostgreSQL the upload holds a shared advisory lock on the key for its transaction (``storing``), and
the sweep waits for that lock before its second look (``settled``): every object it lists was either
stored by an upload that has since committed or rolled back, or is what the sweep says it is. Uploads of
the same bytes share the lock; the sweep takes them a few dozen at a time and lets them go at once, so it
never holds thousands of locks, nor keeps one. SQLite has no such locks: there the orphan grace
(``fixity_orphan_grace_s``, an hour by default) is what keeps a finishing upload from being reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


def _lock_id(key: str) -> object:
    return func.hashtextextended("object " + key, 0)


def storing(session: Session, key: str) -> None:
    """Hold ``key`` until this transaction ends: call before its bytes are stored."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock_shared(_lock_id(key))))


def settled(session: Session, keys: Iterable[str]) -> None:
    """Wait until no upload that is storing one of ``keys`` is still finishing.

    Each key is taken in a short transaction of its own connection, a few dozen keys at a time, and let go
    at its end whatever happens: a lock left held by a connection back in the pool would stall every later
    upload of those bytes."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    engine = bind.engine if isinstance(bind, Connection) else bind
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        with engine.begin() as conn:
            for key in keys[i : i + CHUNK]:
                conn.execute(select(func.pg_advisory_xact_lock(_lock_id(key))))


#: keys taken in one transaction (PostgreSQL's lock table is sized for 64 a connection: max_locks_per_transaction)
CHUNK = 50
