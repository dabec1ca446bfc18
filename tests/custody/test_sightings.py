"""The same bytes on several recorders, and a station of another unit: "already held" and receipts speak
only of recordings this device itself delivered, for devices the station may take in."""

from __future__ import annotations

import os

import httpx

from custodia_wire import fingerprint
from tests.custody.conftest import Dock, Site, recording_id
from tests.support.live import LiveServer

A, B = "DSJ000A", "DSJ000B"
SEG = "DCIM/20261121/SEG_0001.MP4"
EMPTY = "DCIM/20261121/EMPTY_0002.MP4"


def _duplicates(site: Site) -> tuple[list[object], list[object]]:
    """Recordings per content and sightings per transfer path, counted by query (not trusting UNIQUE)."""
    per_content = site.sql("SELECT blake3, COUNT(*) FROM recordings GROUP BY blake3 HAVING COUNT(*) > 1")
    per_path = site.sql(
        "SELECT transfer_id, path, COUNT(*) FROM sightings GROUP BY transfer_id, path HAVING COUNT(*) > 1"
    )
    return per_content, per_path


def test_the_same_bytes_and_an_empty_file_on_two_recorders(site: Site) -> None:
    seg = os.urandom(500_000)
    files = {SEG: seg, EMPTY: b""}
    first = Dock(site.server)
    assert set(first.confirmed(first.deliver(files, A))) == set(files)

    second = Dock(site.server, name="station-2")
    opened = second.open(files, serial=B)
    assert opened["already_held"] == []  # B never delivered these bytes: it sends them once
    for path, data in files.items():
        assert second.upload(path, data).headers["Custodia-Verified"] == "true"
    out = second.complete(files)
    assert out["missing"] == [] and set(second.confirmed(out)) == set(files)

    # the next dock of B finds them held, and its receipt confirms them without sending them again
    third = Dock(site.server, name="station-3")
    opened = third.open(files, serial=B)
    assert {h["path"] for h in opened["already_held"]} == set(files)
    assert set(third.confirmed(third.complete(files))) == set(files)

    rec = recording_id(site.server, seg)
    sightings = site.sql("SELECT device_serial, path FROM sightings WHERE recording_id = :i ORDER BY id", i=rec)
    assert [tuple(s) for s in sightings] == [(A, SEG), (B, SEG)]
    sighted = [e for e in site.audit("recording.sighted") if e["object"]["id"] == str(rec)]
    assert [e["details"]["device_serial"] for e in sighted] == [A, B]  # each its own custody event
    assert _duplicates(site) == ([], [])
    empty = recording_id(site.server, b"")
    assert site.sql("SELECT COUNT(*) FROM sightings WHERE recording_id = :i", i=empty)[0][0] == 2


def test_a_station_of_another_unit_can_neither_dock_nor_claim_unit_1_recordings(live_server: LiveServer) -> None:
    server = live_server
    unit2 = _unit(server, "U2")
    data = os.urandom(300_000)
    own = Dock(server)  # unit 1's station and device
    own.deliver({SEG: data}, A)
    rogue = Dock.__new__(Dock)
    code = httpx.post(
        server.url + "/api/v1/stations", json={"name": "rogue", "unit_id": unit2}, headers=server.admin_headers
    ).json()["enrolment_code"]
    _enrol(rogue, server, code)

    # unit 1's device at a unit 2 station: refused, nothing learnt, nothing written to the device's records
    r = rogue.open_raw({SEG: data, "DCIM/invented.MP4": b"x"}, A)
    assert r.status_code == 403 and "already_held" not in r.text
    assert server.get("/api/v1/audit/entries", params={"action": "transfer.refused"}).json()["items"]

    # a unit 2 device's transfer naming unit 1's recording under an invented path: not confirmed
    invented = "DCIM/20261121/INVENTED_0001.MP4"
    r = rogue.open_raw({invented: data}, "DSJ0U2")
    assert r.status_code == 201 and r.json()["already_held"] == []
    out = rogue.complete({invented: data})
    assert out["missing"] == [invented] and rogue.confirmed(out) == {}
    rec = recording_id(server, data)
    links = server.get("/api/v1/recordings", params={"transfer_id": rogue.transfer_id}).json()["total"]
    assert links == 0

    # a system administrator lets the rogue station serve unit 1 (a joint inspection point): now it may
    station_id = rogue.enrolment["station_id"]
    r = httpx.put(server.url + f"/api/v1/stations/{station_id}/units/1", headers=server.admin_headers)
    assert r.status_code == 200 and r.json()["serves"] == [1]
    granted = server.get("/api/v1/audit/entries", params={"action": "station.unit_granted"}).json()["items"]
    assert granted[0]["details"]["unit_id"] == 1
    opened = rogue.open_raw({SEG: data}, A)
    assert opened.status_code == 201 and [h["recording_id"] for h in opened.json()["already_held"]] == [rec]
    transfer = server.get("/api/v1/audit/entries", params={"action": "transfer.docked"}).json()["items"][-1]
    assert transfer["object"]["id"] == rogue.transfer_id


def _unit(server: LiveServer, code: str) -> int:
    from evidence_server.accounts import service as accounts
    from evidence_server.context import ServerContext

    ctx = ServerContext(server.settings())
    try:
        with ctx.sessionmaker() as session:
            unit = accounts.ensure_unit(session, code, "第二执法大队")
            session.commit()
            return int(unit.id)
    finally:
        ctx.close()


def _enrol(dock: Dock, server: LiveServer, code: str) -> None:
    from custodia_wire import documents

    r = httpx.post(server.url + "/api/v1/stations/enrol", json={"code": code})
    r.raise_for_status()
    dock.server, dock.enrolment = server, r.json()
    dock.key = documents.load_public_key_b64(dock.enrolment["server_public_key"])
    dock.http = httpx.Client(
        base_url=server.url,
        timeout=30,
        headers={"Authorization": f"Bearer {dock.enrolment['token']}", "Tus-Resumable": "1.0.0"},
    )


def test_a_manifest_may_not_name_a_file_the_index_did_not_list(live_server: LiveServer) -> None:
    data = os.urandom(100_000)
    st = Dock(live_server)
    st.deliver({SEG: data}, A)
    again = Dock(live_server, name="station-2")
    again.open({}, serial=A)  # an empty index
    out = again.complete({SEG: data})
    assert out["missing"] == [SEG]
    assert fingerprint.of_bytes(data).blake3 not in str(out["receipt"]["files"])
