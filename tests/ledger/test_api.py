"""The register and ledger through the API, on SQLite and PostgreSQL: checkouts, returns, faults,
lending, late entries, corrections, station readings, docks, scoping and exports."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from evidence_server.audit.models import AuditEvent
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import replay
from tests.ledger.conftest import GIB, GOOD, Api, Site


def ledger_size(site: Site) -> int:
    with site.session() as s:
        return s.scalar(select(func.count()).select_from(LedgerEntry)) or 0


def status(api: Api, serial: str) -> str:
    return str(api.get("legal", f"/api/v1/devices/{serial}").json()["status"])


def audited(site: Site, action: str) -> list[dict[str, Any]]:
    """The details of the audit events of ``action``, oldest first."""
    with site.session() as s:
        return [
            e.details or {}
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        ]


def assert_consistent(site: Site) -> None:
    """Each device's cached status is what its ledger replays to."""
    with site.session() as s:
        for device in s.scalars(select(Device)):
            entries = s.scalars(
                select(LedgerEntry).where(LedgerEntry.device_id == device.id).order_by(LedgerEntry.seq)
            ).all()
            if entries:
                state = replay(entries)
                assert (state.status.value, state.open_checkout) == (device.status, device.open_checkout_id)
            assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


def test_checkout_and_return(api: Api, site: Site) -> None:
    registered = api.register("DSJ0001")
    assert registered["kind"] == "register" and registered["status_after"] == "available"
    r = api.checkout("DSJ0001")
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["officer_no"] == "102345" and out["officer_name"] == "张三"
    assert out["enforcement_matter"] == "食品安全日常检查" and out["case_number"] == "市监案〔2026〕18号"
    assert (out["battery_percent"], out["storage_free_bytes"], out["clock_offset_s"]) == (95, 20 * GIB, 1.5)
    assert out["readings_source"] == "manual" and out["check_failures"] == [] and not out["override"]
    assert out["late"] is False
    device = api.get("devadmin1", "/api/v1/devices/DSJ0001").json()
    assert device["status"] == "checked_out" and device["holder_officer_no"] == "102345"

    r = api.give_back("DSJ0001", condition="good", description="外观完好")
    assert r.status_code == 201, r.text
    back = r.json()
    assert back["refers_to_id"] == out["id"] and back["received_by_id"] == site.users["devadmin1"]
    assert back["officer_no"] == "102345" and back["condition"] == "good"
    assert status(api, "DSJ0001") == "available"
    history = api.get("devadmin1", "/api/v1/devices/DSJ0001/ledger").json()
    assert [e["kind"] for e in history] == ["register", "checkout", "return"]
    assert [a["device_serial"] for a in audited(site, "ledger.checkout")] == ["DSJ0001"]
    assert_consistent(site)


def test_an_officer_checks_out_for_themselves(api: Api, site: Site) -> None:
    api.register("DSJ0002")
    r = api.checkout("DSJ0002", who="officer1", officer=None)
    assert r.status_code == 201, r.text
    assert r.json()["officer_id"] == site.users["officer1"]
    mine = api.get("officer1", "/api/v1/ledger/entries").json()
    assert [e["kind"] for e in mine["items"]] == ["checkout"]  # the register entry is not theirs
    assert api.get("officer2", "/api/v1/ledger/entries").json()["total"] == 0
    assert api.get("legal", "/api/v1/ledger/entries").json()["total"] == 2


def lose(api: Api, serial: str) -> None:
    r = api.post("devadmin1", "/api/v1/ledger/faults", {"serial": serial, "kind": "loss", "description": "遗失"})
    assert r.status_code == 201, r.text


def days_ago(n: float) -> str:
    return (datetime.now(UTC) - timedelta(days=n)).isoformat()


