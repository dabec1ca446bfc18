"""A table's rows for the rows check, ``BATCH`` at a time in id order, so memory stays bounded on a large site."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

BATCH = 1000


def batches(
    session: Session, model: Any, columns: tuple[str, ...] | None, ids: list[Any] | None = None, below: Any = 0
) -> Iterator[list[Any]]:
    """Every row of ``model``'s table (only those of ``ids``, when given): ORM objects, or plain rows of
    ``columns``. ``below``: a value below every id (0, or "" for string ids)."""
    selected = None if columns is None else [getattr(model, name) for name in columns]

    def read(where: ColumnElement[bool], limit: int | None = None) -> list[Any]:
        if selected is None:
            return list(session.scalars(select(model).where(where).order_by(model.id).limit(limit)))
        return list(session.execute(select(*selected).where(where).order_by(model.id).limit(limit)).all())

    if ids is not None:
        for i in range(0, len(ids), BATCH):
            rows = read(model.id.in_(ids[i : i + BATCH]))
            if rows:
                yield rows
            session.expunge_all()
        return
    last = below
    while rows := read(model.id > last, BATCH):
        yield rows
        last = rows[-1].id
        session.expunge_all()
