"""Unplugged mid-copy, full disks on both sides, bytes flipped in transit and in storage.

Each fault gives a clear error, loses nothing, and the transfer goes on by itself once the fault is
gone. Full disks are injected (a spool quota; ENOSPC raised at the write into the spool, the
server's staging area and its object store): no small file system can be mounted here.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from custodia_wire.fingerprint import of_bytes
from evidence_server.context import ServerContext
from evidence_server.fixity.service import sweep
from evidence_server.storage.base import object_key
from evidence_server.uploads.models import IntegrityIncident
from ingest_agent import client as client_mod
from ingest_agent import copy as copy_mod
from ingest_agent.journal import FileState, TransferState
from ingest_agent.pipeline import DockSession, ingest_volume, open_transfer
from ingest_agent.transfer import Station, recover
from tests.agent.conftest import Recorder
from tests.agent.test_end_to_end import server_recordings
from tests.faults.conftest import count
from tests.support.live import LiveServer


def everything_arrived_once(recorder: Recorder, contents: dict[str, bytes], server: LiveServer) -> None:
    held = server_recordings(server)
    assert sorted(held) == sorted(contents)
    for rel, data in contents.items():
        assert held[rel]["blake3"] == of_bytes(data).blake3
    assert recorder.snapshot() == {}  # wiped, each only after its receipt


def incidents(server: LiveServer) -> list[IntegrityIncident]:
    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as session:
        rows = list(session.scalars(select(IntegrityIncident)))
    ctx.close()
    return rows


# --- unplugged ---------------------------------------------------------------------------------


class Unplugging:
    """A driver whose volume is pulled away (the mount point vanishes) while the second file is read."""

    def __init__(self, driver: Any, root: Path, eio: bool) -> None:
        self.driver, self.root, self.eio = driver, root, eio
        self.away = root.with_name(root.name + "-unplugged")
        self.opened = 0

    def __enter__(self) -> Unplugging:
        self.driver.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver, name)

    def open_recording(self, path: str) -> Any:
        source, outer = self.driver.open_recording(path), self
        outer.opened += 1
        nth = outer.opened

        class Source:
            reads = 0

            def readinto(self, view: memoryview) -> int:
                Source.reads += 1
                if nth == 2 and Source.reads == 2 and outer.root.exists():
                    os.rename(outer.root, outer.away)  # the cable is pulled
                if nth == 2 and outer.eio and not outer.root.exists():  # what a USB disk read gives then
                    raise source._gone(OSError(errno.EIO, "Input/output error"))
                return int(source.readinto(view))

            def __enter__(self) -> Source:
                return self

            def __exit__(self, *exc: object) -> None:
                source.close()

        return Source()

    def plug_back(self) -> None:
        os.rename(self.away, self.root)


@pytest.mark.parametrize("eio", [False, True], ids=["mount-gone", "read-error"])
def test_unplugged_mid_copy_never_counts_the_partial_and_resumes_at_the_next_dock(
    recorder: Recorder, station: Station, live_server: LiveServer, eio: bool
) -> None:
    contents = {recorder.add(seq, 400_000): b"" for seq in (1, 2, 3)}
    contents = {rel: recorder.path(rel).read_bytes() for rel in contents}
    first, second, _third = sorted(contents)
    driver = Unplugging(recorder.driver(), recorder.root, eio)
    with driver:
        dock = open_transfer(station, driver, str(recorder.root))
        DockSession(station, driver, dock, None, threading.Event()).run()
    count("faults injected: unplug mid-copy")

    files = {f.path: f for f in station.journal.files(dock.transfer_id)}
    assert files[second].state == FileState.PENDING and files[second].blake3 is None  # the partial is nothing
    assert "undocked" in (station.journal.transfer(dock.transfer_id).error or "")
    assert not list(station.spool.directory.glob("*.part"))
    assert second not in server_recordings(live_server)
    driver.plug_back()
    assert sorted(recorder.snapshot()) == sorted(contents)  # nothing wiped from a device that went away

    recover(station)
    report = ingest_volume(recorder.root, station=station)  # the next docking

    assert report.state == TransferState.DONE, report.error
    assert first in server_recordings(live_server)
    everything_arrived_once(recorder, contents, live_server)
    count("faults survived: unplug mid-copy")


# --- full disks ------------------------------------------------------------------------------------


def test_spool_quota_full_waits_with_a_clear_error_and_resumes_when_room_returns(
    recorder: Recorder, station: Station, live_server: LiveServer
) -> None:
    contents = {recorder.add(seq, 300_000): b"" for seq in (1, 2)}
    contents = {rel: recorder.path(rel).read_bytes() for rel in contents}
    station.spool.max_bytes = 250_000  # smaller than any one recording
    before = recorder.snapshot()

    report = ingest_volume(recorder.root, station=station)
    count("faults injected: spool full (quota)")

    assert report.state == TransferState.WAITING
    assert report.error is not None and report.error.startswith("spool full")
    assert recorder.snapshot() == before
    station.spool.max_bytes = None  # room again
    report = ingest_volume(recorder.root, station=station)
    assert report.state == TransferState.DONE, report.error
    everything_arrived_once(recorder, contents, live_server)
    count("faults survived: spool full (quota)")


def test_spool_disk_full_mid_copy_waits_and_resumes(
    recorder: Recorder, station: Station, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {recorder.add(seq, 200_000): b"" for seq in (1, 2, 3)}
    contents = {rel: recorder.path(rel).read_bytes() for rel in contents}
    written = 0
    real_write = copy_mod.write_block

    def write_until_full(fd: int, block: memoryview) -> None:
        nonlocal written
        if written + len(block) > 300_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        written += len(block)
        real_write(fd, block)

    monkeypatch.setattr(copy_mod, "write_block", write_until_full)
    report = ingest_volume(recorder.root, station=station)
    count("faults injected: spool ENOSPC")
    assert report.state == TransferState.WAITING
    assert report.error == "spool full: the remaining files stay on the device until there is room"
    assert not list(station.spool.directory.glob("*.part"))
    assert len(recorder.snapshot()) >= 2  # what was not receipted is still there

    monkeypatch.setattr(copy_mod, "write_block", real_write)
    recover(station)
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE
    everything_arrived_once(recorder, contents, live_server)
    count("faults survived: spool ENOSPC")


class FullDisk:
    """``os`` as a module sees it, except that ``names`` fail with ENOSPC while ``full`` is set."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names, self.full, self.refused = names, True, 0

    def module(self) -> types.SimpleNamespace:
        proxy = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
        for name in self.names:
            real = getattr(os, name)

            def failing(*args: Any, _real: Any = real, **kw: Any) -> Any:
                if self.full:
                    self.refused += 1
                    raise OSError(errno.ENOSPC, "No space left on device")
                return _real(*args, **kw)

            setattr(proxy, name, failing)
        return proxy


