"""A docked recorder all the way to the evidence server and back: the real server, over HTTP."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodia_wire import documents
from custodia_wire.fingerprint import of_bytes
from ingest_agent import client as client_mod
from ingest_agent.client import StationCredentials, enrol
from ingest_agent.config import AgentSettings
from ingest_agent.journal import FileState, TransferState
from ingest_agent.pipeline import ingest_volume
from ingest_agent.progress import DockProgress
from ingest_agent.transfer import Station, recover
from tests.agent.conftest import SERIAL, Recorder
from tests.support.damage import flipped
from tests.support.live import LiveServer


def agent_settings(tmp_path: Path, server: LiveServer, **overrides: object) -> AgentSettings:
    values: dict[str, object] = dict(
        server_url=server.url,
        data_dir=tmp_path / "agent",
        stability_seconds=0.0,
        spool_reserve_bytes=0,
        retry_attempts=3,
        retry_base_delay=0.05,
        upload_resume_attempts=3,
        progress_interval=0.0,
        station_name="station-e2e",
    )
    values.update(overrides)
    settings = AgentSettings(**values)  # type: ignore[arg-type]
    settings.prepare_dirs()
    return settings


@pytest.fixture
def enrolled(tmp_path: Path, live_server: LiveServer) -> AgentSettings:
    settings = agent_settings(tmp_path, live_server)
    enrol(live_server.url, live_server.enrolment_code("station-e2e"), station_file=settings.station_file)
    return settings


@pytest.fixture
def station(enrolled: AgentSettings) -> Iterator[Station]:
    st = Station.open(enrolled)
    yield st
    st.close()


def assert_receipt_confirms(confirmed: dict[str, dict], contents: dict[str, bytes]) -> None:
    """Each file's BLAKE3, SHA-256 and size in the receipt are those of the bytes on the device."""
    for rel, data in contents.items():
        fp = of_bytes(data)
        assert (confirmed[rel]["blake3"], confirmed[rel]["sha256"], confirmed[rel]["size"]) == (
            fp.blake3,
            fp.sha256,
            len(data),
        )


def server_recordings(server: LiveServer) -> dict[str, dict]:
    page = server.get("/api/v1/recordings", params={"device_serial": SERIAL, "limit": 500}).json()
    return {r["original_path"]: r for r in page["items"]}


def test_enrolment_keeps_the_token_private_and_pins_the_server_key(
    enrolled: AgentSettings, live_server: LiveServer
) -> None:
    creds = StationCredentials.load(enrolled.station_file)
    assert stat.S_IMODE(os.stat(enrolled.station_file).st_mode) == 0o600
    server_key = live_server.get("/api/v1/server-key").json()
    assert creds.server_public_key == server_key["public_key"]


def test_dock_to_receipt_to_wipe(recorder: Recorder, station: Station, live_server: LiveServer) -> None:
    files = {recorder.add(1, 300_000): None, recorder.add(2, 0): None, recorder.add(3, 5_000_000): None}
    contents = {rel: recorder.path(rel).read_bytes() for rel in files}
    station.settings.wipe_after_receipt = True
    seen: list[DockProgress] = []

    report = ingest_volume(recorder.root, station=station, listener=seen.append)

    assert report.state == TransferState.DONE, report.error
    assert report.files == {"wiped": 3}
    assert recorder.snapshot() == {}  # every recording left the device, and only after the receipt
    assert list(station.spool.directory.iterdir()) == []  # R6: no copy stays on the station
    confirmed = documents.confirmed_files(report.receipt or {}, station.client.public_key)
    held = server_recordings(live_server)
    assert_receipt_confirms(confirmed, contents)
    for rel, data in contents.items():
        assert held[rel]["blake3"] == of_bytes(data).blake3
        # the name says 2026-11-20 09:30:0N Beijing time: 01:30:0N UTC
        assert held[rel]["name_started_at"].startswith(f"2026-11-20T01:30:0{rel[-5]}")
    assert seen[-1].state == TransferState.DONE and seen[-1].files_done == 3


