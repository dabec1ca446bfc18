"""The push-ingest API spoken by an independent client (python-swiftclient) over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from sqlalchemy import select, update
from swiftclient.exceptions import ClientException

from tests.push.conftest import SERIAL, TRACK, USER_UUID, PushWorld, md5, register

CONTAINER = f"{USER_UUID}_{SERIAL}_20261204_101500"


def _clips() -> dict[str, bytes]:
    return {
        "20261204_101500_41.mp4": os.urandom(3 * 1024 * 1024 + 17),
        "20261204_102000_41.mp4": os.urandom(5 * 1024 * 1024),
        "20261204_102500_41.mp4": os.urandom(1024),
    }


def test_auth_capability_users_devices_recording_track_bookmark_complete(push: PushWorld) -> None:
    conn = push.swift()
    url, token = conn.get_auth()
    assert url.startswith(push.server.url + "/v1/AUTH_bws-u1-") and token

    headers, body = conn.get_object("System", "Capability.json")
    assert headers["etag"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert json.loads(body)["Store"]["StoreGNSSTrackRecording"] is True

    register(push, conn)
    conn.put_container(
        CONTAINER, headers={"X-Container-Meta-Status": "Transferring", "X-Container-Meta-Bwcmodel": "W110"}
    )
    clips = _clips()
    for name, data in clips.items():
        start = f"2026-12-04T{name[9:11]}:{name[11:13]}:00Z"
        etag = conn.put_object(
            CONTAINER, name, contents=data, etag=md5(data), headers={"X-Object-Meta-Starttimeiso": start}
        )
        assert etag == md5(data)
    conn.put_object(
        CONTAINER,
        "bookmark_20261204T101600Z_1",
        contents=b"Suspect left on foot",
        headers={"X-Object-Meta-Tags": "TriggerOn:Button"},
    )
    track_name = f"20261204_101500_41_{SERIAL}_gpstrail.json"
    assert conn.put_object(CONTAINER, track_name, contents=TRACK, etag=md5(TRACK)) == md5(TRACK)
    conn.post_container(CONTAINER, headers={"X-Container-Meta-Status": "Complete"})

    assert conn.head_container(CONTAINER)["x-container-meta-status"] == "Complete"
    names = [o["name"] for o in conn.get_container(CONTAINER)[1]]
    assert set(names) == {*clips, "bookmark_20261204T101600Z_1", track_name}

    # the clips are recordings made by the docked files' code path: content-addressed, both digests
    from evidence_server.audit.models import AuditEvent
    from evidence_server.recordings.models import Recording
    from evidence_server.transfers.models import Transfer

    ctx = push.db()
    with ctx.sessionmaker() as s:
        recs = {r.sha256: r for r in s.scalars(select(Recording))}
        assert len(recs) == 3
        for data in clips.values():
            rec = recs["sha256:" + hashlib.sha256(data).hexdigest()]
            assert rec.size == len(data) and rec.device_serial == SERIAL and rec.officer_no == "1001"
            assert rec.unit_id == 1 and rec.storage_key and rec.blake3.startswith("blake3:")
            assert b"".join(ctx.store.iter_range(rec.storage_key)) == data  # stored whole
        transfer = s.get_one(Transfer, next(iter(recs.values())).transfer_id)
        assert transfer.state == "done" and transfer.device["via"] == "push"
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions.count("push.clip_received") == 3 and actions.count("recording.verified") == 3
        assert "push.recording_complete" in actions and "push.track_received" in actions
        received = s.scalars(select(AuditEvent).where(AuditEvent.action == "push.clip_received")).all()
        assert {e.details["sender_md5"] for e in received} == {md5(d) for d in clips.values()}
        assert {e.details["chain_starts"] for e in received} == {"server_receipt"}
        rec_id = next(iter(recs.values())).id
        # the pushed transfer is bound like a dock's: its index grew by each clip, which the log records clip by
        # clip, so its opening entry binds all but the index; whose it is stays bound
        from evidence_server.binding.service import check_rows

        assert check_rows(s).findings == []
        s.execute(update(Transfer).where(Transfer.id == transfer.id).values(officer_no="9999"))
        s.commit()
        assert [f.field for f in check_rows(s).findings] == ["officer_no"]
    ctx.close()

    # the track: with the recording's access rights, each view audited
    r = push.api("officer1", f"/api/v1/recordings/{rec_id}/track")
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert [(p["lat"], p["lon"]) for p in points][0] == (39.916527, 116.397128) and len(points) == 3
    svg = push.api("officer1", f"/api/v1/recordings/{rec_id}/track?format=svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "2026-12-04T10:15:20Z" in svg.text
    assert push.api("devadmin2", f"/api/v1/recordings/{rec_id}/track").status_code == 404
    assert push.api("officer2", f"/api/v1/recordings/{rec_id}/track").status_code == 404
    ctx = push.db()
    with ctx.sessionmaker() as s:
        views = s.scalars(select(AuditEvent).where(AuditEvent.action == "recording.track_viewed")).all()
        assert len(views) == 2
    ctx.close()


def test_a_retried_clip_is_not_duplicated(push: PushWorld) -> None:
    conn = push.swift()
    register(push, conn)
    conn.put_container(CONTAINER)
    data = os.urandom(200_000)
    for _ in range(2):
        assert conn.put_object(CONTAINER, "20261204_101500_1.mp4", contents=data, etag=md5(data)) == md5(data)
    from evidence_server.recordings.models import Recording

    ctx = push.db()
    with ctx.sessionmaker() as s:
        assert len(s.scalars(select(Recording)).all()) == 1
    ctx.close()


def test_wrong_etag_is_refused_and_nothing_kept(push: PushWorld) -> None:
    conn = push.swift()
    register(push, conn)
    conn.put_container(CONTAINER)
    data = os.urandom(100_000)
    with pytest.raises(ClientException) as err:
        conn.put_object(CONTAINER, "20261204_101500_1.mp4", contents=data, etag=md5(b"something else"))
    assert err.value.http_status == 422
    from evidence_server.recordings.models import Recording
    from evidence_server.uploads.models import IntegrityIncident

    ctx = push.db()
    with ctx.sessionmaker() as s:
        assert s.scalars(select(Recording)).all() == []
        assert [i.kind for i in s.scalars(select(IntegrityIncident))] == ["push_md5_mismatch"]
    ctx.close()
    assert not list((push.server.data_dir / "staging").glob("*.part"))
    kinds = [r["kind"] for r in push.api("devadmin1", "/api/v1/push/refusals").json()]
    assert kinds == ["wrong_etag"]


def test_unknown_user_and_device_get_400_and_an_entry_for_the_device_administrator(push: PushWorld) -> None:
    conn = push.swift()
    with pytest.raises(ClientException) as err:
        conn.put_object("Users", "a-uuid", contents=b"", headers={"X-Object-Meta-UserID": "9999"})
    assert err.value.http_status == 400
    with pytest.raises(ClientException) as err:
        conn.put_object("Devices", "NOPE-1", contents=b"")
    assert err.value.http_status == 400
    register(push, conn)
    with pytest.raises(ClientException) as err:
        conn.put_container(f"never-registered_{SERIAL}_20261204_101500")
    assert err.value.http_status == 400
    with pytest.raises(ClientException) as err:
        conn.put_container(f"{USER_UUID}_NOPE-1_20261204_101500")
    assert err.value.http_status == 400
    kinds = sorted(r["kind"] for r in push.api("devadmin1", "/api/v1/push/refusals").json())
    assert kinds == ["unknown_device", "unknown_device", "unknown_user", "unknown_user"]
    assert push.api("devadmin2", "/api/v1/push/refusals").json() == []  # another unit's administrator sees none
    assert push.api("officer1", "/api/v1/push/refusals").status_code == 403


def test_a_unit2_account_cannot_deliver_for_a_unit1_device(push: PushWorld) -> None:
    conn = push.swift("U2")
    conn.put_object("Users", USER_UUID, contents=b"", headers={"X-Object-Meta-UserID": "2001"})
    with pytest.raises(ClientException) as err:
        conn.put_object("Devices", SERIAL, contents=b"")
    assert err.value.http_status == 403
    with pytest.raises(ClientException) as err:
        conn.put_container(CONTAINER)
    assert err.value.http_status == 403
    # nor write into unit 1's account with its own token
    u1_url = push.swift().get_auth()[0]
    _, token2 = conn.get_auth()
    import httpx

    r = httpx.put(u1_url + "/" + CONTAINER, headers={"X-Auth-Token": token2})
    assert r.status_code == 403
    assert [r["kind"] for r in push.api("devadmin1", "/api/v1/push/refusals").json()] == []
    assert sorted(r["kind"] for r in push.api("devadmin2", "/api/v1/push/refusals").json()) == [
        "other_unit_device",
        "other_unit_device",
    ]


def test_wrong_key_and_missing_token_are_401(push: PushWorld) -> None:
    import httpx

    r = httpx.get(
        push.server.url + "/auth/v1.0",
        headers={"X-Auth-User": push.files["U1"]["BlobAPIUserName"], "X-Auth-Key": "nope"},
    )
    assert r.status_code == 401
    url = push.swift().get_auth()[0]
    assert httpx.put(url + "/" + CONTAINER).status_code == 401
    assert httpx.put(url + "/" + CONTAINER, headers={"X-Auth-Token": "cus_p_1_99999999999_forged"}).status_code == 401


def test_the_recording_page_draws_the_track_and_says_where_custody_starts(push: PushWorld) -> None:
    import httpx

    conn = push.swift()
    register(push, conn)
    conn.put_container(CONTAINER)
    data = os.urandom(50_000)
    conn.put_object(CONTAINER, "20261204_101500_41.mp4", contents=data, etag=md5(data))
    conn.put_object(CONTAINER, f"20261204_101500_41_{SERIAL}_gpstrail.json", contents=TRACK, etag=md5(TRACK))
    from evidence_server.recordings.models import Recording

    ctx = push.db()
    with ctx.sessionmaker() as s:
        rec_id = s.scalars(select(Recording.id)).one()
    ctx.close()
    page = httpx.get(
        f"{push.server.url}/recordings/{rec_id}",
        headers={"Authorization": f"Bearer {push.tokens['officer1']}", "Accept": "text/html"},
    )
    assert page.status_code == 200, page.text[:300]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="track"' in page.text
    assert "2026-12-04T10:15:20Z" in page.text and "39.917300" in page.text
    assert md5(data) in page.text  # the custody record names the sender's MD5 where the chain starts


def test_the_court_package_holds_the_track(push: PushWorld) -> None:
    import io
    import zipfile

    import httpx

    conn = push.swift()
    register(push, conn)
    conn.put_container(CONTAINER)
    data = os.urandom(40_000)
    conn.put_object(CONTAINER, "20261204_101500_41.mp4", contents=data, etag=md5(data))
    conn.put_object(CONTAINER, f"20261204_101500_41_{SERIAL}_gpstrail.json", contents=TRACK, etag=md5(TRACK))
    from evidence_server.recordings.models import Recording

    ctx = push.db()
    with ctx.sessionmaker() as s:
        rec_id = s.scalars(select(Recording.id)).one()
    ctx.close()
    admin = push.server.admin_headers
    case = httpx.post(
        push.server.url + "/api/v1/cases",
        json={"number": "杭西市监处罚〔2026〕920号", "name": "push", "unit_id": 1},
        headers=admin,
    )
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    r = httpx.post(
        f"{push.server.url}/api/v1/cases/{case_id}/links",
        json={"recording_id": rec_id, "reason": "pushed clip"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = httpx.get(f"{push.server.url}/api/v1/cases/{case_id}/package", headers=admin, timeout=60)
    assert r.status_code == 200, r.text[:300]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        track = json.loads(z.read(f"tracks/recording-{rec_id}.json"))
        manifest = json.loads(z.read("manifest.json"))
    assert [(p["lat"], p["lon"]) for p in track["points"]][-1] == (39.9173, 116.3981)
    assert any(f["path"] == f"tracks/recording-{rec_id}.json" and f["role"] == "track" for f in manifest["files"])
