"""The auditor's search of the log by the beginning of an actor's name or an action reads an index, whatever
the database's collation (issue 18, migration 0030).

What an auditor looks for is rare (one person's doings, the disposals). Without these indexes PostgreSQL
read the whole log for a rare one: 494 and 519 ms at 10M entries. The search's own statement is planned
with the values it is run with; sequential scans are switched off, or the planner would read this test's
small log whole whatever the indexes. The results are checked too, with a name holding LIKE's wildcards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evidence_server.audit.sequencer import sequence
from evidence_server.audit.service import record
from evidence_server.audit.viewer import Query, search
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from tests.support.databases import PostgresTemplates
from tests.support.plans import statement_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def ctx(postgres_templates: PostgresTemplates, tmp_path: Path) -> Iterator[ServerContext]:
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=postgres_templates.fresh(), environment="test"))
    people = [SimpleNamespace(id=i, username=name) for i, name in enumerate(("wang_li", "wangli", "zhao", "w%x"))]
    for n in range(40):
        who = people[n % len(people)]
        with ctx.sessionmaker() as s:
            record(s, ("case.view", "disposal.approved", "recording.view")[n % 3], object_id=n, actor=who)
            s.commit()
    sequence(ctx.engine)
    yield ctx
    ctx.close()


def plan_and_rows(ctx: ServerContext, q: Query) -> tuple[str, list[Any]]:
    rows: list[Any] = []

    def run() -> None:
        with ctx.sessionmaker() as s:
            rows.extend((e.actor_name, e.action) for e in search(s, q))

    statement, parameters = statement_of(ctx.engine, run, "audit_events", "LIKE")
    with ctx.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
        conn.rollback()
    return plan, rows


def test_a_search_by_the_beginning_of_a_name_reads_its_index(ctx: ServerContext) -> None:
    plan, rows = plan_and_rows(ctx, Query(actor="wang_"))
    assert "ix_audit_events_actor_prefix" in plan, plan
    assert {name for name, _ in rows} == {"wang_li"}  # "_" is a letter here, not LIKE's any-one-character
    plan, rows = plan_and_rows(ctx, Query(actor="w%"))
    assert "ix_audit_events_actor_prefix" in plan, plan
    assert {name for name, _ in rows} == {"w%x"}


def test_a_search_by_the_beginning_of_an_action_reads_its_index(ctx: ServerContext) -> None:
    plan, rows = plan_and_rows(ctx, Query(action="disposal."))
    assert "ix_audit_events_action_prefix" in plan, plan
    assert len(rows) == 13 and {action for _, action in rows} == {"disposal.approved"}