#: (what is tried, the device's state before, the attempt on serial ``s``, HTTP status, refusal code)
BAD_INPUT: list[tuple[str, str | None, Any, int, str]] = [
    (
        "check out a device already out",
        "out",
        lambda api, s: api.checkout(s, officer="officer2"),
        409,
        "device_checked_out",
    ),
    ("return a device not out", None, lambda api, s: api.give_back(s), 409, "not_checked_out"),
    ("check out a lost device", "lost", lambda api, s: api.checkout(s), 409, "device_lost"),
    (
        "another unit's admin checks out",
        None,
        lambda api, s: api.checkout(s, who="devadmin2", officer="officer3"),
        404,
        "unknown_device",
    ),
    (
        "another unit's officer checks out",
        None,
        lambda api, s: api.checkout(s, who="officer3", officer=None),
        404,
        "unknown_device",
    ),
    (
        "check out to another unit's officer",
        None,
        lambda api, s: api.checkout(s, officer="officer3"),
        422,
        "bad_officer",
    ),
    (
        "an officer checks out for a colleague",
        None,
        lambda api, s: api.checkout(s, who="officer1", officer="officer2"),
        403,
        "not_yourself",
    ),
    ("an unknown device", None, lambda api, s: api.checkout("NOSUCH"), 404, "unknown_device"),
    (
        "failed checks, no override",
        None,
        lambda api, s: api.checkout(
            s, readings={"battery_percent": 20, "storage_free_bytes": 20 * GIB, "clock_offset_s": 0}
        ),
        409,
        "checks_failed",
    ),
    (
        "an officer overrides a fault",
        None,
        lambda api, s: api.checkout(
            s, who="officer1", officer=None, override_reason="急需", readings={**GOOD, "fault_found": True}
        ),
        403,
        "override_not_allowed",
    ),
    ("no readings and not docked", None, lambda api, s: api.checkout(s, readings={}), 422, "no_readings"),
    (
        "expected back before it went out",
        None,
        lambda api, s: api.checkout(s, expected_return_at="2020-01-01T00:00:00Z"),
        422,
        "bad_return_time",
    ),
    (
        "an officer backdates",
        None,
        lambda api, s: api.checkout(s, who="officer1", officer=None, occurred_at=days_ago(1)),
        403,
        "backdating_not_allowed",
    ),
    (
        "a late checkout of a device out",
        "out",
        lambda api, s: api.checkout(s, occurred_at=days_ago(3)),
        409,
        "device_checked_out",
    ),
    (
        "a return before its checkout",
        "out",
        lambda api, s: api.give_back(s, occurred_at=days_ago(3)),
        422,
        "out_of_order",
    ),
    ("a return in the future", "out", lambda api, s: api.give_back(s, occurred_at=days_ago(-1)), 422, "in_future"),
]


def test_bad_input_is_refused_clearly_and_the_ledger_stays_consistent(api: Api, site: Site) -> None:
    """Each case on a device of its own (one app and database for the table: app start-up is slow)."""
    for i, (what, setup, attempt, http, code) in enumerate(BAD_INPUT):
        serial = f"BAD{i:03d}"
        api.register(serial)
        if setup == "out":
            assert api.checkout(serial).status_code == 201
        if setup == "lost":
            lose(api, serial)
        before, state = ledger_size(site), status(api, serial)
        r = attempt(api, serial)
        assert (r.status_code, r.json()["detail"]["code"]) == (http, code), what
        assert r.json()["detail"]["message"], what
        assert (ledger_size(site), status(api, serial)) == (before, state), what
    refused = [a["code"] for a in audited(site, "ledger.refused")]
    assert refused == [code for *_, code in BAD_INPUT]
    assert_consistent(site)


def test_a_checked_out_device_says_who_has_it(api: Api) -> None:
    api.register("DSJ0004")
    api.checkout("DSJ0004")
    detail = api.checkout("DSJ0004", officer="officer2").json()["detail"]
    assert detail["holder"] == "张三" and detail["holder_officer_no"] == "102345" and "张三" in detail["message"]


