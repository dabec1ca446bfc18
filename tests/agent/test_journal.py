"""The journal: a durable state machine per file, the source of truth after a crash."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest_agent.journal import FileState, Journal, JournalError, TransferState

B3 = "blake3:" + "a" * 64
SHA = "sha256:" + "b" * 64


def payload(*files: tuple[str, int], serial: str = "DSJ0001") -> dict[str, Any]:
    return {
        "transfer_id": str(uuid.uuid4()),
        "docked_at": "2026-11-21T10:00:00Z",
        "device": {"serial": serial, "family": "folder", "model": None, "volume_label": None},
        "officer": {"number": "102345", "name": "张三"},
        "device_status": {},
        "index": [{"path": p, "size": s, "mtime": "2026-11-20T01:30:00Z"} for p, s in files],
        "rejected": [{"path": "DCIM/link.MP4", "reason": "symlink"}],
    }


def opened(journal: Journal, *files: tuple[str, int]) -> tuple[str, dict[str, int]]:
    dock = journal.open_transfer("/media/ZFY_DSJ0001", payload(*files))
    return dock.transfer_id, {f.path: f.id for f in journal.files(dock.transfer_id)}


def copied(journal: Journal, file_id: int, blake3: str = B3, sha256: str = SHA) -> None:
    journal.move(
        file_id,
        FileState.COPIED,
        blake3=blake3,
        sha256=sha256,
        copied_at="2026-11-21T10:00:01Z",
        spool_path=f"/spool/{file_id:010d}.rec",
    )


def test_a_docking_is_journaled_with_its_whole_index_before_any_copy(journal: Journal) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10), ("DCIM/b.MP4", 0))
    dock = journal.transfer(tid)
    assert dock.state == TransferState.DOCKED and dock.registered_at is None
    assert dock.payload["officer"]["name"] == "张三"
    assert [(f.path, f.size, f.state) for f in journal.files(tid)] == [
        ("DCIM/a.MP4", 10, "pending"),
        ("DCIM/b.MP4", 0, "pending"),
    ]


def test_the_happy_path_of_one_file(journal: Journal) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10))
    fid = ids["DCIM/a.MP4"]
    copied(journal, fid)
    journal.update(fid, upload_url="http://server/api/v1/uploads/u1")
    journal.move(fid, FileState.UPLOADED, verified=1, recording_id="17")
    receipt = {"format": "custodia.receipt/1", "files": []}
    confirmed = {"DCIM/a.MP4": {"path": "DCIM/a.MP4", "size": 10, "blake3": B3, "sha256": SHA, "recording_id": 17}}
    assert journal.store_receipt(tid, receipt, confirmed, []) == [fid]
    journal.move(fid, FileState.WIPED)
    rec = journal.file(fid)
    assert (rec.state, rec.recording_id, rec.verified, rec.upload_url) == (
        "wiped",
        "17",
        True,
        "http://server/api/v1/uploads/u1",
    )
    assert journal.transfer(tid).receipt == receipt


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (FileState.PENDING, FileState.UPLOADED),
        (FileState.PENDING, FileState.RECEIPTED),
        (FileState.PENDING, FileState.WIPED),
        (FileState.COPIED, FileState.WIPED),
        (FileState.UPLOADED, FileState.WIPED),
        (FileState.HELD, FileState.WIPED),
        (FileState.WIPED, FileState.PENDING),
    ],
)
def test_no_file_skips_a_step_and_nothing_is_wiped_without_a_receipt(journal: Journal, start: str, target: str) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10))
    fid = ids["DCIM/a.MP4"]
    path = {
        FileState.PENDING: [],
        FileState.HELD: [FileState.HELD],
        FileState.COPIED: [FileState.COPIED],
        FileState.UPLOADED: [FileState.COPIED, FileState.UPLOADED],
        FileState.WIPED: [FileState.COPIED, FileState.RECEIPTED, FileState.WIPED],
    }[start]
    for step in path:
        journal.move(fid, step)
    with pytest.raises(JournalError, match="not allowed"):
        journal.move(fid, target)
    assert journal.file(fid).state == start


def test_a_failed_state_change_changes_nothing(journal: Journal) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10))
    fid = ids["DCIM/a.MP4"]
    with pytest.raises(JournalError):
        journal.move(fid, FileState.COPIED, bogus="x")
    with pytest.raises(JournalError):
        journal.move(999, FileState.COPIED)
    assert journal.file(fid).state == FileState.PENDING


def test_only_pending_files_become_held_when_the_server_already_has_them(journal: Journal) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10), ("DCIM/b.MP4", 20), ("DCIM/c.MP4", 30))
    copied(journal, ids["DCIM/b.MP4"])
    held = journal.mark_registered(
        tid,
        [
            {"path": "DCIM/a.MP4", "size": 10, "blake3": B3, "recording_id": 1},
            {"path": "DCIM/b.MP4", "size": 20, "blake3": B3, "recording_id": 2},  # copy in hand: still goes up
            {"path": "DCIM/c.MP4", "size": 31, "blake3": B3, "recording_id": 3},  # other size: not the same file
        ],
    )
    assert held == [ids["DCIM/a.MP4"]]
    assert {f.path: f.state for f in journal.files(tid)} == {
        "DCIM/a.MP4": "held",
        "DCIM/b.MP4": "copied",
        "DCIM/c.MP4": "pending",
    }
    assert journal.transfer(tid).registered_at is not None


def test_a_receipt_confirms_only_files_whose_size_and_both_digests_match(journal: Journal) -> None:
    tid, ids = opened(journal, ("DCIM/a.MP4", 10), ("DCIM/b.MP4", 20), ("DCIM/c.MP4", 30))
    for fid in ids.values():
        copied(journal, fid)
        journal.move(fid, FileState.UPLOADED)
    confirmed = {
        "DCIM/a.MP4": {"size": 10, "blake3": B3, "sha256": SHA},
        "DCIM/b.MP4": {"size": 20, "blake3": "blake3:" + "f" * 64, "sha256": SHA},
        "DCIM/c.MP4": {"size": 31, "blake3": B3, "sha256": SHA},
    }
    assert journal.store_receipt(tid, {"files": []}, confirmed, ["DCIM/b.MP4"]) == [ids["DCIM/a.MP4"]]
    assert {f.path: f.state for f in journal.files(tid)} == {
        "DCIM/a.MP4": "receipted",
        "DCIM/b.MP4": "uploaded",
        "DCIM/c.MP4": "uploaded",
    }
    assert journal.transfer(tid).missing == ["DCIM/b.MP4"]


def test_every_change_is_committed_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    tid, ids = opened(j, ("DCIM/a.MP4", 10))
    copied(j, ids["DCIM/a.MP4"])
    j.update(ids["DCIM/a.MP4"], upload_url="http://s/api/v1/uploads/x")
    # no close(): a second connection (as after a crash) sees every committed change
    other = sqlite3.connect(path)
    row = other.execute("SELECT state, upload_url FROM files").fetchone()
    other.close()
    assert row == ("copied", "http://s/api/v1/uploads/x")
    j.close()
    assert Journal(path).file(ids["DCIM/a.MP4"]).state == FileState.COPIED


def test_journal_runs_in_wal_mode_with_full_sync(journal: Journal) -> None:
    db = journal._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_unfinished_docks_are_what_recovery_looks_at(journal: Journal) -> None:
    a, _ = opened(journal, ("DCIM/a.MP4", 1))
    b, _ = opened(journal, ("DCIM/b.MP4", 1))
    c, _ = opened(journal, ("DCIM/c.MP4", 1))
    journal.set_transfer_state(a, TransferState.DONE)
    journal.set_transfer_state(b, TransferState.WAITING, "server unreachable")
    journal.set_transfer_state(c, TransferState.INTERRUPTED, "device undocked during the copy")
    assert [d.transfer_id for d in journal.transfers(unfinished=True)] == [b]
    assert journal.transfer(b).error == "server unreachable"
