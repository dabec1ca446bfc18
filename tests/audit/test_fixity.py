"""Fixity: stored recordings re-read and checked; a flipped byte is caught, reported and never served."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select

from evidence_server.audit.models import AuditEvent
from evidence_server.context import ServerContext
from evidence_server.fixity.service import Throttle, read_fingerprint, sweep
from evidence_server.storage.base import object_key
from evidence_server.storage.local import LocalStore
from evidence_server.uploads.models import IntegrityIncident
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer

FILES = {
    f"DCIM/20261121/DSJ0001_102345_2026112109{i}000_000{i}.MP4": bytes([i]) * 3000 + os.urandom(2000)
    for i in range(1, 4)
}


def stored(live_server: LiveServer) -> dict[str, dict]:
    items = live_server.get("/api/v1/recordings").json()["items"]
    return {r["original_path"].rsplit("/", 1)[-1]: r for r in items}


def test_a_flipped_byte_a_lost_object_and_an_orphan_are_all_found(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES)
    for path, data in FILES.items():
        st.upload(path, data)
    ctx = ServerContext(live_server.settings().model_copy(update={"fixity_orphan_grace_s": 0}))
    first = sweep(ctx)
    assert len(first.checked) == 3 and not (first.failed or first.missing or first.orphan_objects)

    recs = stored(live_server)
    tampered, lost, good = (recs[p.rsplit("/", 1)[-1]] for p in FILES)
    root = ctx.settings.storage_dir
    assert root is not None
    victim = root / object_key(tampered["blake3"].removeprefix("blake3:"))
    victim.chmod(0o644)  # stored objects are read-only: the attacker has to mean it
    with open(victim, "r+b") as f:
        f.seek(1234)
        byte = f.read(1)
        f.seek(1234)
        f.write(bytes([byte[0] ^ 0x01]))
    victim.chmod(0o444)
    (root / object_key(lost["blake3"].removeprefix("blake3:"))).unlink()
    orphan_key = "blake3/ee/ee/" + "e" * 64
    (root / "blake3" / "ee" / "ee").mkdir(parents=True)
    (root / orphan_key).write_bytes(b"nobody's recording")

    second = sweep(ctx)
    assert second.failed == [tampered["id"]] and second.missing == [lost["id"]]
    assert second.orphan_objects == [orphan_key]

    refused = live_server.get(f"/api/v1/recordings/{tampered['id']}/content")
    assert refused.status_code == 409 and "fixity" in refused.json()["detail"]
    assert (
        live_server.get(f"/api/v1/recordings/{tampered['id']}/content", headers={"Range": "bytes=0-99"}).status_code
        == 409
    )
    assert live_server.get(f"/api/v1/recordings/{lost['id']}/content").status_code == 409
    assert live_server.get(f"/api/v1/recordings/{good['id']}/content").status_code == 200
    assert live_server.get(f"/api/v1/recordings/{tampered['id']}").json()["fixity_state"] == "failed"

    third = sweep(ctx)  # idempotent: nothing new to report, bad stays bad
    assert third.checked == [good["id"]] and not (third.failed or third.missing)
    with ctx.sessionmaker() as s:
        incidents = s.execute(select(IntegrityIncident.kind, IntegrityIncident.recording_id)).all()
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert sorted(incidents, key=str) == sorted(
        [("fixity_mismatch", tampered["id"]), ("fixity_missing", lost["id"]), ("orphan_object", None)], key=str
    )
    assert {"recording.fixity_failed", "recording.fixity_missing", "fixity.sweep", "recording.content_refused"} <= set(
        actions
    )
    ctx.close()


def test_the_sweep_keeps_its_pace(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    staged = tmp_path / "staged"
    staged.write_bytes(b"x" * 300_000)
    key = store.put_verified(staged, "ab" * 32, "cd" * 32, 300_000)
    started = time.monotonic()
    got = read_fingerprint(store, key, Throttle(1_000_000))
    assert got is not None and got.size == 300_000
    assert time.monotonic() - started >= 0.28  # 300 kB at 1 MB/s
    assert read_fingerprint(store, "blake3/00/00/" + "0" * 64, Throttle(0)) is None


def test_files_per_run_limits_a_sweep(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES)
    for path, data in FILES.items():
        st.upload(path, data)
    ctx = ServerContext(live_server.settings())
    assert len(sweep(ctx, files=2).checked) == 2
    assert len(sweep(ctx, files=2).checked) == 2  # the least recently checked first
    assert len(sweep(ctx, files=1).checked) == 1
    ctx.close()
