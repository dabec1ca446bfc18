"""Disposal through the API: the due list, two approvers, removal from storage, the certificate, 410 Gone,
and every bad input refused with a clear error and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from custodia_wire.documents import verify_signature
from evidence_server.audit.models import AuditEvent
from evidence_server.recordings.models import Recording
from evidence_server.retention.tasks import retention_apply
from tests.cases.conftest import World

LONG_AGO = datetime.now(UTC) - timedelta(days=400)
DISPOSAL = "/api/v1/retention/disposals"


def code(r: httpx.Response) -> str:
    return str(r.json()["detail"]["code"])


def actions(world: World, prefix: str = "retention.") -> list[str]:
    with world.session() as s:
        return [
            e.action
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq))
        ]


def refusals(world: World) -> list[tuple[str, str | None]]:
    with world.session() as s:
        return [
            (e.details["code"], e.actor_name)
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action == "retention.refused").order_by(AuditEvent.seq)
            )
        ]


def old_recording(world: World, data: bytes, **kw: Any) -> int:
    """A recording that reached the store 400 days ago: past the six months of unlinked footage."""
    return world.recording(
        data, started_at=LONG_AGO, verified_at=LONG_AGO, uploaded_at=LONG_AGO, docked_at=LONG_AGO, **kw
    )


def apply(world: World) -> dict[str, Any]:
    return retention_apply(world.ctx)


def test_due_footage_is_disposed_of_after_two_approvals_and_leaves_a_certificate(world: World) -> None:
    w = world
    rec = old_recording(w, b"footage nobody needs any more")
    fresh = w.recording(b"footage from this morning")
    apply(w)
    due = w.get("legal", "/api/v1/retention/due").json()
    assert [d["recording_id"] for d in due] == [rec] and due[0]["basis"] == "unlinked"
    with w.session() as s:
        key = s.get(Recording, rec).storage_key
    assert w.ctx.store.exists(key)

    r = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "保存期限届满，无案件关联"})
    assert r.status_code == 201, r.text
    req = r.json()["id"]
    assert w.post("legal", f"{DISPOSAL}/{req}/approve", {"note": "已核对"}).status_code == 200
    r = w.post("admin", f"{DISPOSAL}/{req}/approve", {"note": "同意"})
    assert [a["user_id"] for a in r.json()["approvals"]] == [w.users["legal"], w.users["admin"]]
    r = w.post("admin", f"{DISPOSAL}/{req}/execute")
    assert r.status_code == 200, r.text
    cert = r.json()[0]

    # the bytes are gone; the record, its fingerprints and the certificate stay
    with w.session() as s:
        fresh_key = s.get(Recording, fresh).storage_key
    assert not w.ctx.store.exists(key) and w.ctx.store.exists(fresh_key)
    meta = w.get("legal", f"/api/v1/recordings/{rec}").json()
    assert meta["blake3"].startswith("blake3:") and meta["sha256"].startswith("sha256:")
    assert meta["fixity_state"] == "disposed"
    doc = cert["document"]
    verify_signature(doc, w.ctx.signing_key.public_key())
    assert doc["recording"]["blake3"] == meta["blake3"] and doc["recording"]["sha256"] == meta["sha256"]
    assert doc["request"]["reason"] == "保存期限届满，无案件关联"
    assert doc["request"]["requested_by"]["username"] == "legal"
    assert [a["username"] for a in doc["approvals"]] == ["legal", "admin"]
    assert doc["executed"]["by"]["username"] == "admin" and doc["executed"]["at"]
    assert w.get("auditor", f"/api/v1/retention/certificates/{cert['id']}").json()["number"] == cert["number"]

    # the content answers 410 Gone with the certificate
    r = w.get("admin", f"/api/v1/recordings/{rec}/content")
    assert r.status_code == 410 and r.json()["detail"]["certificate"] == cert["number"]
    assert w.get("legal", "/api/v1/retention/due").json() == []
    # the job leaves a disposed recording alone, and the fixity sweep does not call it missing
    assert apply(w)["seen"] == 1
    from evidence_server.fixity.service import sweep

    assert rec not in sweep(w.ctx).missing
    assert actions(w) == [
        "retention.set",
        "retention.set",
        "retention.run",
        "retention.disposal_requested",
        "retention.disposal_approved",
        "retention.disposal_approved",
        "retention.disposed",
        "retention.disposal_executed",
        "retention.certificate_view",
    ]


def test_disposing_of_a_held_item_is_refused_and_audited(world: World) -> None:
    w = world
    rec = old_recording(w, b"held footage", serial="DSJ-H001")
    apply(w)
    hold = w.post(
        "legal",
        "/api/v1/retention/holds",
        {"target": "device", "value": "DSJ-H001", "reason": "投诉复核，设备全部录像保全"},
    )
    assert hold.status_code == 201, hold.text
    assert w.get("legal", "/api/v1/retention/due").json() == []
    assert [d["recording_id"] for d in w.get("legal", "/api/v1/retention/due?held=true").json()] == [rec]
    r = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "到期"})
    assert (r.status_code, code(r)) == (409, "held")
    assert "legal hold" in r.json()["detail"]["message"]
    # a hold placed after the request still stops the disposal
    lifted = w.post("legal", f"/api/v1/retention/holds/{hold.json()['id']}/lift", {"reason": "复核结束"})
    assert lifted.status_code == 200 and lifted.json()["lift_reason"] == "复核结束"
    req = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "到期"}).json()["id"]
    for who in ("legal", "admin"):
        w.post(who, f"{DISPOSAL}/{req}/approve", {})
    assert (
        w.post(
            "handler", "/api/v1/retention/holds", {"target": "recording", "value": str(rec), "reason": "案件需要"}
        ).status_code
        == 201
    )
    r = w.post("admin", f"{DISPOSAL}/{req}/execute")
    assert (r.status_code, code(r)) == (409, "held")
    with w.session() as s:
        assert s.get(Recording, rec).fixity_state != "disposed"
    assert refusals(w) == [("held", "legal"), ("held", "admin")]
    assert {"retention.hold_placed", "retention.hold_lifted"} <= set(actions(w))


def test_bad_disposals_are_refused_each_with_a_clear_error_and_audited(world: World) -> None:
    w = world
    rec = old_recording(w, b"due footage")
    young = w.recording(b"young footage")
    apply(w)
    r = w.post("legal", DISPOSAL, {"recording_ids": [young], "reason": "清理"})
    assert (r.status_code, code(r)) == (409, "not_due") and str(young) in r.json()["detail"]["retain_until"]
    req = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "到期"}).json()["id"]
    r = w.post("legal", f"{DISPOSAL}/{req}/execute")
    assert (r.status_code, code(r)) == (409, "needs_two_approvals")
    assert w.post("legal", f"{DISPOSAL}/{req}/approve", {}).status_code == 200
    r = w.post("legal", f"{DISPOSAL}/{req}/approve", {})
    assert (r.status_code, code(r)) == (409, "already_approved")
    r = w.post("legal", f"{DISPOSAL}/{req}/execute")
    assert (r.status_code, code(r)) == (409, "needs_two_approvals")
    assert "2 different people" in r.json()["detail"]["message"]
    r = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "again"})
    assert (r.status_code, code(r)) == (409, "already_requested")
    # roles: an auditor reads but approves nothing; a device administrator requests nothing
    assert w.post("auditor", f"{DISPOSAL}/{req}/approve", {}).status_code == 403
    assert w.post("devadmin1", DISPOSAL, {"recording_ids": [rec], "reason": "x"}).status_code == 403
    assert w.get("auditor", DISPOSAL).status_code == 200
    assert refusals(w) == [
        ("not_due", "legal"),
        ("needs_two_approvals", "legal"),
        ("already_approved", "legal"),
        ("needs_two_approvals", "legal"),
        ("already_requested", "legal"),
    ]
    with w.session() as s:
        assert s.get(Recording, rec).fixity_state != "disposed"


def test_a_rejected_request_disposes_of_nothing(world: World) -> None:
    w = world
    rec = old_recording(w, b"kept after all")
    apply(w)
    req = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "到期"}).json()["id"]
    r = w.post("admin", f"{DISPOSAL}/{req}/reject", {"note": "仍有信访"})
    assert r.json()["status"] == "rejected"
    r = w.post("admin", f"{DISPOSAL}/{req}/approve", {})
    assert (r.status_code, code(r)) == (409, "not_pending")
    assert w.get("legal", "/api/v1/retention/due").json()[0]["requested"] is False


def test_the_whole_flow_on_each_database(world_any_db: World) -> None:
    """Holds, the due list, two approvals and the certificate, once on SQLite and once on PostgreSQL."""
    w = world_any_db
    rec = old_recording(w, b"footage on any database", serial="DSJ-DB01")
    apply(w)
    hold = w.post("handler", "/api/v1/retention/holds", {"target": "recording", "value": str(rec), "reason": "复议"})
    assert w.get("legal", "/api/v1/retention/due").json() == []
    w.post("legal", f"/api/v1/retention/holds/{hold.json()['id']}/lift", {"reason": "复议结束"})
    assert [d["recording_id"] for d in w.get("legal", "/api/v1/retention/due").json()] == [rec]
    req = w.post("legal", DISPOSAL, {"recording_ids": [rec], "reason": "到期"}).json()["id"]
    for who in ("legal", "admin"):
        w.post(who, f"{DISPOSAL}/{req}/approve", {})
    r = w.post("legal", f"{DISPOSAL}/{req}/execute")
    assert r.status_code == 200, r.text
    assert w.get("legal", f"/api/v1/recordings/{rec}/content").status_code == 410
    assert w.get("auditor", f"{DISPOSAL}/{req}").json()["status"] == "executed"
    w.app.state.ctx.tasks.drain()
