"""A hostile recorder volume, all the way through the agent to the server: every oddity is contained.

Each bad entry ends as a clear record (in the transfer's ``rejected`` list on the server, with its
reason) and stays on the device; nothing outside the volume is read; the good recordings, empty
ones included, are transferred and wiped as usual.

Decisions documented here:
- A file above ``max_recording_bytes`` (64 GiB by default; a sparse 100 GB file claims more) is not
  read at all: it is reported as rejected ("too large") and left on the device. With the limit
  raised, the spool's room check refuses it before a byte is read ("spool full"), so the
  docking waits with that error and the device is untouched.
- 100,000 tiny files: indexing, journaling and registering the transfer are checked here (well
  within 60 s); copying and uploading all of them is left to the soak script (scripts/soak).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from device_drivers import FolderDriver, UnsafeEntryError
from evidence_server.context import ServerContext
from evidence_server.transfers.models import Transfer
from ingest_agent.journal import FileState, TransferState
from ingest_agent.pipeline import ingest_volume, open_transfer
from ingest_agent.transfer import Station, register
from tests.agent.conftest import OFFICER, SERIAL, Recorder
from tests.agent.test_end_to_end import server_recordings
from tests.faults.conftest import count
from tests.support.live import LiveServer

DAY = "DCIM/20261120"
GIB = 1024**3


def transfer_rejections(server: LiveServer, transfer_id: str) -> dict[str, str]:
    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as session:
        transfer = session.scalar(select(Transfer).where(Transfer.id == transfer_id))
        assert transfer is not None
        rejected = {r["path"]: r["reason"] for r in transfer.rejected}
    ctx.close()
    return rejected


def plant_hostile_entries(root: Path, outside: Path) -> dict[str, str]:
    """Everything a hostile or broken volume may hold; returns printable path → expected reason start."""
    day = root / DAY
    day.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.MP4"
    secret.write_bytes(b"outside the volume")
    expected: dict[str, str] = {}
    (day / "..\\..\\escape.MP4").write_bytes(b"x")  # traversal spelled with backslashes
    expected[f"{DAY}/..\\..\\escape.MP4"] = "unsafe name"
    (day / "LINK.MP4").symlink_to(secret)
    expected[f"{DAY}/LINK.MP4"] = "symlink"
    (root / "DCIM" / "outside").symlink_to(outside, target_is_directory=True)
    expected["DCIM/outside"] = "symlink"
    os.mkfifo(day / "PIPE.MP4")
    expected[f"{DAY}/PIPE.MP4"] = "fifo"
    try:
        os.mknod(day / "NULL.MP4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        expected[f"{DAY}/NULL.MP4"] = "device node"
    except PermissionError:
        pass
    with open(os.fsencode(day) + b"/BAD\xff\xfe.MP4", "wb") as f:  # not UTF-8
        f.write(b"x")
    expected[repr(f"{DAY}/BAD\udcff\udcfe.MP4")] = "unsafe name"
    gbk = "张三.MP4".encode("gbk")  # a name written by a host with a GBK code page
    with open(os.fsencode(day) + b"/" + gbk, "wb") as f:
        f.write(b"x")
    expected[repr(f"{DAY}/" + gbk.decode("utf-8", "surrogateescape"))] = "unsafe name"
    deep = day
    for i in range(5):  # a path longer than the 1024 characters a device path may have
        deep = deep / (f"{i}" * 250)
    deep.mkdir(parents=True)
    (deep / "DEEP.MP4").write_bytes(b"x")
    expected[deep.relative_to(root).as_posix()] = "unsafe name"  # the directory that crosses the limit
    (day / "NOTES.txt").write_text("not a recording")
    expected[f"{DAY}/NOTES.txt"] = "not a recording"
    with open(day / "HUGE.MP4", "wb") as f:
        f.truncate(100 * 10**9)  # sparse: 100 GB claimed, nothing on disk
    expected[f"{DAY}/HUGE.MP4"] = "too large"
    return expected


def test_a_hostile_volume_is_contained_with_a_record_for_each_oddity(
    recorder: Recorder, station: Station, live_server: LiveServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    good = [recorder.add(1, 60_000), recorder.add(2, 0)]  # an empty segment is evidence too
    fake = f"{DAY}/FAKE.MP4"
    (recorder.root / fake).write_bytes(b"this is text, not a video")  # right name, wrong content
    expected = plant_hostile_entries(recorder.root, outside)
    count("bad inputs tried: hostile volume entries", len(expected) + 2)

    started = time.monotonic()
    report = ingest_volume(recorder.root, station=station)
    assert time.monotonic() - started < 60

    assert report.state == TransferState.DONE, report.error
    held = server_recordings(live_server)
    assert sorted(held) == sorted([*good, fake])
    rejected = transfer_rejections(live_server, report.transfer_id)
    for path, reason in expected.items():
        match = [r for p, r in rejected.items() if p.startswith(path) or p == path]
        assert match and match[0].startswith(reason), (path, reason, rejected)
    # the good ones are wiped after their receipt; every hostile entry is still on the device
    for rel in [*good, fake]:
        assert not (recorder.root / rel).exists()
    assert (recorder.root / DAY / "HUGE.MP4").stat().st_size == 100 * 10**9
    assert (recorder.root / DAY / "LINK.MP4").is_symlink() and (
        outside / "secret.MP4"
    ).read_bytes() == b"outside the volume"
    assert stat.S_ISFIFO((recorder.root / DAY / "PIPE.MP4").lstat().st_mode)
    assert (recorder.root / DAY / "NOTES.txt").exists()
    assert not any(b"outside the volume" in p.read_bytes() for p in station.spool.directory.glob("*"))


def test_a_sparse_file_allowed_by_the_limit_still_never_fills_the_spool(
    recorder: Recorder, station: Station, live_server: LiveServer
) -> None:
    recorder.add(1, 10_000)
    with open(recorder.root / DAY / "HUGE.MP4", "wb") as f:
        f.truncate(100 * 10**9)
    station.settings.max_recording_bytes = 200 * GIB
    station.spool.max_bytes = 1 * GIB
    count("bad inputs tried: sparse 100 GB within the limit")

    started = time.monotonic()
    report = ingest_volume(recorder.root, station=station)
    assert time.monotonic() - started < 30  # refused by the room check, not read

    assert report.state == TransferState.WAITING
    assert report.error is not None and report.error.startswith("spool full")
    huge = next(f for f in station.journal.files(report.transfer_id) if f.path.endswith("HUGE.MP4"))
    assert huge.state == FileState.PENDING
    assert (recorder.root / DAY / "HUGE.MP4").stat().st_size == 100 * 10**9
    assert sum(p.stat().st_size for p in station.spool.directory.glob("*")) < GIB


def test_a_nul_in_a_name_is_refused_by_the_driver_and_the_server(recorder: Recorder, station: Station) -> None:
    """No file system here can hold a NUL in a name; a driver or a client could still produce one."""
    recorder.add(1, 10)
    with FolderDriver(recorder.root, serial=SERIAL, officer_no=OFFICER) as d:
        for name in (f"{DAY}/A\x00B.MP4", f"{DAY}/" + "L" * 300 + ".MP4"):
            with pytest.raises(UnsafeEntryError):
                d.open_recording(name)
    body = {
        "transfer_id": "0d6c3a57-5ac3-4b0b-9d7a-3f1c2e4b5a69",
        "docked_at": "2026-11-21T10:00:00Z",
        "device": {"serial": SERIAL, "family": "folder"},
        "index": [{"path": f"{DAY}/A\x00B.MP4", "size": 1}],
    }
    r = httpx.post(
        station.settings.server_url + "/api/v1/transfers",
        json=body,
        headers={"Authorization": f"Bearer {station.credentials.token}"},
    )
    assert r.status_code == 422
    count("bad inputs tried: NUL and overlong names", 3)


@pytest.mark.slow
def test_a_hundred_thousand_tiny_files_are_indexed_and_registered_within_a_minute(
    recorder: Recorder, station: Station, live_server: LiveServer
) -> None:
    n = 100_000
    for d in range(n // 1000):
        folder = recorder.root / "DCIM" / f"2026{d:04d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            fd = os.open(
                folder / f"{SERIAL}_{OFFICER}_20261120093000_{d * 1000 + i:06d}.MP4", os.O_WRONLY | os.O_CREAT, 0o644
            )
            os.write(fd, b"x")
            os.close(fd)
    count("bad inputs tried: tiny files on one volume", n)

    started, cpu = time.monotonic(), time.process_time()
    with recorder.driver() as driver:
        dock = open_transfer(station, driver, str(recorder.root))
    indexed = time.monotonic() - started
    assert register(station, dock)
    elapsed, used = time.monotonic() - started, time.process_time() - cpu
    print(
        f"100k files: indexed and journaled in {indexed:.1f} s, registered with the server (in this process) "
        f"in {elapsed:.1f} s, {used:.1f} s of CPU"
    )

    assert used < 60  # CPU time, agent and server together: the wall clock depends on what else runs here
    assert len(station.journal.files(dock.transfer_id, FileState.PENDING)) == n
    ctx = ServerContext(live_server.settings())
    with ctx.sessionmaker() as session:
        transfer = session.get(Transfer, dock.transfer_id)
        assert transfer is not None and transfer.files_total == n and len(transfer.index) == n
    ctx.close()
