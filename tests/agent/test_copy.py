"""The single-pass copy: right digests, durable spool files, and nothing half-done left behind."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import blake3
import pytest

from device_drivers.errors import DeviceGoneError
from ingest_agent import copy as copy_mod
from ingest_agent.copy import (
    SourceChanged,
    Spool,
    SpoolFull,
    copy_recording,
    wait_until_stable,
)
from tests.agent.conftest import Recorder, Tampering

BLOCK = 64 * 1024


def copy_one(
    recorder: Recorder, rel: str, spool: Spool, file_id: int = 1, driver: Any = None, block_size: int = BLOCK
) -> copy_mod.CopyResult:
    with driver or recorder.driver() as d:
        return copy_recording(
            d, rel, expected=d.stat_recording(rel), spool=spool, file_id=file_id, block_size=block_size
        )


def spool_names(spool: Spool) -> list[str]:
    return sorted(p.name for p in spool.directory.iterdir())


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 123, 40 * BLOCK])
def test_digests_equal_hashlib_and_blake3_and_spool_holds_the_same_bytes(
    recorder: Recorder, spool: Spool, size: int
) -> None:
    rel = recorder.add(1, size)
    data = recorder.path(rel).read_bytes()

    result = copy_one(recorder, rel, spool)

    assert result.fingerprint.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.fingerprint.blake3 == "blake3:" + blake3.blake3(data).hexdigest()
    assert result.fingerprint.size == size
    assert result.spool_path.read_bytes() == data
    assert spool_names(spool) == [result.spool_path.name]


def test_spool_names_are_journal_ids_never_device_names(recorder: Recorder, spool: Spool) -> None:
    rel = recorder.add(7, 1000)
    odd = recorder.root / "DCIM" / "执法 记录;rm -rf.MP4"
    odd.write_bytes(b"x" * 10)

    a = copy_one(recorder, rel, spool, file_id=42)
    b = copy_one(recorder, "DCIM/执法 记录;rm -rf.MP4", spool, file_id=43)

    assert [a.spool_path.name, b.spool_path.name] == ["0000000042.rec", "0000000043.rec"]
    assert all(p.parent == spool.directory for p in (a.spool_path, b.spool_path))


def test_spool_file_and_directory_are_fsynced_before_the_copy_counts(
    recorder: Recorder, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = recorder.add(1, 3 * BLOCK)
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(copy_mod.os, "fsync", spy)
    result = copy_one(recorder, rel, spool, file_id=5)

    part = str(spool.directory / "0000000005.part")
    assert synced == [part, str(spool.directory)]  # data before the rename, directory after it
    assert result.spool_path.exists() and not Path(part).exists()


@pytest.mark.parametrize("size", [BLOCK // 2, 20 * BLOCK], ids=["small", "overlapped"])
def test_a_file_that_grows_during_the_copy_is_rejected_and_nothing_is_kept(
    recorder: Recorder, spool: Spool, size: int
) -> None:
    rel = recorder.add(1, size)

    def grow() -> None:
        with open(recorder.path(rel), "ab") as f:
            f.write(b"more footage" * 100)

    with pytest.raises(SourceChanged, match="file changed while copying"):
        copy_one(recorder, rel, spool, driver=Tampering(recorder.driver(), grow))
    assert spool_names(spool) == []


def test_a_file_touched_during_the_copy_is_rejected(recorder: Recorder, spool: Spool) -> None:
    rel = recorder.add(1, 20 * BLOCK)
    path = recorder.path(rel)

    def touch() -> None:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    with pytest.raises(SourceChanged):
        copy_one(recorder, rel, spool, driver=Tampering(recorder.driver(), touch))
    assert spool_names(spool) == []


def test_source_vanishing_mid_copy_discards_the_partial(recorder: Recorder, spool: Spool) -> None:
    rel = recorder.add(1, 20 * BLOCK)

    def unplug() -> None:
        raise DeviceGoneError("volume unplugged")

    with pytest.raises(DeviceGoneError):
        copy_one(recorder, rel, spool, driver=Tampering(recorder.driver(), unplug))
    assert spool_names(spool) == []


def test_volume_removed_mid_copy_is_device_gone(recorder: Recorder, spool: Spool) -> None:
    rel = recorder.add(1, 20 * BLOCK)
    moved = recorder.root.with_name("elsewhere")

    with pytest.raises(DeviceGoneError):
        copy_one(recorder, rel, spool, driver=Tampering(recorder.driver(), lambda: recorder.root.rename(moved)))
    assert spool_names(spool) == []


def test_quota_leaves_the_device_untouched_and_says_spool_full(recorder: Recorder, tmp_path: Path) -> None:
    rel = recorder.add(1, 10 * BLOCK)
    before = recorder.snapshot()
    spool = Spool(tmp_path / "small-spool", max_bytes=5 * BLOCK)

    with pytest.raises(SpoolFull, match="spool full"):
        copy_one(recorder, rel, spool)
    assert spool_names(spool) == []
    assert recorder.snapshot() == before


def test_disk_reserve_counts_like_a_quota(recorder: Recorder, tmp_path: Path) -> None:
    rel = recorder.add(1, 1000)
    spool = Spool(tmp_path / "s", reserve_bytes=Spool(tmp_path / "s").free_bytes())
    with pytest.raises(SpoolFull):
        copy_one(recorder, rel, spool)


@pytest.mark.parametrize("size", [BLOCK // 2, 20 * BLOCK], ids=["small", "overlapped"])
def test_enospc_while_writing_discards_the_partial_and_leaves_the_device_untouched(
    recorder: Recorder, spool: Spool, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    rel = recorder.add(1, size)
    before = recorder.snapshot()
    writes = 0
    real = copy_mod.write_block

    def full_disk(fd: int, block: memoryview) -> None:
        nonlocal writes
        writes += 1
        if writes == 2 or size < BLOCK:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, block)

    monkeypatch.setattr(copy_mod, "write_block", full_disk)
    with pytest.raises(SpoolFull) as caught:
        copy_one(recorder, rel, spool)
    assert caught.value.reason.startswith("spool full")
    assert spool_names(spool) == []
    assert recorder.snapshot() == before


def test_parallel_copies_cannot_reserve_more_than_the_quota(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=100)
    with spool.reservation(60):
        with pytest.raises(SpoolFull):
            spool.reservation(60).__enter__()
        with spool.reservation(40):
            assert spool.room() == 0
    assert spool.room() == 100


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_until_stable_returns_once_size_and_mtime_hold_still(recorder: Recorder) -> None:
    rel = recorder.add(1, 100)
    clock = Clock()
    with recorder.driver() as d:
        assert wait_until_stable(d, rel, seconds=2, timeout=10, clock=clock, sleep=clock.sleep) == d.stat_recording(rel)
    assert 2 <= clock.now < 3


def test_a_file_unchanged_since_the_dock_index_is_not_waited_for_again(recorder: Recorder) -> None:
    rel = recorder.add(1, 100)
    clock = Clock()
    with recorder.driver() as d:
        size, mtime = d.stat_recording(rel)
        listed = (size, copy_mod.mtime_iso(mtime))
        clock.now = 5.0  # the index was read at 0, five seconds ago
        assert wait_until_stable(
            d, rel, seconds=2, timeout=10, clock=clock, sleep=clock.sleep, listed=listed, listed_at=0.0
        ) == (size, mtime)
        assert clock.now == 5.0  # no wait at all
        # read one second ago: only the rest of the settling time is waited for
        assert (
            wait_until_stable(
                d, rel, seconds=2, timeout=10, clock=clock, sleep=clock.sleep, listed=listed, listed_at=4.0
            )[0]
            == size
        )
        assert 6.0 <= clock.now < 6.5
        # changed since it was listed: the whole settling time again
        with open(recorder.path(rel), "ab") as f:
            f.write(b"more")
        before = clock.now
        assert (
            wait_until_stable(
                d, rel, seconds=2, timeout=10, clock=clock, sleep=clock.sleep, listed=listed, listed_at=0.0
            )[0]
            == size + 4
        )
        assert clock.now - before >= 2


def test_a_file_still_being_written_never_settles(recorder: Recorder) -> None:
    rel = recorder.add(1, 100)
    clock = Clock()

    def write_more(seconds: float) -> None:
        clock.sleep(seconds)
        with open(recorder.path(rel), "ab") as f:
            f.write(b"x")

    with recorder.driver() as d, pytest.raises(SourceChanged, match="did not settle"):
        wait_until_stable(d, rel, seconds=2, timeout=10, clock=clock, sleep=write_more)


def test_stop_aborts_a_copy_without_leaving_a_partial(recorder: Recorder, spool: Spool) -> None:
    rel = recorder.add(1, 20 * BLOCK)
    stop = threading.Event()
    stop.set()
    with recorder.driver() as d, pytest.raises(copy_mod.CopyAborted):
        copy_recording(d, rel, expected=d.stat_recording(rel), spool=spool, file_id=1, block_size=BLOCK, stop=stop)
    assert spool_names(spool) == []


def test_sweeping_partials_spares_a_copy_in_progress(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    stale = spool.part_path(1)
    stale.write_bytes(b"left by a crash")
    with spool.reservation(10, file_id=2):
        spool.part_path(2).write_bytes(b"being written")
        assert spool.sweep_partials() == [stale]
        assert spool.part_path(2).exists()
