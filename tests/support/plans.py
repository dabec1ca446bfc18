"""How PostgreSQL plans a statement the product runs: taken as it runs, planned as a prepared statement."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine


def statement_of(engine: Engine, run: Callable[[], Any], table: str, needle: str) -> tuple[str, dict[str, Any]]:
    """The one statement over ``table``, with ``needle`` in its text, that ``run()`` executed, and its
    parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if re.search(rf"\bFROM {table}\b", statement) and needle in statement:
            seen.append((statement, dict(parameters or {})))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) == 1, seen
    return seen[0]


def generic_plan(engine: Engine, statement: str, parameters: dict[str, Any]) -> str:
    """The plan PostgreSQL makes for the statement once a driver has prepared it: generic, blind to the
    bound values (so a partial index is used only where the statement's own text implies its condition).
    Sequential scans are off, or a test's small table would be read whole whatever the indexes."""
    names: list[str] = []

    def placeholder(m: re.Match[str]) -> str:
        names.append(m.group(1))
        return f"${len(names)}"

    numbered = re.sub(r"%\((\w+)\)s", placeholder, statement)
    args = ", ".join(repr(parameters[n]) if isinstance(parameters[n], int) else f"'{parameters[n]}'" for n in names)
    with engine.connect() as conn:
        conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        conn.execute(text("SET enable_seqscan = off"))
        conn.exec_driver_sql(f"PREPARE planned AS {numbered}")
        plan = conn.exec_driver_sql(f"EXPLAIN EXECUTE planned{f'({args})' if args else ''}").scalars().all()
        conn.rollback()
    return "\n".join(plan)
