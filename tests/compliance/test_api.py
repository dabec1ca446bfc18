"""The compliance API as each role sees it: scans after changes, the review workflow (each step an
audit event), the dashboard and the evaluation report."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from evidence_server.app import create_app
from evidence_server.audit.models import AuditEvent
from evidence_server.compliance.service import run_scan
from tests.compliance.conftest import Api, Site, segment

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=3)


@pytest.fixture
def sqlite_api(sqlite_site: Site) -> Iterator[Api]:
    with TestClient(create_app(sqlite_site.settings, with_web=False)) as client:
        yield Api(client, sqlite_site)


def violations(site: Site) -> dict[str, int]:
    """U1: D1 docked late (officer1), D2 overdue (officer2); U2: D3 clock off at a dock by nobody known."""
    site.register("D1")
    site.register("D2")
    site.register("D3", unit="U2")
    site.checkout("D1", T0, T0 + timedelta(minutes=30))
    f = segment("D1", 1, T0 + timedelta(minutes=5), seconds=1200)
    site.arrive(site.dock("D1", T0 + timedelta(hours=30), [f]), f, T0 + timedelta(hours=30, minutes=5))
    site.checkout("D2", T0, None, officer="officer2", expected=T0 + timedelta(hours=2))
    site.dock("D3", T0 + timedelta(hours=1), [], officer_no=None, clock_offset_s=-400.0)
    with site.session() as s:
        run_scan(s, site.settings)
    return {f.kind: f.id for f in site.flags()}


def test_scans_follow_each_change_without_waiting_for_the_schedule(api: Api) -> None:
    site = api.site
    site.register("D9")
    r = api.post(
        "devadmin1",
        "/api/v1/ledger/checkouts",
        {
            "serial": "D9",
            "officer_id": site.users["officer1"],
            "enforcement_matter": "检查",
            "expected_return_at": (NOW + timedelta(hours=4)).isoformat(),
            "override_reason": "时钟待校准",
            "readings": {"battery_percent": 90, "storage_free_bytes": 10**11, "clock_offset_s": 700},
        },
    )
    assert r.status_code == 201, r.text
    api.drain()
    assert [(f.kind, f.checkout_entry_id) for f in site.flags()] == [("clock_off", r.json()["id"])]


def test_each_role_sees_its_own_flags(sqlite_api: Api) -> None:
    ids = violations(sqlite_api.site)
    assert set(ids) == {"late_transfer", "device_overdue", "clock_off"}

    def seen(who: str) -> set[str]:
        r = sqlite_api.get(who, "/api/v1/compliance/flags")
        assert r.status_code == 200, r.text
        return {f["kind"] for f in r.json()["items"]}

    assert seen("legal") == seen("auditor") == {"late_transfer", "device_overdue", "clock_off"}
    assert seen("devadmin1") == {"late_transfer", "device_overdue"}
    assert seen("devadmin2") == {"clock_off"}
    assert seen("officer1") == {"late_transfer"}
    assert seen("officer2") == {"device_overdue"}
    for who in ("handler", "admin"):
        assert sqlite_api.get(who, "/api/v1/compliance/flags").status_code == 403
    assert sqlite_api.get("officer1", f"/api/v1/compliance/flags/{ids['device_overdue']}").status_code == 404
    late = sqlite_api.get("officer1", f"/api/v1/compliance/flags/{ids['late_transfer']}").json()
    assert late["evidence"]["back_by"] == "return" and late["evidence"]["recording"]["recording_id"]
    assert [e["action"] for e in late["events"]] == ["raised"]
    drill = sqlite_api.get("legal", "/api/v1/compliance/flags", params={"officer_no": "102346"}).json()
    assert [f["kind"] for f in drill["items"]] == ["device_overdue"]


def test_the_review_workflow_and_its_audit_trail(sqlite_api: Api) -> None:
    flag = violations(sqlite_api.site)["late_transfer"]
    base = f"/api/v1/compliance/flags/{flag}"

    def review(who: str, state: str, reason: str | None = None) -> int:
        return sqlite_api.post(who, base + "/review", {"state": state, "reason": reason}).status_code

    assert review("officer1", "under_review") == 403
    assert review("legal", "confirmed", "直接确认") == 409  # a decision needs a review first
    assert sqlite_api.post("officer1", base + "/explanations", {"body": "采集站故障，次日转存"}).status_code == 201
    assert sqlite_api.post("devadmin1", base + "/explanations", {"body": "已报修采集站"}).status_code == 201
    assert sqlite_api.post("devadmin2", base + "/explanations", {"body": "x"}).status_code == 404  # other unit
    assert (
        sqlite_api.post("legal", base + "/assign", {"assignee_id": sqlite_api.site.users["officer1"]}).status_code
        == 422
    )
    assert (
        sqlite_api.post("legal", base + "/assign", {"assignee_id": sqlite_api.site.users["auditor"]}).status_code == 200
    )
    assert review("legal", "under_review") == 200
    assert sqlite_api.post("auditor", base + "/comments", {"body": "核对采集站日志"}).status_code == 201
    assert review("auditor", "dismissed") == 422  # a decision needs its reason
    assert review("auditor", "dismissed", "采集站故障属实，非人为延误") == 200
    assert sqlite_api.post("officer1", base + "/explanations", {"body": "补充"}).status_code == 409
    done = sqlite_api.get("legal", base).json()
    assert (done["state"], done["decision_reason"], done["reviewed_by_id"], done["assignee_id"]) == (
        "dismissed",
        "采集站故障属实，非人为延误",
        sqlite_api.site.users["auditor"],
        sqlite_api.site.users["auditor"],
    )
    assert [e["action"] for e in done["events"]] == [
        "raised",
        "explain",
        "explain",
        "assign",
        "review",
        "comment",
        "review",
    ]
    assert review("legal", "under_review", "新证据") == 200  # reopened, with a reason
    with sqlite_api.site.session() as s:
        trail = [
            (e.action, e.actor_name)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_type == "compliance_flag", AuditEvent.object_id == str(flag))
                .order_by(AuditEvent.seq)
            )
        ]
    assert trail == [
        ("compliance.explain", "officer1"),
        ("compliance.explain", "devadmin1"),
        ("compliance.assign", "legal"),
        ("compliance.review", "legal"),
        ("compliance.comment", "auditor"),
        ("compliance.review", "auditor"),
        ("compliance.review", "legal"),
    ]
    # a dismissed flag no longer counts; reopened it does again
    figures = sqlite_api.get("legal", "/api/v1/compliance/dashboard").json()
    assert figures["by_kind"].get("late_transfer") == 1


def test_dashboard_counts_rates_and_the_evaluation_report(api: Api) -> None:
    ids = violations(api.site)
    r = api.get("legal", "/api/v1/compliance/dashboard")
    assert r.status_code == 200, r.text
    fig = r.json()
    assert fig["total"] == 3 and fig["by_kind"] == {"late_transfer": 1, "device_overdue": 1, "clock_off": 1}
    assert sum(fig["by_month"].values()) == 3 and len(fig["by_month"]) >= 12
    rates = {x["unit_name"]: (x["checkouts"], x["flagged"], x["rate"]) for x in fig["rates"]}
    assert rates["第一市场监管所"] == (2, 1, 0.5)  # D1's late footage; D2's overdue is not about footage
    assert {o["officer_no"]: o["count"] for o in fig["by_officer"]} == {"102345": 1, "102346": 1}
    own = api.get("devadmin1", "/api/v1/compliance/dashboard").json()
    assert own["total"] == 2 and [x["unit_name"] for x in own["rates"]] == ["第一市场监管所"]
    assert (
        api.get("devadmin1", "/api/v1/compliance/dashboard", params={"unit_id": api.site.units["U2"]}).status_code
        == 404
    )
    assert api.get("officer1", "/api/v1/compliance/dashboard").status_code == 403

    from openpyxl import load_workbook

    xlsx = api.get("legal", "/api/v1/compliance/report.xlsx", params={"unit_id": api.site.units["U1"]})
    assert xlsx.status_code == 200 and xlsx.headers["content-disposition"].startswith("attachment")
    wb = load_workbook(io.BytesIO(xlsx.content))
    summary = [tuple(c.value for c in row) for row in wb["评估概况"].iter_rows()]
    assert summary[0][0] == "执法音像记录设备使用合规评估报告"
    assert ("合规率", "50.0%") in [row[:2] for row in summary]
    listed = [row for row in wb["违规清单"].iter_rows(min_row=2, values_only=True)]
    assert sorted(row[1] for row in listed) == ["设备逾期未归还", "超时转存（超过24小时）"]
    assert str(ids["late_transfer"]) in [row[0] for row in listed]
    pdf = api.get("legal", "/api/v1/compliance/report.pdf", params={"unit_id": api.site.units["U1"]})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"STSong-Light" in pdf.content
    with api.site.session() as s:
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "compliance.report").limit(1))


def test_scans_on_demand_are_for_supervisors(sqlite_api: Api) -> None:
    assert sqlite_api.post("officer1", "/api/v1/compliance/scans", {}).status_code == 403
    r = sqlite_api.post("admin", "/api/v1/compliance/scans", {"scope": "full"})
    assert r.status_code == 201 and r.json()["finished_at"] and r.json()["counts"]["devices"] == 0
    assert [s["scope"] for s in sqlite_api.get("legal", "/api/v1/compliance/scans").json()][:1] == ["full"]


def test_short_footage_is_judged_against_the_task_times_given_at_checkout(sqlite_api: Api) -> None:
    site = sqlite_api.site
    site.register("D7")
    out, back = T0, T0 + timedelta(hours=8)  # held for the day; the inspection lasted one hour
    task_start, task_end = T0 + timedelta(hours=2), T0 + timedelta(hours=3)
    r = sqlite_api.post(
        "devadmin1",
        "/api/v1/ledger/checkouts",
        {
            "serial": "D7",
            "officer_id": site.users["officer1"],
            "enforcement_matter": "检查",
            "expected_return_at": (T0 + timedelta(hours=9)).isoformat(),
            "task_start_at": task_start.isoformat(),
            "task_end_at": task_end.isoformat(),
            "occurred_at": out.isoformat(),
            "readings": {"battery_percent": 90, "storage_free_bytes": 10**11, "clock_offset_s": 1},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["task_start_at"] is not None
    entry_id = r.json()["id"]
    r = sqlite_api.post(
        "devadmin1",
        "/api/v1/ledger/returns",
        {"serial": "D7", "condition": "good", "occurred_at": back.isoformat()},
    )
    assert r.status_code == 201, r.text
    # the inspection in 10-minute segments, 60 of the 480 minutes the device was held
    files = [segment("D7", i + 1, task_start + timedelta(minutes=10 * i), seconds=600) for i in range(6)]
    tid = site.dock("D7", back + timedelta(minutes=5), files)
    for f in files[:2]:  # only 20 minutes reach storage: short against the task
        site.arrive(tid, f, back + timedelta(minutes=10))
    with site.session() as s:
        run_scan(s, site.settings.model_copy(update={"compliance_min_recorded_ratio": 0.5}))
    short = [f for f in site.flags() if f.kind == "short_recording"]
    assert len(short) == 1 and short[0].checkout_entry_id == entry_id
    assert short[0].evidence["task_s"] == 3600 and short[0].evidence["recorded_s"] == 1200
