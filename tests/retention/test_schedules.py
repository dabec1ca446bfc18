"""Retention schedules through the job and the API: cases closing and reopening, permanent kinds,
extensions applied at once, shortenings only after two different people approved, holds on WORM storage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import func, select

from evidence_server.audit.models import AuditEvent
from evidence_server.recordings.models import Recording
from evidence_server.retention.apply import apply_retention
from evidence_server.retention.models import RetentionChange, RetentionState
from evidence_server.retention.service import current_policy
from evidence_server.retention.tasks import retention_apply
from tests.cases.conftest import World, make_world

POLICY = "/api/v1/retention/policy"


def code(r: httpx.Response) -> str:
    return str(r.json()["detail"]["code"])


def state(world: World, rec: int) -> RetentionState:
    with world.session() as s:
        row = s.get(RetentionState, rec)
        assert row is not None
        return row


def audit_count(world: World) -> int:
    with world.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def refused(world: World) -> list[str]:
    with world.session() as s:
        return [
            e.details["code"]
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action == "retention.refused").order_by(AuditEvent.seq)
            )
        ]


def apply(world: World) -> dict[str, Any]:
    return retention_apply(world.ctx)


def test_a_case_keeps_its_footage_while_open_until_closed_plus_n_years_and_again_when_reopened(world: World) -> None:
    w = world
    case = w.open_case()
    rec = w.recording(b"inspection footage")
    w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场检查"})
    apply(w)
    assert (state(w, rec).retain_until, state(w, rec).basis) == (None, "case_open")
    w.patch("handler", f"/api/v1/cases/{case['id']}", {"status": "closed", "closed_on": "2026-03-01"})
    report = apply(w)
    assert report["fixed"] == [rec]
    # the closing day counts in full (Asia/Shanghai), then three years
    assert state(w, rec).retain_until == datetime(2029, 3, 1, 16, 0, tzinfo=UTC)
    w.patch("handler", f"/api/v1/cases/{case['id']}", {"status": "open"})
    assert apply(w)["extended"] == [rec] and state(w, rec).retain_until is None
    # running again changes nothing and writes nothing to the audit log
    before = audit_count(w)
    again = apply(w)
    assert again["seen"] == 1 and not any(again[k] for k in ("created", "extended", "fixed", "shortened", "proposed"))
    assert audit_count(w) == before


def test_unlinking_footage_from_its_case_does_not_shorten_it_without_two_approvals(world: World) -> None:
    w = world
    case = w.open_case()
    rec = w.recording(b"linked then unlinked")
    w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场检查"})
    apply(w)
    w.post("handler", f"/api/v1/cases/{case['id']}/links/{rec}/unlink", {"reason": "与本案无关"})
    assert apply(w)["proposed"] == [rec]
    assert apply(w)["proposed"] == []  # asked once, not on every run
    assert state(w, rec).basis == "case_open"
    change = w.get("legal", "/api/v1/retention/changes").json()[0]
    assert change["subject"] == "recording" and change["requested_by_id"] is None
    for who in ("legal", "admin"):
        assert w.post(who, f"/api/v1/retention/changes/{change['id']}/approve", {}).status_code == 200
    r = w.post("legal", f"/api/v1/retention/changes/{change['id']}/apply")
    assert r.status_code == 200, r.text
    assert state(w, rec).basis == "unlinked" and state(w, rec).retain_until is not None


def test_permanent_kinds_keep_footage_for_good_and_unmarking_needs_two_approvals(world: World) -> None:
    w = world
    case = w.open_case()
    rec = w.recording(b"obstruction of officers")
    w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场"})
    w.patch("handler", f"/api/v1/cases/{case['id']}", {"status": "closed", "closed_on": "2026-03-01"})
    r = w.put("handler", f"/api/v1/retention/cases/{case['id']}/kind", {"kind": "obstruction", "reason": "阻碍执法"})
    assert r.json() == {"applied": True, "version_id": None, "change_id": None}
    assert (state(w, rec).retain_until, state(w, rec).basis) == (None, "permanent_kind")
    r = w.put("legal", f"/api/v1/retention/cases/{case['id']}/kind", {"kind": None, "reason": "定性有误"})
    assert r.status_code == 202
    change = r.json()["change_id"]
    r = w.post("legal", f"/api/v1/retention/changes/{change}/apply")
    assert (r.status_code, code(r)) == (409, "needs_two_approvals")
    w.post("legal", f"/api/v1/retention/changes/{change}/approve", {})
    w.post("admin", f"/api/v1/retention/changes/{change}/approve", {})
    assert w.post("admin", f"/api/v1/retention/changes/{change}/apply").status_code == 200
    assert state(w, rec).basis == "case_closed"
    r = w.put("handler2", f"/api/v1/retention/cases/{case['id']}/kind", {"kind": "major", "reason": "x"})
    assert (r.status_code, code(r)) == (404, "unknown_case")  # another unit's case reads as no case
    r = w.put("legal", f"/api/v1/retention/cases/{case['id']}/kind", {"kind": "biggish", "reason": "x"})
    assert (r.status_code, code(r)) == (422, "unknown_kind")


def test_a_longer_policy_applies_at_once_and_a_shorter_one_only_after_two_approvals(world: World) -> None:
    w = world
    rec = w.recording(b"policy footage")
    apply(w)
    six = state(w, rec).retain_until
    r = w.put("legal", POLICY, {"policy": {"unlinked_months": 12}, "reason": "上级要求延长"})
    assert r.status_code == 200 and r.json()["applied"]
    w.app.state.ctx.tasks.drain()
    assert state(w, rec).retain_until > six  # type: ignore[operator]
    # unknown keys and values out of bounds are refused, with the reason
    r = w.put("legal", POLICY, {"policy": {"unlinked_months": 12, "delete_early": True}, "reason": "x"})
    assert (r.status_code, code(r)) == (422, "invalid_policy") and "delete_early" in r.json()["detail"]["message"]
    r = w.put("legal", POLICY, {"policy": {"unlinked_months": 3}, "reason": "x"})
    assert (r.status_code, code(r)) == (422, "invalid_policy")
    # shortening: a change waiting for two different people
    r = w.put("legal", POLICY, {"policy": {"unlinked_months": 6}, "reason": "恢复默认"})
    assert r.status_code == 202
    change = r.json()["change_id"]
    assert w.get("auditor", POLICY).json()["policy"]["unlinked_months"] == 12
    r = w.post("legal", f"/api/v1/retention/changes/{change}/apply")
    assert (r.status_code, code(r)) == (409, "needs_two_approvals")
    w.post("legal", f"/api/v1/retention/changes/{change}/approve", {"note": "ok"})
    r = w.post("legal", f"/api/v1/retention/changes/{change}/approve", {})
    assert (r.status_code, code(r)) == (409, "already_approved")
    r = w.post("legal", f"/api/v1/retention/changes/{change}/apply")
    assert (r.status_code, code(r)) == (409, "needs_two_approvals")
    w.post("admin", f"/api/v1/retention/changes/{change}/approve", {})
    assert w.post("admin", f"/api/v1/retention/changes/{change}/apply").json()["status"] == "applied"
    w.app.state.ctx.tasks.drain()
    assert w.get("auditor", POLICY).json()["policy"]["unlinked_months"] == 6
    assert state(w, rec).retain_until == six
    assert refused(w) == [
        "invalid_policy",
        "invalid_policy",
        "needs_two_approvals",
        "already_approved",
        "needs_two_approvals",
    ]


def test_extensions_apply_at_once_and_shortening_them_waits_for_approval(world: World) -> None:
    w = world
    rec = w.recording(b"extended footage")
    apply(w)
    far = datetime(2040, 1, 1, tzinfo=UTC)
    r = w.post("legal", f"/api/v1/retention/recordings/{rec}/extension", {"until": far.isoformat(), "reason": "信访"})
    assert r.json()["applied"] and state(w, rec).retain_until == far
    r = w.post(
        "legal",
        f"/api/v1/retention/recordings/{rec}/extension",
        {"until": "2035-01-01T00:00:00+00:00", "reason": "缩短"},
    )
    assert r.status_code == 202 and state(w, rec).retain_until == far
    r = w.post(
        "legal", f"/api/v1/retention/recordings/{rec}/extension", {"until": "2026-01-01T00:00:00", "reason": "x"}
    )
    assert r.status_code == 422  # a time without its zone
    got = w.get("handler", f"/api/v1/retention/recordings/{rec}").json()
    assert got["state"]["basis"] == "extended" and got["due"] is False


def test_the_job_stops_cleanly_between_batches_and_finishes_on_the_next_run(world: World) -> None:
    w = world
    recs = [w.recording(f"batch {i}".encode()) for i in range(3)]
    with w.session() as s:
        policy, _ = current_policy(s, w.ctx)
        calls = iter([False, True])
        first = apply_retention(s, w.ctx.store, policy, batch_size=2, should_stop=lambda: next(calls))
    assert first.stopped and first.created == recs[:2]
    with w.session() as s:
        assert s.get(RetentionState, recs[2]) is None  # nothing half-done
    assert apply(w)["created"] == [recs[2]]


def test_holds_need_a_reason_and_unit_roles_hold_only_their_units_footage(world: World) -> None:
    w = world
    own = w.recording(b"own unit")
    other = w.recording(b"other unit", unit="U2", officer=("202345", "赵五"), serial="DSJ-B001")
    r = w.post("devadmin1", "/api/v1/retention/holds", {"target": "recording", "value": str(own), "reason": "  "})
    assert (r.status_code, code(r)) == (422, "reason_required")
    assert (
        w.post(
            "devadmin1", "/api/v1/retention/holds", {"target": "officer", "value": "102345", "reason": "投诉"}
        ).status_code
        == 201
    )
    r = w.post("devadmin1", "/api/v1/retention/holds", {"target": "recording", "value": str(other), "reason": "x"})
    ghost = w.post("devadmin1", "/api/v1/retention/holds", {"target": "recording", "value": "99999", "reason": "x"})
    assert (r.status_code, code(r)) == (ghost.status_code, code(ghost)) == (404, "unknown_recording")
    r = w.post("legal", "/api/v1/retention/holds", {"target": "device", "value": "NO-SUCH", "reason": "x"})
    assert (r.status_code, code(r)) == (404, "unknown_device")
    r = w.post("legal", "/api/v1/retention/holds", {"target": "planet", "value": "x", "reason": "x"})
    assert (r.status_code, code(r)) == (422, "unknown_target")
    assert w.post("devadmin1", "/api/v1/retention/holds/1/lift", {"reason": "x"}).status_code == 403
    assert [h["value"] for h in w.get("handler2", "/api/v1/retention/holds").json()] == []
    assert [h["value"] for h in w.get("auditor", "/api/v1/retention/holds").json()] == ["102345"]
    assert refused(w) == [
        "reason_required",
        "unknown_recording",
        "unknown_recording",
        "unknown_device",
        "unknown_target",
    ]


# --- on S3 with Object Lock -------------------------------------------------------------------------------


@pytest.fixture
def s3_world(tmp_path: Path, sqlite_url: str, moto_s3: str, s3_bucket: str) -> Iterator[World]:
    yield from make_world(
        tmp_path,
        sqlite_url,
        storage_backend="s3",
        s3_endpoint_url=moto_s3,
        s3_bucket=s3_bucket,
        s3_object_lock_mode="GOVERNANCE",
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )


@pytest.mark.s3
def test_on_s3_the_lock_follows_retention_and_holds_become_s3_legal_holds(
    s3_world: World, moto_s3: str, s3_bucket: str
) -> None:
    w = s3_world
    client = boto3.client(
        "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    case = w.open_case()
    rec = w.recording(b"s3 footage")
    with w.session() as s:
        key = s.get(Recording, rec).storage_key

    def head() -> dict[str, Any]:
        return dict(client.head_object(Bucket=s3_bucket, Key=key))

    apply(w)
    assert head()["ObjectLockRetainUntilDate"] == state(w, rec).lock_until == state(w, rec).retain_until
    # linked to an open case: no end date, so the lock rolls a year ahead; an extension moves the object's date
    w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场"})
    apply(w)
    assert head()["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=360)
    assert head()["ObjectLockMode"] == "GOVERNANCE"
    hold = w.post("legal", "/api/v1/retention/holds", {"target": "case", "value": str(case["id"]), "reason": "诉讼"})
    assert head()["ObjectLockLegalHoldStatus"] == "ON"
    w.post("legal", f"/api/v1/retention/holds/{hold.json()['id']}/lift", {"reason": "诉讼结束"})
    assert head()["ObjectLockLegalHoldStatus"] == "OFF"
    with w.session() as s:
        actions = [
            e.action
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.object_id == str(rec), AuditEvent.object_type == "recording")
            )
        ]
    assert actions.count("retention.lock_extended") == 2
    assert "retention.storage_hold_on" in actions and "retention.storage_hold_off" in actions


@pytest.mark.s3
def test_on_s3_an_object_still_locked_is_not_disposed_of(s3_world: World) -> None:
    w = s3_world
    past = datetime.now(UTC) - timedelta(days=400)
    rec = w.recording(b"locked past its retention", verified_at=past, docked_at=past, uploaded_at=past)
    apply(w)  # due now, but the object was locked for 180 days when it was stored
    req = w.post("legal", "/api/v1/retention/disposals", {"recording_ids": [rec], "reason": "到期"}).json()["id"]
    for who in ("legal", "admin"):
        w.post(who, f"/api/v1/retention/disposals/{req}/approve", {})
    r = w.post("admin", f"/api/v1/retention/disposals/{req}/execute")
    assert (r.status_code, code(r)) == (409, "storage_locked") and "GOVERNANCE" in str(r.json()["detail"]["reasons"])
    with w.session() as s:
        assert s.get(Recording, rec).fixity_state != "disposed"
        assert s.scalar(select(func.count()).select_from(RetentionChange)) == 0
