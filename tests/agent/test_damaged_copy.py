"""A station set to wipe, and a server whose stored copy of a device file is damaged: the device file is
only wiped once a fresh delivery of it repaired the stored copy (issue 14: the last good copy)."""

from __future__ import annotations

from pathlib import Path

from custodia_wire.fingerprint import of_bytes
from evidence_server.storage import object_key
from ingest_agent.journal import TransferState
from ingest_agent.pipeline import ingest_volume
from ingest_agent.transfer import Station
from tests.agent.conftest import Recorder
from tests.agent.test_end_to_end import enrolled, server_recordings, station  # noqa: F401  (fixtures)
from tests.support.damage import flipped
from tests.support.live import LiveServer


def test_a_damaged_copy_is_repaired_before_the_device_file_is_wiped(
    recorder: Recorder,
    station: Station,
    live_server: LiveServer,  # noqa: F811
) -> None:
    rel = recorder.add(1, 400_000)
    recorder.add(2, 100_000)
    data = recorder.path(rel).read_bytes()
    station.settings.wipe_after_receipt = False
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE

    stored = Path(live_server.settings().storage_dir) / object_key(of_bytes(data).blake3_hex)  # type: ignore[arg-type]
    stored.chmod(0o644)
    stored.write_bytes(flipped(data))  # the disk flipped the first byte
    rec = server_recordings(live_server)[rel]
    assert live_server.get(f"/api/v1/recordings/{rec['id']}/content").status_code == 409  # noticed, marked

    station.settings.wipe_after_receipt = True
    report = ingest_volume(recorder.root, station=station)
    assert report.state == TransferState.DONE, report.error
    assert stored.read_bytes() == data  # the station delivered the bytes again: the copy is repaired
    assert live_server.get(f"/api/v1/recordings/{rec['id']}").json()["fixity_state"] == "ok"
    entries = live_server.get("/api/v1/audit/entries", params={"limit": 1000}).json()["items"]
    repaired = next(e["seq"] for e in entries if e["action"] == "recording.repaired")
    receipt = [e["seq"] for e in entries if e["action"] == "transfer.receipt"][-1]
    assert repaired < receipt  # intact again before the receipt that let the station wipe
    assert recorder.snapshot() == {}  # both wiped: the repaired one and the one held intact all along
