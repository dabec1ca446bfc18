"""The fixity sweep's orphan check never reports an upload that finished while the store was being listed.
An upload stores its object and then commits its record; a sweep that read the records before, and listed
the store after, saw an object without a record and raised an integrity incident that stayed (the
multi-host fault test met it under CI's load, with the grace at 0)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodia_wire import fingerprint
from evidence_server.fixity.service import sweep
from evidence_server.uploads.models import IntegrityIncident
from tests.cases.conftest import World, make_world


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
