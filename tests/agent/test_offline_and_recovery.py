"""What the station does without its server, and how it picks up after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

from device_drivers.errors import DeviceGoneError
from ingest_agent.journal import FileState, TransferState
from ingest_agent.pipeline import DockSession, ingest_volume, open_transfer
from ingest_agent.transfer import Station, recover, release_spool
from tests.agent.conftest import Recorder, Tampering


def spool_files(station: Station) -> list[str]:
    return sorted(p.name for p in station.spool.directory.iterdir())


def test_offline_docking_copies_everything_into_the_spool_and_touches_nothing(
    recorder: Recorder, offline_station: Station
) -> None:
    for seq, size in ((1, 1000), (2, 0), (3, 300_000)):
        recorder.add(seq, size)
    offline_station.settings.wipe_after_receipt = True
    before = recorder.snapshot()

    report = ingest_volume(recorder.root, station=offline_station)

    assert report.state == TransferState.WAITING
    assert report.files == {"copied": 3}
    assert report.receipt is None
    assert recorder.snapshot() == before  # no receipt, no wipe
    files = offline_station.journal.files(report.transfer_id)
    assert spool_files(offline_station) == sorted(Path(f.spool_path or "").name for f in files)
    assert all(f.blake3 and f.sha256 and f.upload_url is None for f in files)


def test_zero_length_recordings_are_copied_like_any_other(recorder: Recorder, offline_station: Station) -> None:
    rel = recorder.add(1, 0)
    report = ingest_volume(recorder.root, station=offline_station)
    (rec,) = offline_station.journal.files(report.transfer_id)
    assert (rec.path, rec.size, rec.state) == (rel, 0, FileState.COPIED)
    assert rec.blake3 == "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_recovery_keeps_unreceipted_copies_and_drops_partials(recorder: Recorder, offline_station: Station) -> None:
    recorder.add(1, 1000)
    recorder.add(2, 2000)
    report = ingest_volume(recorder.root, station=offline_station)
    spool = offline_station.spool
    (spool.directory / "0000000099.part").write_bytes(b"half a copy")

    outcome = recover(offline_station)

    assert outcome == {report.transfer_id: TransferState.WAITING}
    assert not (spool.directory / "0000000099.part").exists()
    assert [f.state for f in offline_station.journal.files(report.transfer_id)] == ["copied", "copied"]
    assert len(spool_files(offline_station)) == 2


def test_recovery_notices_a_lost_spool_copy_and_an_unrecorded_one(recorder: Recorder, offline_station: Station) -> None:
    recorder.add(1, 1000)
    recorder.add(2, 2000)
    journal = offline_station.journal
    with recorder.driver() as driver:
        dock = open_transfer(offline_station, driver, str(recorder.root))
    first, second = journal.files(dock.transfer_id)
    # crash 1: the copy of the second file was renamed into place but the journal never heard of it
    offline_station.spool.final_path(second.id).write_bytes(b"complete but unrecorded")
    # crash 2: the first file's spool copy vanished (disk trouble, operator)
    journal.move(
        first.id,
        FileState.COPIED,
        blake3="blake3:" + "0" * 64,
        sha256="sha256:" + "0" * 64,
        copied_at="2026-11-21T10:00:00Z",
        spool_path=str(offline_station.spool.final_path(first.id)),
    )

    recover(offline_station)

    lost = journal.file(first.id)
    assert (lost.state, lost.retryable, lost.spool_path) == (FileState.FAILED, True, None)
    assert "spool copy lost" in (lost.reason or "")
    assert journal.file(second.id).state == FileState.PENDING
    assert spool_files(offline_station) == []


def test_release_deletes_only_copies_a_receipt_confirmed(recorder: Recorder, offline_station: Station) -> None:
    recorder.add(1, 10)
    recorder.add(2, 20)
    report = ingest_volume(recorder.root, station=offline_station)
    journal = offline_station.journal
    a, b = journal.files(report.transfer_id)
    journal.store_receipt(
        report.transfer_id, {"files": []}, {a.path: {"size": a.size, "blake3": a.blake3, "sha256": a.sha256}}, [b.path]
    )

    release_spool(offline_station, report.transfer_id)

    assert journal.file(a.id).spool_path is None and not Path(a.spool_path or "").exists()
    assert journal.file(b.id).spool_path and Path(b.spool_path or "").exists()


def test_a_full_spool_stops_copying_and_leaves_the_device_as_it_was(
    recorder: Recorder, offline_station: Station
) -> None:
    for seq in range(1, 5):
        recorder.add(seq, 100_000)
    offline_station.spool.max_bytes = 250_000
    before = recorder.snapshot()

    report = ingest_volume(recorder.root, station=offline_station)

    assert report.state == TransferState.WAITING
    assert report.error is not None and report.error.startswith("spool full")
    assert report.files == {"copied": 2, "pending": 2}
    assert len(spool_files(offline_station)) == 2
    assert recorder.snapshot() == before


def test_device_unplugged_mid_copy_marks_the_docking_interrupted_and_counts_nothing_partial(
    recorder: Recorder, offline_station: Station
) -> None:
    for seq in range(1, 4):
        recorder.add(seq, 200_000)
    calls = 0

    def unplug_during_second_file() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DeviceGoneError("volume unplugged")

    offline_station.settings.copy_block_bytes = 64 * 1024
    driver = Tampering(recorder.driver(), unplug_during_second_file)
    with driver:
        dock = open_transfer(offline_station, driver, str(recorder.root))
        DockSession(offline_station, driver, dock, None, threading.Event()).run()

    files = offline_station.journal.files(dock.transfer_id)
    assert [f.state for f in files] == ["copied", "pending", "pending"]
    assert len(spool_files(offline_station)) == 1
    assert "undocked" in (offline_station.journal.transfer(dock.transfer_id).error or "")
