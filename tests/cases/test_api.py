"""The cases API: cases and their numbers, links by hand with reasons, who sees what, finding
footage, the task at the dock, linking from the checkout ledger, the officer's day, and the audit."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from evidence_server.audit.models import AuditEvent
from evidence_server.cases.linking import auto_link
from evidence_server.cases.tasks import auto_link_recording
from tests.cases.conftest import CASE_NO, GOOD, World, make_world


def code(r: Any) -> str:
    return str(r.json()["detail"]["code"])


def events(world: World, action: str) -> list[AuditEvent]:
    with world.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_a_case_is_opened_with_a_normalised_number_and_bad_numbers_are_refused(world: World) -> None:
    w = world
    case = w.open_case(number="杭西市监处罚[2026]101号", officers=[{"officer_no": "102345", "name": "张三"}])
    assert case["number"] == CASE_NO and case["status"] == "open" and case["opened_on"]
    r = w.post("handler", "/api/v1/cases", {"number": CASE_NO, "name": "again"})
    assert (r.status_code, code(r)) == (409, "case_exists")
    r = w.post("handler", "/api/v1/cases", {"number": "2026-101", "name": "x"})
    assert (r.status_code, code(r)) == (422, "malformed_case_number")
    assert "杭西市监处罚〔2026〕101号" in r.json()["detail"]["message"]
    assert w.post("officer1", "/api/v1/cases", {"number": CASE_NO, "name": "x"}).status_code == 403
    # looked up in any bracket style; unknown and malformed numbers each say so
    assert w.get("legal", "/api/v1/cases/by-number/杭西市监处罚(2026)101号").json()["id"] == case["id"]
    r = w.get("legal", "/api/v1/cases/by-number/杭西市监处罚〔2026〕999号")
    assert (r.status_code, code(r)) == (404, "unknown_case_number")
    r = w.get("legal", "/api/v1/cases/by-number/not-a-number")
    assert (r.status_code, code(r)) == (422, "malformed_case_number")
    closed = w.patch("handler", f"/api/v1/cases/{case['id']}", {"status": "closed"}).json()
    assert closed["status"] == "closed" and closed["closed_on"]


def test_links_and_unlinks_record_who_when_why_and_a_recording_can_be_in_two_cases(world: World) -> None:
    case = w_case = world.open_case()
    other = world.open_case(number="杭西市监处罚〔2026〕102号", name="另一案")
    rec = world.recording(b"evidence-1")
    for c in (w_case, other):
        r = world.post("handler", f"/api/v1/cases/{c['id']}/links", {"recording_id": rec, "reason": "现场检查录像"})
        assert r.status_code == 201, r.text
    assert {c["number"] for c in world.get("handler", f"/api/v1/recordings/{rec}/cases").json()} == {
        CASE_NO,
        "杭西市监处罚〔2026〕102号",
    }
    r = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "again"})
    assert (r.status_code, code(r)) == (409, "already_linked")
    r = world.post("handler", f"/api/v1/cases/{case['id']}/links/{rec}/unlink", {"reason": "与本案无关"})
    assert r.status_code == 200 and r.json()["unlink_reason"] == "与本案无关"
    assert world.get("handler", f"/api/v1/cases/{case['id']}/links").json() == []
    history = world.get("handler", f"/api/v1/cases/{case['id']}/links?history=true").json()
    assert [(h["reason"], h["unlink_reason"], h["linked_by_id"], h["unlinked_by_id"]) for h in history] == [
        ("现场检查录像", "与本案无关", world.users["handler"], world.users["handler"])
    ]
    linked, unlinked = events(world, "case.link"), events(world, "case.unlink")
    assert len(linked) == 2 and unlinked[0].actor_name == "handler" and unlinked[0].details["reason"] == "与本案无关"
    assert unlinked[0].client_addr  # from where


def test_bad_links_are_refused_with_a_clear_error(world: World) -> None:
    case = world.open_case()
    foreign = world.recording(b"other unit", unit="U2", officer=("202345", "赵五"))
    r = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": foreign, "reason": "x"})
    ghost = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": 99999, "reason": "x"})
    assert (r.status_code, code(r)) == (ghost.status_code, code(ghost)) == (404, "unknown_recording")
    assert r.json()["detail"]["message"].replace(str(foreign), "N") == ghost.json()["detail"]["message"].replace(
        "99999", "N"
    )  # another unit's recording reads as one that does not exist
    own = world.recording(b"own")
    r = world.post("handler", f"/api/v1/cases/{case['id']}/links/{own}/unlink", {"reason": "x"})
    assert (r.status_code, code(r)) == (404, "not_linked")
    # a sysadmin may link across units
    assert (
        world.post(
            "admin", f"/api/v1/cases/{case['id']}/links", {"recording_id": foreign, "reason": "协查"}
        ).status_code
        == 201
    )


def test_who_sees_a_case_and_its_recordings(world: World) -> None:
    case = world.open_case()
    rec = world.recording(b"case footage")
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
    path = f"/api/v1/cases/{case['id']}"
    assert world.get("handler2", path).status_code == 404  # another unit's case handler
    assert world.get("handler2", f"/api/v1/recordings/{rec}/content").status_code == 404
    assert world.get("legal", path).status_code == 200 and world.get("auditor", path).status_code == 200
    share = world.post("handler", f"{path}/shares", {"user_id": world.users["handler2"], "reason": "联合办案"})
    assert share.status_code == 201
    assert world.get("handler2", path).status_code == 200
    assert world.get("handler2", f"/api/v1/recordings/{rec}/content").content == b"case footage"
    assert world.get("handler2", "/api/v1/search", params={"case_number": CASE_NO}).json()["total"] == 1
    world.post("handler", f"{path}/shares/{share.json()['id']}/revoke")
    assert world.get("handler2", path).status_code == 404
    # officers see their own recordings only, whatever the case holds
    theirs = world.recording(b"officer2's", officer=("102346", "李四"))
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": theirs, "reason": "r"})
    found = world.get("officer1", "/api/v1/search", params={"case_number": CASE_NO}).json()
    assert [i["id"] for i in found["items"]] == [rec]
    assert world.get("officer1", f"/api/v1/cases/{case['id']}/package").status_code == 403


def test_finding_footage_by_each_filter(world_any_db: World) -> None:
    world = world_any_db
    case = world.open_case()
    second = world.open_case(number="杭西市监处罚〔2026〕205号", name="某药店案", enforcement_matter="药品经营检查")
    t0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    a = world.recording(b"a", serial="DSJ-A001", started_at=t0)
    b = world.recording(b"b", serial="DSJ-B002", officer=("102346", "李四"), started_at=t0 + timedelta(hours=5))
    c = world.recording(b"c", serial="DSJ-A001", started_at=t0 + timedelta(days=3))
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": a, "reason": "r"})
    world.post("handler", f"/api/v1/cases/{second['id']}/links", {"recording_id": b, "reason": "r"})

    def ids(**params: Any) -> list[int]:
        r = world.get("legal", "/api/v1/search", params=params)
        assert r.status_code == 200, r.text
        return sorted(i["id"] for i in r.json()["items"])

    assert ids(case_number="杭西市监处罚[2026]101号") == [a]
    assert ids(case_number="杭西市监处罚〔2026〕", case_match="prefix") == [a, b]
    assert ids(case_name="药店") == [b]
    assert ids(enforcement_matter="药品") == [b]
    assert ids(officer="102346") == [b] and ids(officer="张") == [a, c]
    assert ids(device_serial="DSJ-A") == [a, c]
    assert ids(unit_id=world.units["U1"]) == [a, b, c] and ids(unit_id=world.units["U2"]) == []
    assert ids(started_from=(t0 + timedelta(hours=1)).isoformat(), started_to=(t0 + timedelta(days=1)).isoformat()) == [
        b
    ]
    item = world.get("legal", "/api/v1/search", params={"case_number": CASE_NO}).json()["items"][0]
    assert item["thumbnail_url"] == f"/api/v1/recordings/{a}/thumbnail" and item["cases"][0]["number"] == CASE_NO
    r = world.get("legal", "/api/v1/search", params={"case_number": "杭西市监处罚〔2026〕404号"})
    assert (r.status_code, code(r)) == (404, "unknown_case_number")
    r = world.get("legal", "/api/v1/search", params={"case_number": "404"})
    assert (r.status_code, code(r)) == (422, "malformed_case_number")
    assert events(world, "recording.search")[0].details["shown"] == [a]


def test_the_officer_names_matter_and_case_at_the_dock(tmp_path: Any, sqlite_url: str) -> None:
    for world in make_world(tmp_path, sqlite_url, transfer_task_grace_hours=0):
        case = world.open_case()
        transfer = world.transfer("DSJ-A001")
        recs = [world.recording(b"x1", transfer_id=transfer), world.recording(b"x2", transfer_id=transfer)]
        incomplete = world.get("officer1", "/api/v1/transfers/incomplete").json()
        assert [(i["transfer_id"], i["missing"]) for i in incomplete] == [(transfer, ["enforcement_matter", "case"])]
        assert world.get("officer2", "/api/v1/transfers/incomplete").json() == []  # not their transfer
        r = world.put("officer1", f"/api/v1/transfers/{transfer}/task", {"case_number": "杭西市监处罚〔2026〕9号"})
        assert (r.status_code, code(r)) == (404, "unknown_case_number")
        r = world.put("officer1", f"/api/v1/transfers/{transfer}/task", {"case_number": "nope"})
        assert (r.status_code, code(r)) == (422, "malformed_case_number")
        assert (
            world.put("officer2", f"/api/v1/transfers/{transfer}/task", {"enforcement_matter": "x"}).status_code == 404
        )
        r = world.put("officer1", f"/api/v1/transfers/{transfer}/task", {"enforcement_matter": "食品安全检查"})
        assert r.json()["missing"] == ["case"]
        r = world.put("officer1", f"/api/v1/transfers/{transfer}/task", {"case_number": CASE_NO})
        assert r.json()["missing"] == [] and r.json()["case_number"] == CASE_NO
        assert world.get("officer1", "/api/v1/transfers/incomplete").json() == []
        links = world.get("handler", f"/api/v1/cases/{case['id']}/links").json()
        assert sorted(lk["recording_id"] for lk in links) == recs
        assert {(lk["origin"], lk["linked_by_id"]) for lk in links} == {("dock", world.users["officer1"])}


def ledger(world: World, serial: str, start: datetime, end: datetime, case_number: str) -> int:
    r = world.post(
        "devadmin1",
        "/api/v1/devices",
        {
            "serial": serial,
            "model": "DSJ-V9",
            "family": "mass_storage",
            "occurred_at": (start - timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    r = world.post(
        "devadmin1",
        "/api/v1/ledger/checkouts",
        {
            "serial": serial,
            "officer_id": world.users["officer1"],
            "enforcement_matter": "食品安全日常检查",
            "case_number": case_number,
            "case_name": "某超市过期食品案",
            "readings": GOOD,
            "occurred_at": start.isoformat(),
            "expected_return_at": end.isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    r = world.post(
        "devadmin1", "/api/v1/ledger/returns", {"serial": serial, "condition": "good", "occurred_at": end.isoformat()}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["refers_to_id"])


def test_recordings_made_during_a_checkout_are_linked_to_its_case(world_any_db: World) -> None:
    w = world_any_db
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime.combine(datetime.now(shanghai).date() - timedelta(days=1), time(9), shanghai).astimezone(UTC)
    end = start + timedelta(hours=2)
    entry = ledger(w, "DSJ-L001", start, end, "市监案[2026]18号")
    # the device runs 10 minutes fast
    transfer = w.transfer("DSJ-L001", clock_offset_s=600.0, docked_at=end + timedelta(hours=1))
    uploaded = {"uploaded_at": end + timedelta(hours=1, minutes=5)}
    inside = w.recording(
        b"in", serial="DSJ-L001", transfer_id=transfer, started_at=start + timedelta(minutes=40), **uploaded
    )
    # its clock says 8 minutes after the return; it was really 2 minutes before: linked
    late_clock = w.recording(
        b"late", serial="DSJ-L001", transfer_id=transfer, started_at=end + timedelta(minutes=8), **uploaded
    )
    # its clock says 2 minutes before checkout; it was really 12 before: not linked
    before = w.recording(
        b"before", serial="DSJ-L001", transfer_id=transfer, started_at=start - timedelta(minutes=2), **uploaded
    )
    for rec in (inside, late_clock, before):
        auto_link_recording(w.ctx, rec)
        auto_link_recording(w.ctx, rec)  # a duplicate delivery changes nothing
    case = w.get("legal", "/api/v1/cases/by-number/市监案〔2026〕18号").json()
    assert case["created_via"] == "checkout" and case["name"] == "某超市过期食品案"
    assert case["enforcement_matter"] == "食品安全日常检查" and case["unit_id"] == w.units["U1"]
    links = w.get("legal", f"/api/v1/cases/{case['id']}/links").json()
    assert sorted(lk["recording_id"] for lk in links) == sorted([inside, late_clock])
    assert {(lk["origin"], lk["checkout_entry_id"], lk["linked_by_id"]) for lk in links} == {("checkout", entry, None)}
    task = w.get("officer1", f"/api/v1/transfers/{transfer}/task").json()
    assert task["case_number"] == "市监案〔2026〕18号" and task["enforcement_matter"] == "食品安全日常检查"
    # the officer's day: checkout, recordings with the gap between them, return, dock
    day = w.get("officer1", f"/api/v1/recordings/{inside}/timeline").json()
    assert [i["kind"] for i in day["items"]] == [
        "recording",
        "gap",
        "checkout",
        "recording",
        "gap",
        "recording",
        "return",
        "dock",
        "upload",
    ]
    assert day["items"][0]["start"].startswith((start - timedelta(minutes=12)).isoformat()[:19])
    shown = [i["ref"] for i in day["items"] if i["kind"] == "recording"]
    assert shown == [before, inside, late_clock]


def test_a_corrected_checkout_links_by_its_corrected_case(world: World) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    entry = ledger(world, "DSJ-C001", now - timedelta(hours=3), now - timedelta(hours=1), "市监案〔2026〕18号")
    r = world.post(
        "devadmin1",
        "/api/v1/ledger/corrections",
        {"entry_id": entry, "changes": {"case_number": "市监案〔2026〕19号"}, "reason": "案号填错"},
    )
    assert r.status_code == 201, r.text
    rec = world.recording(b"c", serial="DSJ-C001", started_at=now - timedelta(hours=2))
    with world.session() as s:
        made = auto_link(s, world.settings, [rec])
        s.commit()
    assert len(made) == 1
    assert world.get("legal", "/api/v1/cases/by-number/市监案〔2026〕19号").status_code == 200


def test_a_checkout_naming_another_units_case_links_nothing_into_it(world: World) -> None:
    """Found (issue 15): a checkout's case number is free text, and its recordings were linked to the
    case with that number whatever its unit; an officer of unit 1 put footage into unit 2's case, where
    unit 2's case handlers saw it. Only a case of the footage's unit, or one shared with it, takes it."""
    other = world.open_case(number="杭西市监处罚〔2026〕202号", who="handler2")
    now = datetime.now(UTC).replace(microsecond=0)
    ledger(world, "DSJ-X001", now - timedelta(hours=3), now - timedelta(hours=1), other["number"])
    rec = world.recording(b"x", serial="DSJ-X001", started_at=now - timedelta(hours=2))
    with world.session() as s:
        assert auto_link(s, world.settings, [rec]) == []
        s.commit()
    assert world.get("handler2", f"/api/v1/cases/{other['id']}/links").json() == []
    assert world.get("handler2", f"/api/v1/recordings/{rec}").status_code == 404
    assert events(world, "case.autolink_skipped")[-1].details["why"] == "case of another unit"
    # shared with unit 1 for a joint case: then the checkout's footage joins it
    r = world.post("handler2", f"/api/v1/cases/{other['id']}/shares", {"unit_id": world.units["U1"], "reason": "联办"})
    assert r.status_code == 201, r.text
    with world.session() as s:
        assert len(auto_link(s, world.settings, [rec])) == 1
        s.commit()


def test_every_view_playback_download_and_search_is_audited(world: World) -> None:
    case = world.open_case()
    rec = world.recording(b"0123456789")
    world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "r"})
    world.get("handler", f"/api/v1/cases/{case['id']}")
    world.get("handler", f"/api/v1/recordings/{rec}")
    assert world.get("handler", f"/api/v1/recordings/{rec}/content", headers={"Range": "bytes=2-5"}).content == b"2345"
    world.get("handler", f"/api/v1/recordings/{rec}/content")
    world.get("handler", f"/api/v1/recordings/{rec}/timeline")
    for action in (
        "case.view",
        "recording.view",
        "recording.playback",
        "recording.download",
        "recording.timeline_view",
        "case.link",
    ):
        (ev,) = events(world, action)
        assert ev.actor_name == "handler" and ev.at is not None and ev.client_addr, action
    r = world.get("handler", f"/api/v1/recordings/{rec}/content", headers={"Range": "bytes=50-60"})
    assert r.status_code == 416


@pytest.mark.parametrize("who", ["officer1", "devadmin1", "legal", "auditor"])
def test_only_case_handlers_change_cases(world: World, who: str) -> None:
    case = world.open_case()
    assert world.patch(who, f"/api/v1/cases/{case['id']}", {"name": "x"}).status_code == 403
    assert world.post(who, f"/api/v1/cases/{case['id']}/links", {"recording_id": 1, "reason": "x"}).status_code == 403
