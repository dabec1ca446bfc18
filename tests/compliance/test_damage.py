"""A segment cut short at the source keeps the full duration in its header: the probe reads every
packet, records the recording as damaged at the source, and the compliance scan flags it with what
was found. Real files from ffmpeg, cut with the header intact."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from evidence_server.compliance.service import run_scan
from evidence_server.media.probe import decoded_to_end, probe_recording
from evidence_server.recordings.models import Recording
from evidence_server.uploads.models import IntegrityIncident
from tests.compliance.conftest import BJ, Site, segment

MON = datetime(2026, 3, 2, 9, 0, tzinfo=BJ)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: None) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damage")
    whole = d / "whole.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=4"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", str(whole)],
        check=True,
    )
    cut = d / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 55 // 100])  # the index (moov) first: the header still says 4 s
    return {"whole": whole, "cut": cut}


def test_a_file_cut_short_is_told_from_a_whole_one(clips: dict[str, Path]) -> None:
    whole = decoded_to_end(str(clips["whole"]), 4.0)
    assert whole["complete"] and whole["packets"] == 40 and whole["decoded_to_s"] == pytest.approx(4.0)
    cut = decoded_to_end(str(clips["cut"]), 4.0)
    assert not cut["complete"] and cut["packets"] < 40 and cut["decoded_to_s"] < 3.0
    assert any("partial file" in e for e in cut["errors"])


def test_a_truncated_segment_is_recorded_damaged_at_source_and_flagged(site: Site, clips: dict[str, Path]) -> None:
    site.register("D1")
    site.checkout("D1", MON, MON + timedelta(hours=1))
    files = [segment("D1", n, MON + timedelta(minutes=5 * n)) for n in (1, 2)]
    tid = site.dock("D1", MON + timedelta(hours=1, minutes=5), files)
    ids = [site.arrive(tid, f, MON + timedelta(hours=1, minutes=10)) for f in files]
    paths = {ids[0]: clips["whole"], ids[1]: clips["cut"]}
    with site.session() as s:
        recs = s.scalars(select(Recording).where(Recording.id.in_(ids))).all()
        keys = {r.storage_key: paths[r.id] for r in recs}
        for r in recs:
            r.probe_state = "pending"  # as it arrives, before the media task ran
        s.commit()
    ctx = SimpleNamespace(
        sessionmaker=site.sessionmaker,
        settings=site.settings,
        store=SimpleNamespace(locator=lambda key: str(keys[key])),
    )
    for rid in ids:
        assert probe_recording(ctx, rid) == "done"  # type: ignore[arg-type]
    with site.session() as s:
        (incident,) = s.scalars(select(IntegrityIncident)).all()
        assert (incident.kind, incident.recording_id) == ("damaged_at_source", ids[1])
        assert incident.details["declared_s"] == pytest.approx(4.0) and incident.details["decoded_to_s"] < 3.0
        run_scan(s, site.settings, now=MON + timedelta(days=3))
    (flag,) = [f for f in site.flags() if f.kind == "integrity_incident"]
    assert flag.evidence["incident_kind"] == "damaged_at_source"
    assert flag.evidence["recording"]["recording_id"] == ids[1] and flag.device_serial == "D1"
    assert flag.evidence["details"]["packets"] < 40
