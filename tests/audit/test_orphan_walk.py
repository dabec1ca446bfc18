"""The fixity sweep's orphan check at a province's size (issue 18): the records and the store's listing are
walked side by side in the order of their keys, holding only what is reported.

Before, the check held every record's key (gigabytes at 10M recordings) and looked up each disposed
recording (its object removed on purpose) alone, every hour. Walking side by side is only right if both
sides really come in the same order: the stores' listings are checked against a sort, with names that
sort differently by bytes and by path, and a listing out of order stops the sweep instead of reporting
present objects as missing. On SQLite and PostgreSQL, the local store and S3 (moto).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import event, select

from evidence_server.fixity.service import sweep
from evidence_server.recordings.models import Recording
from evidence_server.storage.local import LocalStore
from evidence_server.storage.s3 import S3Store
from evidence_server.uploads.models import IntegrityIncident
from tests.cases.conftest import World, make_world

#: keys whose byte order differs from a walk of folders in name order ("-" and "." sort before "/")
AWKWARD = [
    "blake3/ab/cd/" + "1" * 64,
    "blake3/ab/cd-x/" + "2" * 64,
    "blake3/ab/cd.y",
    "blake3/ab/cd/0",
    "blake3/ab/c",
    "blake3/ab/cz/" + "3" * 64,
    "blake3/a",
    "blake3/b/" + "4" * 64,
    "blake3/00/00/" + "5" * 64,
]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url, fixity_orphan_grace_s=0)


def test_the_local_store_lists_its_keys_in_byte_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    for key in random.sample(AWKWARD, len(AWKWARD)):
        path = tmp_path / "objects" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "objects" / "blake3" / "ab" / "cd" / "half.part").write_bytes(b"a copy in progress")
    listed = [key for key, _size, _at in store.iter_keys()]
    assert listed == sorted(AWKWARD, key=lambda k: k.encode())


@pytest.mark.s3
def test_s3_lists_its_keys_in_byte_order(moto_s3: str, s3_bucket: str) -> None:
    client = boto3.client(
        "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    for key in random.sample(AWKWARD, len(AWKWARD)):
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    listed = [key for key, _size, _at in S3Store(client, s3_bucket).iter_keys()]
    assert listed == sorted(AWKWARD, key=lambda k: k.encode())


def _selects_during_the_sweep(world: World) -> tuple[int, Any]:
    seen: list[str] = []
    me = threading.get_ident()  # not the statements of tasks the uploads queued, running meanwhile

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == me and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(world.ctx.engine, "before_cursor_execute", count)
    try:
        report = sweep(world.ctx, files=0)
    finally:
        event.remove(world.ctx.engine, "before_cursor_execute", count)
    return len(seen), report


def _dispose(world: World, ids: list[int]) -> None:
    with world.session() as s:
        for rec in s.scalars(select(Recording).where(Recording.id.in_(ids))):
            rec.fixity_state = "disposed"
            world.ctx.store.delete(rec.storage_key)
        s.commit()


def test_disposed_recordings_cost_the_sweep_nothing_each_and_every_finding_stays(world: World) -> None:
    ids = [world.recording(os.urandom(3000 + i)) for i in range(30)]
    _dispose(world, ids[:5])
    few, report = _selects_during_the_sweep(world)
    assert report.orphan_objects == [] and report.missing == []
    _dispose(world, ids[5:25])
    many, report = _selects_during_the_sweep(world)
    assert report.orphan_objects == [] and report.missing == []
    assert many == few, "a statement per disposed recording"

    # what the check is for still holds: a lost object, an object nobody recorded, before and after the rest
    with world.session() as s:
        lost = s.get_one(Recording, ids[27])
        world.ctx.store.delete(lost.storage_key)
    root = world.settings.storage_dir
    assert root is not None
    strays = ["blake3/00/00/" + "0" * 64, "blake3/ff/ff/" + "f" * 64]
    for key in strays:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(b"nobody's recording")
    _, report = _selects_during_the_sweep(world)
    assert sorted(report.orphan_objects) == strays
    assert report.missing == [ids[27]]
    with world.session() as s:
        kinds = sorted(i.kind for i in s.scalars(select(IntegrityIncident)))
        assert kinds == ["fixity_missing", "orphan_object", "orphan_object"]
        assert s.get_one(Recording, ids[27]).fixity_state == "missing"
        assert s.get_one(Recording, ids[3]).fixity_state == "disposed"


def test_a_listing_out_of_order_stops_the_sweep_and_reports_nothing_missing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        world.recording(os.urandom(2000 + i))
    store = world.ctx.store
    listing = list(store.iter_keys())
    assert len(listing) == 6
    shuffled = listing[3:] + listing[:3]
    monkeypatch.setattr(store, "iter_keys", lambda: iter(shuffled))
    with pytest.raises(RuntimeError, match="not in the order of its keys"):
        sweep(world.ctx, files=0)
    with world.session() as s:
        assert s.scalars(select(IntegrityIncident)).all() == []
        assert {r.fixity_state for r in s.scalars(select(Recording))} == {"unchecked"}