def test_failed_checks_need_an_administrators_override_which_is_recorded(api: Api, site: Site) -> None:
    api.register("DSJ0005")
    weak = {"battery_percent": 30, "storage_free_bytes": 1 * GIB, "clock_offset_s": 300, "fault_found": False}
    refused = api.checkout("DSJ0005", readings=weak).json()["detail"]
    assert refused["failures"] == ["battery_low", "storage_low", "clock_off"]
    r = api.checkout("DSJ0005", readings=weak, override_reason="突发任务，已携带备用电池")
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["override"] and entry["override_reason"] == "突发任务，已携带备用电池"
    assert entry["check_failures"] == ["battery_low", "storage_low", "clock_off"]
    [event] = audited(site, "ledger.checkout")
    assert event["override_reason"] == "突发任务，已携带备用电池"


def open_dock(api: Api, serial: str, officer_no: str | None, *, clock_offset: float = 4.0, battery: int = 88) -> str:
    now = datetime.now(UTC)
    transfer_id = str(uuid.uuid4())
    body = {
        "transfer_id": transfer_id,
        "docked_at": now.isoformat(),
        "device": {"serial": serial, "family": "mass_storage", "model": "DSJ-V9"},
        "officer": {"number": officer_no, "name": None},
        "device_status": {
            "clock": (now + timedelta(seconds=clock_offset)).isoformat(),
            "read_at": now.isoformat(),
            "battery_percent": battery,
            "storage_total_bytes": 64 * GIB,
            "storage_free_bytes": 30 * GIB,
        },
        "index": [],
    }
    r = api.post("station", "/api/v1/transfers", body)
    assert r.status_code == 201, r.text
    return transfer_id


