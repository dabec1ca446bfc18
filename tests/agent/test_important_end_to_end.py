"""The recorder's important mark (重要文件标记) from the card to the server: the station reads it, carries it
in the manifest (``files[].important``), the receipt covers it, and the server sets it on the recording."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from custodia_wire import documents
from ingest_agent.journal import TransferState
from ingest_agent.pipeline import ingest_volume
from ingest_agent.transfer import Station, manifest_of
from tests.agent.conftest import OFFICER, SERIAL, Recorder
from tests.agent.test_end_to_end import enrolled, server_recordings, station  # noqa: F401  (fixtures)
from tests.support.live import LiveServer


def mp4(path: Path, *metadata: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [a for m in metadata for a in ("-metadata", m)]
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=5",
            "-t",
            "0.4",
            *args,
            str(path),
        ],
        check=True,
    )


def test_marks_travel_from_the_card_to_the_recording(
    ffmpeg: None,
    recorder: Recorder,
    station: Station,  # noqa: F811
    live_server: LiveServer,
) -> None:
    day = recorder.root / "DCIM" / "20261120"
    name = f"{SERIAL}_{OFFICER}_202611200930{{:02d}}_{{:04d}}.MP4".format
    mp4(day / name(1, 1).replace(".MP4", "_IMP.MP4"), "title=1")  # each title makes its bytes its own
    mp4(recorder.root / "DCIM" / "重要" / name(2, 2), "title=2")
    mp4(day / name(3, 3), "comment=IMP", "title=3")
    mp4(day / name(4, 4), "comment=巡查", "title=4")
    marked = {
        f"DCIM/20261120/{name(1, 1).replace('.MP4', '_IMP.MP4')}": "file_name",
        f"DCIM/重要/{name(2, 2)}": "folder",
        f"DCIM/20261120/{name(3, 3)}": "mp4_tag",
    }
    plain = f"DCIM/20261120/{name(4, 4)}"

    report = ingest_volume(recorder.root, station=station)
    assert report.state == TransferState.DONE, report.error

    # the manifest the receipt was signed for carries the marks, and only where the device set one
    dock = station.journal.transfer(report.transfer_id)
    manifest = manifest_of(station, dock)
    assert {f.path: f.important for f in manifest.files} == {**marked, plain: None}
    assert (report.receipt or {})["manifest_blake3"] == manifest.digest()
    sent = manifest.to_dict()["files"]
    assert ["important" in f for f in sent].count(True) == 3  # an unmarked file's entry is as it always was

    held = server_recordings(live_server)
    for path, how in marked.items():
        rec = held[path]
        assert (rec["important"], rec["important_source"], rec["important_how"]) == (True, "device", how)
        assert rec["important_by_id"] is None and rec["important_at"] is not None
    assert held[plain]["important"] is False and held[plain]["important_source"] is None
    # the file name still dates the recording, mark or no mark
    assert held[next(iter(marked))]["name_started_at"].startswith("2026-11-20T01:30:01")
    listed = live_server.get("/api/v1/recordings", params={"device_serial": SERIAL, "important": "true"}).json()
    assert {r["original_path"] for r in listed["items"]} == set(marked)
    audited = live_server.get("/api/v1/audit/entries", params={"action": "recording.important_set"}).json()["items"]
    assert sorted(e["details"]["how"] for e in audited) == ["file_name", "folder", "mp4_tag"]
    assert {e["details"]["source"] for e in audited} == {"device"}

    # docked again (the station does not wipe): nothing is marked twice
    again = ingest_volume(recorder.root, station=station)
    assert again.state == TransferState.DONE
    assert server_recordings(live_server)[plain]["important"] is False
    again_audited = live_server.get("/api/v1/audit/entries", params={"action": "recording.important_set"}).json()
    assert len(again_audited["items"]) == 3

    # the marks as the server set them agree with what the log says of them (the daily rows check)
    from evidence_server.binding.service import check_rows
    from evidence_server.context import ServerContext

    ctx = ServerContext(live_server.settings())
    try:
        with ctx.sessionmaker() as session:
            report = check_rows(session)
        assert report.ok and report.rows["recordings"] == 4, [f.message() for f in report.findings]
    finally:
        ctx.close()


def test_manifests_without_marks_keep_their_bytes_and_bad_marks_are_refused() -> None:
    f = documents.ManifestFile(path="DCIM/a.MP4", size=3, blake3="blake3:" + "0" * 64, sha256="sha256:" + "0" * 64)
    m = documents.Manifest("t", {"station_id": 1}, {"serial": "S"}, {"number": None}, "2026-11-20T01:30:00Z", [f])
    legacy = {
        "transfer_id": "t",
        "station": {"station_id": 1},
        "device": {"serial": "S"},
        "officer": {"number": None},
        "docked_at": "2026-11-20T01:30:00Z",
        "files": [{"path": "DCIM/a.MP4", "size": 3, "blake3": f.blake3, "sha256": f.sha256, "mtime": None}],
        "format": documents.MANIFEST_FORMAT,
    }
    # byte for byte what a station before the mark sent, so old receipts and digests still check out
    assert m.to_bytes() == json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert documents.Manifest.from_dict(legacy).digest() == m.digest()
    marked = {**legacy, "files": [{**legacy["files"][0], "important": "mp4_tag"}]}
    assert documents.Manifest.from_dict(marked).files[0].important == "mp4_tag"
    assert documents.Manifest.from_dict(marked).digest() != m.digest()
    for bad in ("yes", "", "FILE_NAME", 1, True, ["file_name"], {"how": "file_name"}, "file_name\x00"):
        with pytest.raises(documents.DocumentError):
            documents.Manifest.from_dict({**legacy, "files": [{**legacy["files"][0], "important": bad}]})
