"""Files marked important (重要文件标记, issue 19 item 6): kept until reviewed, skipped by disposal runs, and
set, cleared and reviewed only by those entitled to, each change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from evidence_server.audit.models import AuditEvent
from evidence_server.recordings.models import Recording
from evidence_server.retention.models import RetentionState
from evidence_server.retention.rules import (
    Basis,
    CaseFacts,
    Change,
    Decision,
    RecordingFacts,
    RetentionPolicy,
    change,
    decide,
)
from tests.cases.conftest import World
from tests.retention.test_disposal import DISPOSAL, LONG_AGO, apply, old_recording

POLICY = RetentionPolicy()
T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)


# --- the rule, pure -------------------------------------------------------------------------------


def test_a_marked_recording_has_no_end_date_until_its_mark_is_reviewed() -> None:
    plain = decide(RecordingFacts(1, T0), POLICY)
    marked = decide(RecordingFacts(1, T0, important_unreviewed=True), POLICY)
    assert plain.until is not None and plain.basis == Basis.unlinked
    assert marked == Decision(None, Basis.important)
    # a longer reason to keep it wins over the mark: an open case, a permanent kind, a person's "for good"
    open_case = RecordingFacts(1, T0, (CaseFacts(7, None),), important_unreviewed=True)
    assert decide(open_case, POLICY).basis == Basis.case_open
    permanent = RecordingFacts(1, T0, (CaseFacts(7, T0, frozenset({"major"})),), important_unreviewed=True)
    assert decide(permanent, POLICY).basis == Basis.permanent_kind
    # marking is an extension; reviewing gives the policy's date for the first time (no approvals needed);
    # between "until the case closes" and "until reviewed" nothing shortens
    assert change(plain, marked) == Change.extend
    assert change(marked, plain) == Change.fix
    assert change(Decision(None, Basis.case_open, 7), marked) == Change.same
    assert change(marked, Decision(None, Basis.case_open, 7)) == Change.same
    # but a person's "for good" is still not given up for a mark without approvals
    assert change(Decision(None, Basis.extended), plain) == Change.shorten


# --- through the API ------------------------------------------------------------------------------


def _mark(w: World, who: str, rid: int, action: str, reason: str | None = None) -> int:
    body = {"action": action} if reason is None else {"action": action, "reason": reason}
    return w.post(who, f"/api/v1/recordings/{rid}/important", body).status_code


def _device_mark(w: World, rid: int) -> None:
    with w.session() as s:
        rec = s.get(Recording, rid)
        rec.important, rec.important_source, rec.important_how = True, "device", "file_name"
        rec.important_at = LONG_AGO + timedelta(minutes=1)
        s.commit()


def _audit(w: World, prefix: str) -> list[tuple[str, str | None, dict]]:
    with w.session() as s:
        return [
            (e.action, e.object_id, e.details)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq))
        ]


def test_an_important_file_survives_a_disposal_run_that_disposes_its_unmarked_siblings(world: World) -> None:
    w = world
    by_device = old_recording(w, b"segment 1: the recorder marked it IMP")
    sibling = old_recording(w, b"segment 2: nobody marked it")
    by_officer = old_recording(w, b"segment 3: the officer marks it after the request")
    _device_mark(w, by_device)
    apply(w)
    due = [d["recording_id"] for d in w.get("legal", "/api/v1/retention/due").json()]
    assert by_device not in due and {sibling, by_officer} <= set(due)
    with w.session() as s:
        assert s.get(RetentionState, by_device).basis == "important"

    r = w.post("legal", DISPOSAL, {"recording_ids": [by_device, sibling, by_officer], "reason": "保存期限届满"})
    assert r.status_code == 201, r.text
    req = r.json()
    assert set(req["skipped"]) == {str(by_device)} and "重要文件标记" in req["skipped"][str(by_device)]
    assert w.post("legal", f"{DISPOSAL}/{req['id']}/approve", {"note": "已核对"}).status_code == 200
    assert w.post("admin", f"{DISPOSAL}/{req['id']}/approve", {"note": "同意"}).status_code == 200
    # between the approvals and the run, the officer marks one of his recordings important
    assert _mark(w, "officer1", by_officer, "set", "现场有争执，需保留") == 200

    r = w.post("admin", f"{DISPOSAL}/{req['id']}/execute")
    assert r.status_code == 200, r.text
    assert [c["recording_id"] for c in r.json()] == [sibling]
    done = w.get("legal", f"{DISPOSAL}/{req['id']}").json()
    assert done["status"] == "executed"
    assert set(done["skipped"]) == {str(by_device), str(by_officer)}
    assert "not yet reviewed" in done["skipped"][str(by_officer)]
    with w.session() as s:
        recs = {rid: s.get(Recording, rid) for rid in (by_device, sibling, by_officer)}
        assert recs[sibling].fixity_state == "disposed"
        for rid in (by_device, by_officer):
            assert recs[rid].fixity_state != "disposed" and w.ctx.store.exists(recs[rid].storage_key)
    skipped = _audit(w, "retention.disposal_skipped")
    assert [(a, oid) for a, oid, _ in skipped] == [("retention.disposal_skipped", str(by_officer))]

    # once reviewed, the marked recording is due again like any other
    assert _mark(w, "handler", by_device, "review", "已复核，无需延长") == 200
    apply(w)
    with w.session() as s:
        state = s.get(RetentionState, by_device)
        assert state.basis == "unlinked" and state.retain_until is not None
    assert by_device in [d["recording_id"] for d in w.get("legal", "/api/v1/retention/due").json()]


def test_a_request_naming_only_marked_recordings_is_refused_with_the_reason(world: World) -> None:
    w = world
    rid = old_recording(w, b"only the marked one")
    _device_mark(w, rid)
    apply(w)
    r = w.post("legal", DISPOSAL, {"recording_ids": [rid], "reason": "保存期限届满"})
    assert r.status_code == 409 and r.json()["detail"]["code"] == "important"


def test_who_may_set_clear_and_review_the_mark(world: World) -> None:
    w = world
    own = w.recording(b"officer1's footage", officer=("102345", "张三"))
    other_officer = w.recording(b"officer2's footage", officer=("102346", "李四"))
    unit2 = w.recording(b"unit 2's footage", unit="U2", serial="DSJ-B001", officer=None)

    assert _mark(w, "officer1", own, "set") == 200
    assert _mark(w, "officer1", own, "set") == 409  # already marked
    assert _mark(w, "officer1", other_officer, "set") == 404  # a colleague's recording: officers see their own
    assert _mark(w, "handler", unit2, "set") == 404  # another unit's: the same answer as no recording at all
    assert _mark(w, "handler", 999_999, "set") == 404
    assert _mark(w, "devadmin1", own, "clear", "x") == 403  # device administrators do not mark footage
    assert _mark(w, "officer1", own, "review") == 403  # nobody reviews their own mark as an officer
    assert _mark(w, "handler2", unit2, "set") == 200  # unit 2's own case handler may
    assert _mark(w, "legal", own, "review", "已复核") == 200

    body = w.get("officer1", f"/api/v1/recordings/{own}").json()
    assert body["important"] and body["important_source"] == "person"
    assert body["important_by_id"] == w.users["officer1"] and body["important_reviewed_at"] is not None
    listed = w.get("handler", "/api/v1/recordings", params={"important": "true"}).json()
    assert [r["id"] for r in listed["items"]] == [own]
    unmarked = w.get("handler", "/api/v1/recordings", params={"important": "false"}).json()
    assert own not in [r["id"] for r in unmarked["items"]]

    # a mark the recorder set is cleared only with a reason
    _device_mark(w, other_officer)
    assert _mark(w, "handler", other_officer, "clear") == 422
    assert _mark(w, "handler", other_officer, "clear", "   ") == 422
    assert _mark(w, "handler", other_officer, "clear", "误按重要键，经核实为普通巡查") == 200
    assert not w.get("handler", f"/api/v1/recordings/{other_officer}").json()["important"]

    events = _audit(w, "recording.important_")
    acted = [(a, oid) for a, oid, _ in events if a != "recording.important_refused"]
    assert acted == [
        ("recording.important_set", str(own)),
        ("recording.important_set", str(unit2)),
        ("recording.important_reviewed", str(own)),
        ("recording.important_cleared", str(other_officer)),
    ]
    cleared = [d for a, _, d in events if a == "recording.important_cleared"][0]
    assert cleared["reason"] == "误按重要键，经核实为普通巡查" and cleared["from"]["source"] == "device"
    refused = [d["code"] for a, _, d in events if a == "recording.important_refused"]
    assert refused.count("not_allowed") == 1 and refused.count("reason_required") == 2


def test_hostile_text_in_the_reason_is_kept_as_text(world: World) -> None:
    w = world
    rid = w.recording(b"footage")
    hostile = "<script>alert(1)</script>\u202e'; DROP TABLE recordings; --\x00"
    r = w.post("officer1", f"/api/v1/recordings/{rid}/important", {"action": "set", "reason": hostile})
    assert r.status_code == 200, r.text
    with w.session() as s:
        assert s.get(Recording, rid).important_note == hostile.strip()
    too_long = w.post("officer1", f"/api/v1/recordings/{rid}/important", {"action": "clear", "reason": "x" * 1001})
    assert too_long.status_code == 422
    unknown = w.post("officer1", f"/api/v1/recordings/{rid}/important", {"action": "delete"})
    assert unknown.status_code == 422


def test_search_filters_and_shows_the_mark(world: World) -> None:
    w = world
    marked = w.recording(b"marked footage", name="DSJ-A001_20261120093000_IMP.MP4")
    plain = w.recording(b"plain footage")
    assert _mark(w, "handler", marked, "set", "案件关键画面") == 200
    found = w.get("handler", "/api/v1/search", params={"device_serial": "DSJ-A001", "important": "true"}).json()
    assert [(r["id"], r["important"]) for r in found["items"]] == [(marked, True)]
    rest = w.get("handler", "/api/v1/search", params={"device_serial": "DSJ-A001", "important": "false"}).json()
    assert [(r["id"], r["important"]) for r in rest["items"]] == [(plain, False)]


def test_who_may_change_a_mark_as_a_pure_rule() -> None:
    from evidence_server.recordings.important import Who, available_actions, may_change

    officer = Who("officer", 1, "102345")
    handler, handler2 = Who("case_handler", 1, None), Who("case_handler", 2, None)
    legal, admin = Who("legal_affairs", 2, None), Who("device_admin", 1, None)
    assert may_change(officer, 1, "102345", "set") is None and may_change(officer, 1, "102345", "clear") is None
    assert may_change(officer, 1, "102346", "set") and may_change(officer, 2, "102345", "set")  # a colleague; unit 2
    assert may_change(Who("officer", 1, None), 1, None, "set")  # an officer without a number owns nothing
    assert may_change(officer, 1, "102345", "review")
    assert may_change(handler, 1, None, "review") is None and may_change(handler2, 1, None, "set")
    assert may_change(legal, 1, None, "review") is None and may_change(admin, 1, None, "set")
    assert may_change(handler, 1, None, "delete")
    assert available_actions(officer, 1, "102345", important=False, reviewed=False) == ["set"]
    assert available_actions(officer, 1, "102345", important=True, reviewed=False) == ["clear"]
    assert available_actions(handler, 1, None, important=True, reviewed=False) == ["clear", "review"]
    assert available_actions(handler, 1, None, important=True, reviewed=True) == ["clear"]
    assert available_actions(handler2, 1, None, important=True, reviewed=False) == []


def test_only_the_transfer_that_delivered_the_bytes_sets_the_recorders_mark(world: World) -> None:
    """Another station's (or unit's) manifest naming the same bytes as marked sets nothing; nor a mark a person
    cleared, nor a value that is no way of marking."""
    from evidence_server.recordings.important import mark_from_device

    w = world
    rid = w.recording(b"delivered by unit 1's station")
    other = w.transfer("DSJ-B009", unit="U2")
    with w.session() as s:
        rec = s.get(Recording, rid)
        assert not mark_from_device(s, rec, "file_name", other, rec.original_path)
        assert not mark_from_device(s, rec, "<script>", rec.transfer_id, rec.original_path)
        assert mark_from_device(s, rec, "folder", rec.transfer_id, rec.original_path)
        assert not mark_from_device(s, rec, "folder", rec.transfer_id, rec.original_path)  # once
        rec.important = False  # a person cleared it
        assert not mark_from_device(s, rec, "folder", rec.transfer_id, rec.original_path)
        s.commit()
