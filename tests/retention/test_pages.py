"""The retention pages in process: who sees which page, and a disposal carried out from the forms alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from evidence_server.app import create_app
from evidence_server.audit.models import AuditEvent
from evidence_server.config import Settings
from evidence_server.retention.tasks import retention_apply
from evidence_server.security import csrf_token_for
from tests.cases.conftest import World, seed
from tests.support.databases import SqliteTemplates

LONG_AGO = datetime.now(UTC) - timedelta(days=400)
CSRF = "c" * 40
PAGES = ("/retention", "/retention/holds", "/retention/due", "/retention/approvals", "/retention/certificates")


@pytest.fixture
def site(tmp_path: Path, sqlite_templates: SqliteTemplates) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path / "server",
        database_url=sqlite_templates.fresh(tmp_path / "db"),
        environment="test",
        cookie_secure=False,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    with TestClient(app) as client:
        world = World(settings, app, client)
        seed(world)
        yield world
        app.state.ctx.tasks.drain()
    app.state.ctx.close()


def signed_in(w: World, who: str, **cookies: str) -> TestClient:
    w.client.cookies.clear()
    for name, value in {"custodia_session": w.tokens[who], **cookies}.items():
        w.client.cookies.set(name, value)
    return w.client


def page(w: World, who: str, path: str, lang: str = "zh") -> httpx.Response:
    return signed_in(w, who, lang=lang).get(path, headers={"Accept": "text/html"}, follow_redirects=False)


def form(w: World, who: str, path: str, **data: str | list[str]) -> httpx.Response:
    token = csrf_token_for(w.tokens[who])  # the session's own token, as its pages carry it
    return signed_in(w, who).post(
        path, data={"csrf_token": token, **data}, headers={"Accept": "text/html"}, follow_redirects=False
    )


ALLOWED = {
    "legal": PAGES,
    "auditor": PAGES,
    "admin": PAGES,
    "devadmin1": ("/retention/holds",),
    "handler": ("/retention/holds",),
    "officer1": (),
}


def test_who_sees_which_retention_page(site: World) -> None:
    for who, allowed in ALLOWED.items():
        for path in PAGES:
            r = page(site, who, path)
            assert r.status_code == (200 if path in allowed else 403), (who, path)
            if r.status_code == 200:
                assert not re.search(r"<script(?![^>]*\bsrc=)|\sstyle=", r.text)  # the CSP allows neither


def test_a_disposal_from_the_forms_alone_with_its_certificate(site: World) -> None:
    w = site
    rec = w.recording(
        b"old footage from the forms",
        started_at=LONG_AGO,
        verified_at=LONG_AGO,
        uploaded_at=LONG_AGO,
        docked_at=LONG_AGO,
        serial="DSJ-P001",
    )
    retention_apply(w.ctx)
    r = form(w, "devadmin1", "/retention/holds", target="device", value="DSJ-P001", reason="投诉复核")
    assert (r.status_code, r.headers["location"]) == (303, "/retention/holds?done=placed")
    assert "DSJ-P001" in page(w, "legal", "/retention/holds").text
    assert f'value="{rec}"' not in page(w, "legal", "/retention/due").text  # held: not offered for disposal
    assert form(w, "legal", "/retention/holds/1/lift", reason="复核结束").status_code == 303
    due = page(w, "legal", "/retention/due", lang="en").text
    assert f'name="recording_ids" value="{rec}"' in due and "Due for disposal" in due

    r = form(w, "legal", "/retention/disposals", recording_ids=[str(rec)], reason="保存期限届满")
    assert r.headers["location"] == "/retention/approvals?done=requested"
    assert form(w, "legal", "/retention/disposals/1/approve", note="已核对").status_code == 303
    r = form(w, "legal", "/retention/disposals/1/approve")
    assert r.status_code == 422 and "第二项审批须由他人作出" in r.text
    r = form(w, "legal", "/retention/disposals/1/execute")
    assert r.status_code == 422 and "两名不同人员" in r.text
    assert form(w, "admin", "/retention/disposals/1/approve").status_code == 303
    assert form(w, "admin", "/retention/disposals/1/execute").headers["location"] == "/retention/approvals?done=execute"

    listing = page(w, "auditor", "/retention/certificates").text
    number = re.search(r"DC-\d{4}-\d{6}", listing)
    assert number is not None
    cert = page(w, "auditor", "/retention/certificates/1").text
    assert number.group(0) in cert and "保存期限届满" in cert and "孙法规" in cert and "系统管理员" in cert
    with w.session() as s:
        refused = [
            e.details["code"]
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action == "retention.refused").order_by(AuditEvent.seq)
            )
        ]
    assert refused == ["already_approved", "needs_two_approvals"]


def test_the_policy_form_saves_a_longer_policy_and_asks_approval_for_a_shorter_one(site: World) -> None:
    w = site
    fields = {
        "unlinked_months": "12",
        "closed_case_years": "5",
        "permanent_kinds": "major, obstruction, mass_incident",
        "lock_horizon_days": "365",
        "reason": "延长",
    }
    assert form(w, "legal", "/retention/policy", **fields).headers["location"] == "/retention?done=saved"
    r = form(w, "legal", "/retention/policy", **{**fields, "unlinked_months": "6", "reason": "缩短"})
    assert r.headers["location"] == "/retention?done=requested"
    assert 'id="p-unlinked">12<' in page(w, "auditor", "/retention").text
    r = form(w, "legal", "/retention/policy", **{**fields, "unlinked_months": "2"})
    assert r.status_code == 422 and "规则无效" in r.text
    approvals = page(w, "admin", "/retention/approvals").text
    assert 'action="/retention/changes/1/approve"' in approvals


def test_the_pages_show_marked_recordings_kept_for_review_and_skipped_by_a_run(site: World) -> None:
    w = site
    old = {"started_at": LONG_AGO, "verified_at": LONG_AGO, "uploaded_at": LONG_AGO, "docked_at": LONG_AGO}
    marked = w.recording(b"old footage the recorder marked", name="DSJ-P002_IMP.MP4", **old)
    sibling = w.recording(b"old footage nobody marked", **old)
    retention_apply(w.ctx)
    assert w.post("officer1", f"/api/v1/recordings/{marked}/important", {"action": "set"}).status_code == 200
    due = page(w, "legal", "/retention/due").text
    assert f'value="{marked}"' not in due and f'value="{sibling}"' in due
    waiting = re.search(r'<ul id="awaiting-review">.*?</ul>', due, re.S)
    assert waiting is not None and "DSJ-P002_IMP.MP4" in waiting.group(0) and "待复核" in due

    r = form(w, "legal", "/retention/disposals", recording_ids=[str(marked), str(sibling)], reason="保存期限届满")
    assert r.status_code == 303, r.text
    approvals = page(w, "legal", "/retention/approvals").text
    skipped = re.search(rf'<span class="badge important" id="skipped-1-{marked}" title="([^"]*)"', approvals)
    assert skipped is not None and "not yet reviewed" in skipped.group(1)
    assert f'id="skipped-1-{sibling}"' not in approvals
