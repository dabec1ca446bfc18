"""The scheduled jobs find their work from an index, not by reading every recording (issue 18, migrations
0027 and 0029).

At 1M recordings the fixity sweep's choice of what to check sorted every recording (0.3 s a run), and the
SM3, block-map and media-profile backfills walked every recording to learn that none was left (0.2 to
0.5 s, every 10 or 15 minutes), pushing the whole table through the database's cache each time.

Each job's statement is taken as the job itself runs it, then planned the way PostgreSQL plans a statement
a driver has prepared (``tests.support.plans``): a partial index is used only when the statement's own
text implies the index's condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.custody.blockmaps import backfill as backfill_block_maps
from evidence_server.fixity.service import backfill_sm3, sweep
from evidence_server.media.probe import backfill_profiles
from tests.support.databases import PostgresTemplates
from tests.support.plans import generic_plan, statement_of

pytestmark = pytest.mark.postgres

#: job: (run it, the index its statement must read, a piece of that statement's text)
JOBS: dict[str, tuple[Callable[[ServerContext], Any], str, str]] = {
    "fixity sweep": (lambda ctx: sweep(ctx, files=50, orphans=False), "ix_recordings_fixity_due", "fixity_checked_at"),
    # its orphan check walks the records in the order of their keys, as the store lists them (migration 0029)
    "fixity sweep's orphan check": (lambda ctx: sweep(ctx, files=0), "ix_recordings_storage_key", 'COLLATE "C"'),
    "SM3 backfill": (lambda ctx: backfill_sm3(ctx, files=50), "ix_recordings_sm3_missing", "sm3 IS NULL"),
    "block-map backfill": (
        lambda ctx: backfill_block_maps(ctx, files=50),
        "ix_recordings_unmapped",
        "block_map_root IS NULL",
    ),
    "media-profile backfill": (
        lambda ctx: backfill_profiles(ctx, batch=50),
        "ix_recordings_unprofiled",
        "media_profile IS NULL",
    ),
}


@pytest.fixture
def ctx(postgres_templates: PostgresTemplates, tmp_path: Path) -> Iterator[ServerContext]:
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=postgres_templates.fresh(), environment="test"))
    yield ctx
    ctx.close()


@pytest.mark.parametrize("job", JOBS)
def test_each_job_finds_its_work_from_its_own_index_in_a_generic_plan(ctx: ServerContext, job: str) -> None:
    run, index, needle = JOBS[job]
    statement, parameters = statement_of(ctx.engine, lambda: run(ctx), "recordings", needle)
    plan = generic_plan(ctx.engine, statement, parameters)
    assert f"using {index} on recordings" in plan, plan
    assert "Sort" not in plan, plan  # the sweep's order comes from its index too


def test_the_indexes_leave_out_copies_no_longer_sound(ctx: ServerContext) -> None:
    """Disposed recordings pile up year after year; an index holding them would put them first in the
    sweep's order for ever. The states the indexes leave out are those the jobs leave out."""
    from evidence_server.recordings.models import FIXITY_BAD, FIXITY_SOUND_SQL

    assert sorted(re.findall(r"'(\w+)'", FIXITY_SOUND_SQL)) == sorted(FIXITY_BAD)
    with ctx.engine.connect() as conn:
        defs = dict(
            conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'recordings' AND indexname = ANY(:n)"
                ),
                {"n": [index for _, index, _ in JOBS.values()]},
            ).all()
        )
    assert len(defs) == 5
    for name in ("ix_recordings_fixity_due", "ix_recordings_sm3_missing", "ix_recordings_unmapped"):
        assert all(f"'{state}'" in defs[name] for state in FIXITY_BAD), defs[name]