def test_station_readings_fill_the_checks_and_unknown_devices_are_auto_registered(api: Api, site: Site) -> None:
    now = datetime.now(UTC)
    r = api.post(
        "station",
        "/api/v1/devices/DSJ0100/readings",
        {
            "read_at": now.isoformat(),
            "clock": (now - timedelta(seconds=4)).isoformat(),  # calibrated: within seconds
            "battery_percent": 77,
            "storage_total_bytes": 64 * GIB,
            "storage_free_bytes": 40 * GIB,
            "family": "mass_storage",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["device_status"] == "unregistered" and r.json()["clock_offset_s"] == pytest.approx(-4)
    assert r.json()["failures"] == []
    assert api.checkout("DSJ0100", readings={}).json()["detail"]["code"] == "device_unregistered"
    assert api.register("DSJ0100", model="DSJ-V9")["status_after"] == "available"

    r = api.checkout("DSJ0100", readings={})  # nothing entered by hand: the station's readings are used
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["battery_percent"], entry["storage_free_bytes"]) == (77, 40 * GIB)
    assert entry["clock_offset_s"] == pytest.approx(-4)
    assert entry["readings_source"] == "station" and entry["readings_station_id"] == site.station_id
    assert api.post("officer1", "/api/v1/devices/DSJ0100/readings", {"read_at": now.isoformat()}).status_code == 401


def test_clock_offset_is_kept_at_every_dock_and_docks_by_a_non_holder_are_recorded(api: Api, site: Site) -> None:
    open_dock(api, "DSJ0200", "102345", clock_offset=3)  # unknown: auto-registered, never checked out
    assert status(api, "DSJ0200") == "unregistered"
    api.register("DSJ0200")
    api.checkout("DSJ0200")  # to officer1 (102345)
    open_dock(api, "DSJ0200", "102345", clock_offset=-7)  # the holder: fine
    stranger = open_dock(api, "DSJ0200", "102346", clock_offset=95)  # officer2 docks officer1's device
    offsets = api.get("devadmin1", "/api/v1/devices/DSJ0200/clock-offsets").json()
    docks = [o["offset_s"] for o in offsets if o["source"] == "dock"]
    assert docks == pytest.approx([95, -7, 3]) and offsets[0]["station_id"] == site.station_id
    mismatches = api.get("legal", "/api/v1/ledger/dock-mismatches").json()
    assert [(m["reason"], m["docked_officer_no"]) for m in mismatches] == [
        ("other_holder", "102346"),
        ("never_checked_out", "102345"),
    ]
    assert mismatches[0]["transfer_id"] == stranger and mismatches[0]["holder_officer_no"] == "102345"
    assert api.get("devadmin2", "/api/v1/ledger/dock-mismatches").json() == []  # another unit's devices
    assert api.get("officer1", "/api/v1/ledger/dock-mismatches").status_code == 403


def test_late_entries_are_allowed_for_administrators_marked_and_audited(api: Api, site: Site) -> None:
    api.register("DSJ0300", occurred_at=(datetime.now(UTC) - timedelta(days=30)).isoformat())
    out_at = datetime.now(UTC) - timedelta(days=3)
    r = api.checkout(
        "DSJ0300", occurred_at=out_at.isoformat(), expected_return_at=(out_at + timedelta(hours=8)).isoformat()
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["late"] is True
    assert datetime.fromisoformat(entry["occurred_at"]) == out_at
    assert datetime.fromisoformat(entry["recorded_at"]) > out_at + timedelta(days=2)
    r = api.give_back("DSJ0300", occurred_at=(out_at + timedelta(hours=7)).isoformat())
    assert r.status_code == 201 and r.json()["late"] is True
    late = audited(site, "ledger.late_entry")
    assert {e["kind"] for e in late} == {"register", "checkout", "return"}
    # the compliance engine reads returns by when they happened, not when they were written
    from sqlalchemy import select

    from evidence_server.ledger.models import Device, LedgerEntry

    with site.session() as s:
        [back] = s.scalars(
            select(LedgerEntry)
            .join(Device, Device.id == LedgerEntry.device_id)
            .where(Device.serial == "DSJ0300", LedgerEntry.kind == "return")
        ).all()
        assert back.occurred_at == out_at + timedelta(hours=7)


def test_faults_change_the_status_and_join_the_ledger(api: Api, site: Site) -> None:
    api.register("DSJ0400")
    api.checkout("DSJ0400", who="officer1", officer=None)
    r = api.post(
        "officer1",
        "/api/v1/ledger/faults",
        {"serial": "DSJ0400", "kind": "damage", "description": "执法中跌落，屏幕碎裂"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["officer_no"] == "102345" and status(api, "DSJ0400") == "in_repair"
    assert api.give_back("DSJ0400", condition="damaged").status_code == 201
    assert status(api, "DSJ0400") == "in_repair"
    assert api.checkout("DSJ0400").json()["detail"]["code"] == "device_in_repair"
    assert api.post("officer1", "/api/v1/devices/DSJ0400/restored", {}).status_code == 403
    assert api.post("devadmin1", "/api/v1/devices/DSJ0400/restored", {"description": "已修复"}).status_code == 201
    assert status(api, "DSJ0400") == "available"
    faults = api.get("legal", "/api/v1/ledger/faults").json()
    assert [(f["kind"], f["description"]) for f in faults] == [("damage", "执法中跌落，屏幕碎裂")]
    # another unit's officer: the device answers as one that does not exist
    r = api.post("officer3", "/api/v1/ledger/faults", {"serial": "DSJ0400", "kind": "loss", "description": "x"})
    assert (r.status_code, r.json()["detail"]["code"]) == (404, "unknown_device")
    assert_consistent(site)


def test_lending_needs_the_administrators_approval(api: Api, site: Site) -> None:
    api.register("DSJ0500")
    back_by = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = api.post(
        "officer1",
        "/api/v1/ledger/lend-requests",
        {
            "serial": "DSJ0500",
            "borrower_unit_id": site.units["U2"],
            "purpose": "联合执法检查",
            "expected_return_at": back_by,
        },
    )
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["state"] == "pending" and status(api, "DSJ0500") == "available"  # nothing lent yet
    # no other way to lend: a checkout to another unit's officer is refused
    assert api.checkout("DSJ0500", officer="officer3").json()["detail"]["code"] == "bad_officer"
    path = f"/api/v1/ledger/lend-requests/{request['id']}"
    assert api.post("officer1", f"{path}/approve", {}).status_code == 403
    assert api.post("devadmin2", f"{path}/approve", {}).json()["detail"]["code"] == "unknown_request"
    r = api.post("devadmin1", f"{path}/approve", {"note": "同意", "readings": GOOD})
    assert r.status_code == 201, r.text
    lend = r.json()
    assert lend["kind"] == "lend" and lend["borrower_unit_id"] == site.units["U2"]
    assert lend["lend_request_id"] == request["id"] and status(api, "DSJ0500") == "checked_out"
    assert api.post("devadmin1", f"{path}/approve", {}).json()["detail"]["code"] == "request_decided"
    assert [x["state"] for x in api.get("devadmin2", "/api/v1/ledger/lend-requests").json()] == ["approved"]
    assert api.give_back("DSJ0500").status_code == 201

    second = api.post(
        "devadmin1",
        "/api/v1/ledger/lend-requests",
        {
            "serial": "DSJ0500",
            "borrower_name": "省局稽查总队 刘某",
            "purpose": "专项检查",
            "expected_return_at": back_by,
        },
    ).json()
    r = api.post("devadmin1", f"/api/v1/ledger/lend-requests/{second['id']}/reject", {"note": "设备不足"})
    assert r.json()["state"] == "rejected" and status(api, "DSJ0500") == "available"
    bad = api.post(
        "officer1",
        "/api/v1/ledger/lend-requests",
        {"serial": "DSJ0500", "borrower_unit_id": site.units["U1"], "purpose": "x", "expected_return_at": back_by},
    )
    assert bad.json()["detail"]["code"] == "bad_borrower"


def test_entries_are_corrected_by_new_entries(api: Api, site: Site) -> None:
    api.register("DSJ0600")
    out = api.checkout("DSJ0600", case_number=None).json()
    r = api.post(
        "devadmin1",
        "/api/v1/ledger/corrections",
        {"entry_id": out["id"], "changes": {"case_number": "市监案〔2026〕21号"}, "reason": "案件编号填错"},
    )
    assert r.status_code == 201, r.text
    fix = r.json()
    assert fix["kind"] == "correction" and fix["refers_to_id"] == out["id"] and fix["status_after"] == "checked_out"
    assert api.get("devadmin1", f"/api/v1/ledger/entries/{out['id']}").json() == out  # the original is untouched
    assert (
        api.post(
            "devadmin1",
            "/api/v1/ledger/corrections",
            {"entry_id": out["id"], "changes": {"officer_id": 1}, "reason": "x"},
        ).json()["detail"]["code"]
        == "not_correctable"
    )
    assert (
        api.post(
            "officer1",
            "/api/v1/ledger/corrections",
            {"entry_id": out["id"], "changes": {"case_name": "x"}, "reason": "x"},
        ).status_code
        == 403
    )
    rows = read_xlsx(api.get("devadmin1", "/api/v1/ledger/export.xlsx").content)
    checkout_row = next(r for r in rows if r["编号"] == str(out["id"]))
    assert "市监案〔2026〕21号" in checkout_row["备注"] and f"已更正，见第 {fix['id']} 条" in checkout_row["备注"]


def test_who_sees_what(api: Api, site: Site) -> None:
    api.register("DSJ0701")
    api.register("DSJ0702", who="devadmin2", unit_id=site.units["U2"])
    assert [d["serial"] for d in api.get("devadmin1", "/api/v1/devices").json()] == ["DSJ0701"]
    assert [d["serial"] for d in api.get("officer3", "/api/v1/devices").json()] == ["DSJ0702"]
    assert [d["serial"] for d in api.get("legal", "/api/v1/devices").json()] == ["DSJ0701", "DSJ0702"]
    assert api.get("devadmin2", "/api/v1/devices/DSJ0701").status_code == 404
    assert api.get("handler", "/api/v1/devices").status_code == 403
    assert (
        api.post("devadmin2", "/api/v1/devices", {"serial": "DSJ0703", "unit_id": site.units["U1"]}).json()["detail"][
            "code"
        ]
        == "other_unit"
    )
    assert api.post("officer1", "/api/v1/devices", {"serial": "DSJ0704"}).status_code == 403
    assert api.post("legal", "/api/v1/ledger/checkouts", {}).status_code in (403, 422)
    assert api.get("officer1", "/api/v1/ledger/export.xlsx").status_code == 403
    assert api.get("devadmin2", f"/api/v1/ledger/export.xlsx?unit_id={site.units['U1']}").status_code == 404


def test_units_below_their_allocation_are_flagged(api: Api, site: Site) -> None:
    api.register("DSJ0801")
    units = {u["code"]: u for u in api.get("legal", "/api/v1/ledger/units").json()}
    assert units["U1"]["devices_in_service"] == 1 and units["U1"]["devices_required"] == 2 and units["U1"]["short"]
    assert [a["username"] for a in units["U1"]["admins"]] == ["devadmin1"]
    assert (
        api.put("devadmin1", f"/api/v1/ledger/units/{site.units['U1']}/allocation", {"devices_required": 1}).status_code
        == 403
    )
    assert (
        api.put("admin", f"/api/v1/ledger/units/{site.units['U1']}/allocation", {"devices_required": 1}).status_code
        == 204
    )
    u1 = next(u for u in api.get("devadmin1", "/api/v1/ledger/units").json() if u["code"] == "U1")
    assert u1["devices_required"] == 1 and not u1["short"]


def read_xlsx(content: bytes) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(content)).active
    rows = [[c if c is not None else "" for c in row] for row in ws.iter_rows(values_only=True)]
    header = next(i for i, row in enumerate(rows) if "设备" in row)
    return [dict(zip(rows[header], row, strict=True)) for row in rows[header + 1 :]]


def test_exports_are_laid_out_like_the_paper_ledger(api: Api, site: Site) -> None:
    out_at = datetime.now(UTC) - timedelta(hours=30)
    api.register("DSJ0900", occurred_at=(out_at - timedelta(hours=1)).isoformat())
    assert (
        api.checkout(
            "DSJ0900",
            occurred_at=out_at.isoformat(),
            expected_return_at=(out_at + timedelta(hours=9)).isoformat(),
            readings={**GOOD, "battery_percent": 40},
            override_reason="任务紧急",
        ).status_code
        == 201
    )
    assert api.give_back("DSJ0900", condition="good").status_code == 201
    since = (out_at - timedelta(days=1)).date().isoformat()  # the default period is this month so far
    r = api.get("devadmin1", f"/api/v1/ledger/export.xlsx?since={since}")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet["A1"].value == "执法记录仪交接登记台账" and "第一市场监管所" in sheet["A2"].value
    rows = read_xlsx(r.content)
    assert list(rows[0]) == [
        "编号",
        "日期",
        "设备",
        "领用人",
        "使用前检查",
        "领用时间",
        "归还时间",
        "归还状况",
        "管理员签字",
        "备注",
    ]
    row = next(r for r in rows if r["领用人"])
    assert row["设备"] == "DSJ0900（DSJ-V9）" and row["领用人"] == "张三（102345）"
    assert "电量 40%" in row["使用前检查"] and "管理员放行：任务紧急" in row["使用前检查"]
    assert row["领用时间"] and row["归还时间"] and row["归还状况"] == "完好"
    assert row["管理员签字"] == "领用：王管理；归还接收：王管理"
    assert "补录" in row["备注"] and "食品安全日常检查" in row["备注"]
    assert any(a["format"] == "xlsx" for a in audited(site, "ledger.export"))

    pdf = api.get("legal", f"/api/v1/ledger/export.pdf?unit_id={site.units['U1']}&since={since}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and b"STSong-Light" in pdf.content
    assert api.get("devadmin1", "/api/v1/ledger/export.pdf?since=2026-02-01&until=2026-01-01").status_code == 422