@pytest.mark.parametrize(
    "where,module,names,message",
    [
        ("staging", "evidence_server.uploads.receiver", ("write",), "server staging area is full"),
        ("object store", "evidence_server.storage.local", ("replace", "copy_file_range"), "evidence storage is full"),
    ],
    ids=["staging", "object-store"],
)
def test_server_disk_full_refuses_with_507_and_the_station_resumes_when_room_returns(
    recorder: Recorder,
    station: Station,
    live_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
    module: str,
    names: tuple[str, ...],
    message: str,
) -> None:
    contents = {recorder.add(seq, 150_000): b"" for seq in (1, 2)}
    contents = {rel: recorder.path(rel).read_bytes() for rel in contents}
    disk = FullDisk(names)
    monkeypatch.setattr(f"{module}.os", disk.module())
    with caplog.at_level(logging.WARNING, logger="ingest_agent"):
        report = ingest_volume(recorder.root, station=station)
    count(f"faults injected: server {where} ENOSPC")

    assert report.state == TransferState.WAITING and disk.refused > 0
    assert any("507" in r.getMessage() and message in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ][-5:]
    assert server_recordings(live_server) == {}
    assert sorted(recorder.snapshot()) == sorted(contents)  # no receipt, no wipe

    disk.full = False  # room again
    recover(station)
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE
    everything_arrived_once(recorder, contents, live_server)
    count(f"faults survived: server {where} ENOSPC")


# --- flipped bytes ---------------------------------------------------------------------------------


def test_a_byte_flipped_in_transit_voids_that_upload_and_a_fresh_one_succeeds(
    recorder: Recorder, station: Station, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = recorder.add(1, 200_000)
    contents = {rel: recorder.path(rel).read_bytes()}
    real_pieces = client_mod._SpoolReader.pieces
    flipped = 0

    def flip_once(reader: Any, offset: int, length: int, on_offset: Any) -> Any:
        nonlocal flipped
        for piece in real_pieces(reader, offset, length, on_offset):
            if not flipped and piece:
                flipped += 1
                piece = bytes([piece[0] ^ 0x01]) + piece[1:]  # a bit flipped on the wire
            yield piece

    monkeypatch.setattr(client_mod._SpoolReader, "pieces", flip_once)
    report = ingest_volume(recorder.root, station=station)
    count("faults injected: byte flipped in transit")

    assert flipped == 1 and report.state == TransferState.DONE, report.error
    assert [i.kind for i in incidents(live_server)] == ["upload_digest_mismatch"]
    everything_arrived_once(recorder, contents, live_server)
    count("faults survived: byte flipped in transit")


def test_a_byte_flipped_in_storage_is_flagged_by_fixity_and_never_served(
    recorder: Recorder, station: Station, live_server: LiveServer
) -> None:
    rels = [recorder.add(seq, 50_000) for seq in (1, 2)]
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE
    held = server_recordings(live_server)
    victim = held[rels[0]]
    ctx = ServerContext(live_server.settings().model_copy(update={"fixity_bytes_per_second": 0}))
    path = ctx.settings.storage_dir / object_key(victim["blake3"].removeprefix("blake3:"))  # type: ignore[operator]
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(12_345)
        b = f.read(1)
        f.seek(12_345)
        f.write(bytes([b[0] ^ 0x80]))
    count("faults injected: byte flipped in storage")

    result = sweep(ctx)
    ctx.close()
    assert result.failed == [victim["id"]] and not result.missing
    assert live_server.get(f"/api/v1/recordings/{victim['id']}/content").status_code == 409
    assert live_server.get(f"/api/v1/recordings/{held[rels[1]]['id']}/content").status_code == 200
    assert "fixity_mismatch" in [i.kind for i in incidents(live_server)]
    count("faults survived: byte flipped in storage")
