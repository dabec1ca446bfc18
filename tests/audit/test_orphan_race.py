"""The fixity sweep's orphan check never reports an upload that finished while the store was being listed.
An upload stores its object and then commits its record; a sweep that read the records before, and listed
the store after, saw an object without a record and raised an integrity incident that stayed (the
multi-host fault test met it under CI's load, with the grace at 0)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodia_wire import fingerprint
from evidence_server.context import ServerContext
from evidence_server.fixity.service import sweep
from evidence_server.storage.local import LocalStore
from evidence_server.uploads.models import IntegrityIncident
from tests.cases.conftest import World, make_world
from tests.conftest import _live
from tests.server.test_station_flow import Station
from tests.support.databases import PostgresTemplates


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url, fixity_orphan_grace_s=0)


def test_an_upload_that_finishes_while_the_store_is_listed_is_no_orphan(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.recording(os.urandom(5000))  # one already there: the sweep has something to read
    data = os.urandom(7000)
    fp = fingerprint.of_bytes(data)
    staged = world.settings.data_dir / "staged-late"
    staged.write_bytes(data)
    key = world.ctx.store.put_verified(staged, fp.blake3_hex, fp.sha256_hex, fp.size)  # type: ignore[attr-defined]
    past = time.time() - 2  # stored before the sweep began (S3 tells the time in whole seconds)
    os.utime(world.ctx.store.path_of(key), (past, past))  # type: ignore[attr-defined]
    listing = type(world.ctx.store).iter_keys
    finished: list[int] = []

    def listed_while_an_upload_finishes(store: Any) -> Iterator[tuple[str, int, Any]]:
        # the upload commits its record after the sweep read the records, before it lists the store
        finished.append(world.recording(data))
        yield from listing(store)

    monkeypatch.setattr(world.ctx.store, "iter_keys", listed_while_an_upload_finishes.__get__(world.ctx.store))
    report = sweep(world.ctx)
    assert finished and report.orphan_objects == []
    with world.session() as s:
        assert s.query(IntegrityIncident).count() == 0
    # a real orphan is still reported
    monkeypatch.undo()
    key = "blake3/ee/ee/" + "e" * 64
    root = world.settings.storage_dir
    assert root is not None
    (root / "blake3" / "ee" / "ee").mkdir(parents=True)
    (root / key).write_bytes(b"nobody's recording")
    assert sweep(world.ctx).orphan_objects == [key]


@pytest.mark.postgres
def test_a_sweep_meeting_an_upload_between_its_storing_and_its_commit_waits_for_the_commit(
    tmp_path: Path, postgres_templates: PostgresTemplates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the re-look above does not close: the upload has stored its object and not yet committed
    its record when the sweep looks again. A real upload through the API, paused right after its object
    is stored; the sweep (grace 0) runs then. It must wait for the upload's commit, then place the object.
    Without the lock the sweep ends at once and names the upload's object an orphan (seen). PostgreSQL
    only: SQLite has no such locks, and relies on the orphan grace (an hour by default)."""
    server = _live(tmp_path, postgres_templates.fresh(), CUSTODIA_FIXITY_ORPHAN_GRACE_S="0")
    try:
        path, data = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4", os.urandom(60_000)
        fp = fingerprint.of_bytes(data)
        settings = server.settings()
        assert settings.fixity_orphan_grace_s == 0
        outcome: dict[str, Any] = {}

        def sweep_now() -> None:
            ctx = ServerContext(settings)
            try:
                outcome["orphans"] = sweep(ctx).orphan_objects
            finally:
                ctx.close()

        store_it = LocalStore.put_verified

        def stored_then_swept(store: LocalStore, staged: Path, b3: str, sha: str, size: int) -> str:
            key = store_it(store, staged, b3, sha, size)
            if b3 == fp.blake3_hex:
                sweeping = threading.Thread(target=sweep_now)
                sweeping.start()
                sweeping.join(timeout=3.0)  # the upload's record is not committed before this returns
                outcome["ended_before_the_commit"] = not sweeping.is_alive()
                outcome["thread"] = sweeping
            return key

        monkeypatch.setattr(LocalStore, "put_verified", stored_then_swept)
        st = Station(server)
        st.open({path: data})
        assert st.upload(path, data).headers["Custodia-Verified"] == "true"
        outcome["thread"].join(timeout=30)
        assert outcome["ended_before_the_commit"] is False, f"the sweep did not wait: {outcome}"
        assert outcome["orphans"] == []
        ctx = ServerContext(settings)
        try:
            with ctx.sessionmaker() as s:
                assert s.query(IntegrityIncident).count() == 0
        finally:
            ctx.close()
    finally:
        server.stop()
