"""The compliance pages in both languages: the flag list with drill-down, one flag with its evidence,
the officer's day and the review forms, and the dashboard with its server-rendered charts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from evidence_server.app import create_app
from evidence_server.compliance import facts
from evidence_server.compliance.models import STATES
from evidence_server.compliance.review import TRANSITIONS
from evidence_server.security import SESSION_COOKIE
from tests.compliance.conftest import Site
from tests.compliance.test_api import violations
from web_ui import i18n


class Browser:
    def __init__(self, client: TestClient, site: Site) -> None:
        self.client, self.site = client, site

    def as_(self, who: str, lang: str = "zh") -> TestClient:
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, self.site.tokens[who])
        self.client.cookies.set("lang", lang)
        return self.client

    def post_form(self, who: str, path: str, page: str, data: dict[str, str]) -> object:
        c = self.as_(who)
        text = c.get(page, headers={"accept": "text/html"}).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert token is not None
        return c.post(path, data={"csrf_token": token.group(1), **data}, follow_redirects=False)


@pytest.fixture
def browser(sqlite_site: Site) -> Iterator[Browser]:
    with TestClient(create_app(sqlite_site.settings)) as client:
        yield Browser(client, sqlite_site)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_flags_the_dashboard_and_a_flag_render_in_both_languages(browser: Browser, lang: str) -> None:
    ids = violations(browser.site)
    c = browser.as_("legal", lang)
    listing = c.get("/compliance")
    assert listing.status_code == 200
    for kind in ids:
        assert i18n.translate(lang, f"compliance_kind.{kind}") in listing.text
    board = c.get("/compliance/dashboard")
    assert board.status_code == 200
    assert board.text.count("<svg") == 2 and 'id="chart-flags"' in board.text and 'id="chart-rate"' in board.text
    assert "style=" not in board.text and "<script>" not in board.text  # the CSP allows neither
    assert re.search(r'<a href="/compliance\?month=\d{4}-\d{2}"><rect', board.text)  # a bar drills down
    assert 'href="/api/v1/compliance/report.pdf?' in board.text
    drill = re.search(r'href="(/compliance\?[^"]*kind=device_overdue[^"]*)"', board.text)
    assert drill is not None
    assert f'id="flag-{ids["device_overdue"]}"' in c.get(drill.group(1).replace("&amp;", "&")).text
    page = c.get(f"/compliance/flags/{ids['late_transfer']}")
    assert page.status_code == 200
    assert i18n.translate(lang, "compliance_ev.deadline") in page.text
    assert 'id="timeline"' in page.text and 'data-kind="recording"' in page.text
    assert 'id="review-form"' in page.text and 'id="explain-form"' not in page.text


def test_reviewing_and_explaining_through_the_forms(browser: Browser) -> None:
    flag = violations(browser.site)["late_transfer"]
    page = f"/compliance/flags/{flag}"
    r = browser.post_form("officer1", page + "/explain", page, {"body": "采集站断网"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    r = browser.post_form("legal", page + "/review", page, {"state": "under_review"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    r = browser.post_form("legal", page + "/review", page, {"state": "confirmed", "reason": ""})
    assert r.status_code == 422 and "flag-error" in r.text  # type: ignore[attr-defined]
    r = browser.post_form("legal", page + "/review", page, {"state": "confirmed", "reason": "超时30小时"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    text = browser.as_("officer1").get(page).text
    assert 'data-state="confirmed"' in text and "采集站断网" in text and "超时30小时" in text
    assert 'id="review-form"' not in text
    forged = browser.as_("legal").post(page + "/comment", data={"csrf_token": "x" * 30, "body": "x"})
    assert forged.status_code == 403
    assert browser.as_("handler").get("/compliance", headers={"accept": "text/html"}).status_code == 403


@pytest.mark.parametrize("lang", sorted(i18n.LANGUAGES))
def test_every_key_the_compliance_pages_build_is_in_the_catalogue(lang: str) -> None:
    keys = {f"compliance_kind.{k.value}" for k in facts.Kind} | {f"compliance_help.{k.value}" for k in facts.Kind}
    keys |= {f"compliance_state.{s}" for s in STATES} | {
        f"compliance_state.{s}" for t in TRANSITIONS.values() for s in t
    }
    keys |= {
        f"compliance_action.{a}"
        for a in ("raised", "changed", "cleared", "reopened", "review", "assign", "comment", "explain")
    }
    keys |= {
        f"compliance_sign.{s}"
        for s in (
            "editor_encoder",
            "foreign_encoder",
            "creation_time_vs_name",
            "creation_time_vs_neighbours",
            "bitrate",
            "resolution",
        )
    }
    keys |= {f"compliance_ev.{k}" for k in evidence_keys()}
    assert sorted(keys - set(i18n.catalogue(lang))) == []


def evidence_keys() -> set[str]:
    """Every key any rule puts in its evidence (from the sources: the rules build literal dicts)."""
    from pathlib import Path

    found: set[str] = set()
    for module in ("rules.py", "access.py", "facts.py"):
        text = (Path(facts.__file__).parent / module).read_text(encoding="utf-8")
        found |= set(re.findall(r'[{,(]\s*"([a-z_]+)":', text))
    return found