def test_redocking_transfers_only_new_recordings(
    recorder: Recorder, station: Station, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [recorder.add(1, 100_000), recorder.add(2, 200_000)]
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE
    new = recorder.add(3, 50_000)
    created: list[int] = []
    real_create = client_mod.StationClient.create_upload

    def spy(self: client_mod.StationClient, length: int, metadata: dict[str, str]) -> str:
        created.append(length)
        return real_create(self, length, metadata)

    monkeypatch.setattr(client_mod.StationClient, "create_upload", spy)
    report = ingest_volume(recorder.root, station=station)

    assert report.state == TransferState.DONE
    assert created == [50_000]
    by_path = {f.path: f.state for f in station.journal.files(report.transfer_id)}
    assert by_path == {first[0]: "held", first[1]: "held", new: "receipted"}
    assert set(server_recordings(live_server)) == {*first, new}
    assert len(recorder.snapshot()) == 3  # this station does not wipe


def test_redocking_with_wipe_wipes_what_an_earlier_docking_left(recorder: Recorder, station: Station) -> None:
    old = recorder.add(1, 100_000)
    assert ingest_volume(recorder.root, station=station).state == TransferState.DONE  # no wipe yet
    station.settings.wipe_after_receipt = True

    report = ingest_volume(recorder.root, station=station)

    assert report.files == {"wiped": 1}
    assert not recorder.path(old).exists()


def test_a_receipt_not_signed_by_the_pinned_key_wipes_nothing(
    recorder: Recorder, enrolled: AgentSettings, live_server: LiveServer
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    creds = StationCredentials.load(enrolled.station_file)
    impostor = documents.public_key_b64(Ed25519PrivateKey.generate().public_key())
    StationCredentials(**{**creds.__dict__, "server_public_key": impostor}).save(enrolled.station_file)
    recorder.add(1, 10_000)
    before = recorder.snapshot()
    enrolled.wipe_after_receipt = True

    report = ingest_volume(recorder.root, enrolled)

    assert report.state == TransferState.WAITING
    assert "does not verify" in (report.error or "")
    assert report.files == {"uploaded": 1}
    assert recorder.snapshot() == before
    assert len(list((enrolled.spool_dir).iterdir())) == 1  # the copy stays until a valid receipt


@pytest.mark.parametrize(("corruptions", "expected"), [(1, "receipted"), (2, "failed")])
def test_a_corrupted_upload_is_rejected_and_sent_again_once(
    recorder: Recorder,
    station: Station,
    live_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    corruptions: int,
    expected: str,
) -> None:
    good, bad = recorder.add(1, 10_000), recorder.add(2, 20_000)
    station.settings.wipe_after_receipt = True
    real_pieces = client_mod._SpoolReader.pieces
    left = {"n": corruptions}

    def corrupting(reader, offset: int, length: int, on_offset):  # type: ignore[no-untyped-def]
        for piece in real_pieces(reader, offset, length, on_offset):
            if length == 20_000 and left["n"] > 0:
                left["n"] -= 1
                piece = flipped(piece)  # one flipped byte on the wire
            yield piece

    monkeypatch.setattr(client_mod._SpoolReader, "pieces", corrupting)
    report = ingest_volume(recorder.root, station=station)

    states = {f.path: f for f in station.journal.files(report.transfer_id)}
    assert states[good].state == "wiped"
    assert states[bad].state == (expected if expected == "failed" else "wiped")
    if expected == "failed":
        assert "mismatch" in (states[bad].reason or "")
        assert recorder.path(bad).exists()  # never confirmed, never wiped
        assert set(server_recordings(live_server)) == {good}
    else:
        assert set(server_recordings(live_server)) == {good, bad}


def test_server_killed_mid_upload_resumes_from_its_offset_after_restart(
    tmp_path: Path, recorder: Recorder, live_server_process: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = live_server_process
    settings = agent_settings(
        tmp_path, server, upload_chunk_bytes=1024 * 1024, retry_attempts=2, upload_resume_attempts=1
    )
    enrol(server.url, server.enrolment_code("station-e2e"), station_file=settings.station_file)
    rel = recorder.add(1, 24 * 1024 * 1024)
    offsets: list[int] = []
    killed: list[bool] = []
    real_patch = client_mod.StationClient._patch

    def spy(self, url, fd, offset, length, on_offset):  # type: ignore[no-untyped-def]
        offsets.append(offset)
        if offset >= 12 * 1024 * 1024 and not killed:
            killed.append(True)
            server.kill()  # power cut on the server half-way through the file
        return real_patch(self, url, fd, offset, length, on_offset)

    monkeypatch.setattr(client_mod.StationClient, "_patch", spy)
    station = Station.open(settings)
    report = ingest_volume(recorder.root, station=station)
    station.close()  # the agent stops too; all it knows is in the journal
    assert report.state == TransferState.WAITING
    assert report.files == {"copied": 1}

    server.start()
    offsets.clear()
    station = Station.open(settings)
    outcome = recover(station)
    (rec,) = station.journal.files(report.transfer_id)
    station.close()

    assert outcome == {report.transfer_id: TransferState.DONE}
    assert rec.state == FileState.RECEIPTED
    assert offsets[0] >= 8 * 1024 * 1024  # resumed where the server's staging file ended, not at 0
    assert server_recordings(server)[rel]["size"] == 24 * 1024 * 1024
