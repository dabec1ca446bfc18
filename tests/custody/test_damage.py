"""One flipped byte in a stored object, on local disk and on S3, on SQLite and PostgreSQL: no reader hands
it out, the damage is recorded at once, the copy is not custody, and a re-dock repairs it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from custodia_wire import fingerprint
from evidence_server.backup.database import BackupError
from evidence_server.backup.service import create_backup
from evidence_server.media.derive import derive_recording
from tests.custody.conftest import MIB, Dock, Site, recording_id

PATH = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4"
SERIAL = "DSJ0001"


def _body(site: Site, rec: int, **headers: str) -> tuple[int, bytes | None]:
    """(status, body); body None when the stream broke off before its announced length."""
    try:
        r = site.server.get(f"/api/v1/recordings/{rec}/content", headers=headers)
    except httpx.HTTPError:  # the server cut the stream: a broken transfer, never a complete one
        return -1, None
    if r.status_code in (200, 206) and len(r.content) != int(r.headers["content-length"]):
        return r.status_code, None
    return r.status_code, r.content


def test_a_flipped_byte_is_never_served_and_a_redock_repairs_it(site: Site) -> None:
    data = os.urandom(3 * MIB + 12345)  # four blocks
    st = Dock(site.server)
    out = st.deliver({PATH: data}, SERIAL)
    assert set(st.confirmed(out)) == {PATH}
    rec = recording_id(site.server, data)
    verified = [e for e in site.audit("recording.verified") if e["object"]["id"] == str(rec)]
    root = site.sql("SELECT block_map_root FROM recordings WHERE id = :i", i=rec)[0][0]
    assert root and verified[0]["details"]["block_map_root"] == root  # the log binds the block map

    site.flip(data, 2 * MIB + 7)  # in the third block
    # a range in an intact block is served (and checked) without reading the damaged one
    assert _body(site, rec, Range="bytes=0-1023") == (206, data[:1024])
    assert site.state(rec) != "failed"
    # a range touching the damaged block is refused before a byte goes out
    status, _ = _body(site, rec, Range=f"bytes={2 * MIB}-{2 * MIB + 99}")
    assert status == 409 and site.state(rec) == "failed"
    assert [i["where"] for i in site.incidents(rec)] == ["playback"]
    assert site.server.get(f"/api/v1/recordings/{rec}").json()["fixity_state"] == "failed"
    assert _body(site, rec)[0] == 409  # whole download: refused at once now

    site.set_state(rec, "ok")  # as if not noticed: the whole download finds it while streaming
    status, body = _body(site, rec)
    assert body is None and status in (-1, 200)  # cut off, never complete with wrong bytes
    assert site.state(rec) == "failed" and [i["where"] for i in site.incidents(rec)] == ["playback", "download"]

    # not custody: not held, not receipted (a station set to wipe would keep the device file) ...
    again = Dock(site.server, name="station-2")
    opened = again.open({PATH: data}, serial=SERIAL)
    assert opened["already_held"] == []
    out = again.complete({PATH: data})
    assert out["missing"] == [PATH] and again.confirmed(out) == {}
    # ... until the re-dock delivers the bytes again: verified on receipt, they repair the stored copy
    third = Dock(site.server, name="station-3")
    out = third.deliver({PATH: data}, SERIAL)
    assert set(third.confirmed(out)) == {PATH}
    assert site.state(rec) == "ok" and site.stored(data) == data
    repaired = site.audit("recording.repaired")
    assert [e["object"]["id"] for e in repaired] == [str(rec)] and repaired[0]["details"]["previous_state"] == "failed"
    assert _body(site, rec) == (200, data)
    assert _body(site, rec, Range=f"bytes={2 * MIB}-{2 * MIB + 99}") == (206, data[2 * MIB : 2 * MIB + 100])
    count = site.sql("SELECT COUNT(*) FROM recordings WHERE blake3 = :b", b=fingerprint.of_bytes(data).blake3)[0][0]
    assert count == 1


@pytest.mark.ffmpeg
def settled(site: Site, rec: int, timeout: float = 60.0) -> None:
    """Wait until the work the server does after receipt (probe, derived media) has stopped changing."""
    import time

    deadline, last, steady = time.monotonic() + timeout, None, 0
    while time.monotonic() < deadline and steady < 3:
        probe = site.sql("SELECT probe_state FROM recordings WHERE id = :i", i=rec)[0][0]
        derived = site.sql("SELECT COUNT(*) FROM derived_media WHERE recording_id = :i", i=rec)[0][0]
        now = (probe, derived)
        steady = steady + 1 if now == last and probe != "pending" and derived else 0
        last = now
        time.sleep(0.3)


def test_derivation_package_and_backup_refuse_a_damaged_copy(site: Site, tiny_video: Path, tmp_path: Path) -> None:
    data = tiny_video.read_bytes()
    st = Dock(site.server)
    st.deliver({PATH: data}, SERIAL)
    rec = recording_id(site.server, data)
    handler = site.server.create_user("handler", "case_handler")
    case = httpx.post(
        site.server.url + "/api/v1/cases",
        json={"number": "杭西市监处罚〔2026〕101号", "name": "案", "enforcement_matter": "检查"},
        headers={"Authorization": f"Bearer {handler}"},
    ).json()
    r = httpx.post(
        site.server.url + f"/api/v1/cases/{case['id']}/links",
        json={"recording_id": rec, "reason": "r"},
        headers={"Authorization": f"Bearer {handler}"},
    )
    assert r.status_code in (200, 201), r.text
    settled(site, rec)  # the server's own probe and derivation after receipt are over before the damage
    site.flip(data, len(data) // 2)
    ctx = site.ctx()
    try:
        # proxy and thumbnail derivation: ffmpeg never sees the damaged bytes
        site.sql("DELETE FROM derived_media WHERE recording_id = :i", i=rec)
        site.set_state(rec, "ok")
        states = derive_recording(ctx, rec)
        assert set(states.values()) == {"damaged"}, states
        assert site.sql("SELECT COUNT(*) FROM derived_media WHERE recording_id = :i", i=rec)[0][0] == 0
        assert site.state(rec) == "failed" and site.incidents(rec)[-1]["where"] == "derivation"

        # the court package: its stream breaks off, never completes with the damaged original
        site.set_state(rec, "ok")
        try:
            r = httpx.get(
                site.server.url + f"/api/v1/cases/{case['id']}/package",
                headers={"Authorization": f"Bearer {handler}"},
                timeout=30,
            )
            complete = r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
        except httpx.HTTPError:
            complete = False
        assert not complete
        assert site.state(rec) == "failed" and site.incidents(rec)[-1]["where"] == "package export"

        # backup: the damaged object is not backed up as if sound, and the damage is recorded
        site.set_state(rec, "ok")
        with pytest.raises(BackupError, match="do not match their fingerprint"):
            create_backup(site.server.settings(), tmp_path / "backup")
        key = site.sql("SELECT storage_key FROM recordings WHERE id = :i", i=rec)[0][0]
        assert not (tmp_path / "backup" / "objects" / key).exists()
        assert key not in (tmp_path / "backup" / "objects.json").read_text()
        assert site.state(rec) == "failed" and site.incidents(rec)[-1]["where"] == "backup"
    finally:
        ctx.close()
