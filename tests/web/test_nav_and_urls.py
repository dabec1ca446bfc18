"""Navigation by role, the route-to-role map of the pages, redirect targets and display filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute

from evidence_server.accounts.models import Role
from evidence_server.security import ROLE_MARK
from web_ui.nav import NAV, home_for, nav_for
from web_ui.pages import (
    admin,
    auditlog,
    auth,
    cases,
    compliance,
    fleet,
    home,
    ledger,
    recordings,
    retention,
    stations,
)
from web_ui.render import duration, filesize, local_time, short_hash
from web_ui.urls import safe_next

LEDGER_NAV = [("/devices", "nav.devices"), ("/ledger", "nav.ledger")]
SUPERVISOR_NAV = [("/recordings", "nav.recordings"), ("/stations", "nav.stations"), *LEDGER_NAV]
CASES, SEARCH, INCOMPLETE = (
    ("/cases", "nav.cases"),
    ("/search", "nav.search"),
    ("/transfers/incomplete", "nav.incomplete"),
)
FLEET = ("/fleet", "nav.fleet")
FLAGS, FIGURES = ("/compliance", "nav.compliance"), ("/compliance/dashboard", "nav.compliance_dashboard")
RETENTION, HOLDS = ("/retention/due", "nav.retention"), ("/retention/holds", "nav.holds")
HOME, AUDIT, ADMIN = ("/", "nav.home"), ("/audit", "nav.audit"), ("/admin", "nav.admin")


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.officer, [HOME, ("/recordings", "nav.my_recordings"), *LEDGER_NAV, INCOMPLETE, FLAGS]),
        (Role.device_admin, [HOME, *SUPERVISOR_NAV, SEARCH, INCOMPLETE, FLEET, FLAGS, FIGURES, HOLDS, ADMIN]),
        (Role.legal_affairs, [HOME, *SUPERVISOR_NAV, CASES, SEARCH, INCOMPLETE, FLAGS, FIGURES, RETENTION, AUDIT]),
        (Role.auditor, [HOME, *SUPERVISOR_NAV, CASES, SEARCH, FLAGS, FIGURES, RETENTION, AUDIT]),
        (Role.sysadmin, [HOME, *SUPERVISOR_NAV, CASES, SEARCH, INCOMPLETE, FLEET, RETENTION, AUDIT, ADMIN]),
        (Role.case_handler, [HOME, ("/recordings", "nav.recordings"), CASES, SEARCH, INCOMPLETE, HOLDS]),
    ],
)
def test_navigation_by_role(role: Role, expected: list[tuple[str, str]]) -> None:
    assert [(e.path, e.label_key) for e in nav_for(role)] == expected
    assert home_for(role) == expected[0][0]


def declared_roles(route: APIRoute) -> set[str]:
    roles: set[str] = set()
    stack: list[Any] = [route.dependant]
    while stack:
        dep = stack.pop()
        roles |= set(getattr(dep.call, ROLE_MARK, ()))
        stack.extend(dep.dependencies)
    return roles


def page_routes() -> list[APIRoute]:
    """The page routes as ``web_ui.mount`` includes them (the routers carry no prefix)."""
    routers = (
        auth.router,
        recordings.router,
        stations.router,
        ledger.router,
        fleet.router,
        cases.router,
        compliance.router,
        retention.router,
        home.router,
        admin.router,
        auditlog.router,
    )
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


def test_every_page_route_declares_its_roles() -> None:
    routes = page_routes()
    assert {r.path for r in routes} >= {"/login", "/logout", "/lang/{code}", "/stations", "/recordings"}
    assert [r.path for r in routes if not declared_roles(r)] == []


def test_each_nav_entry_leads_to_a_page_its_roles_may_open() -> None:
    by_path = {r.path: r for r in page_routes() if "GET" in (r.methods or ())}
    for entry in NAV:
        assert {r.value for r in entry.roles} <= declared_roles(by_path[entry.path]), entry


@pytest.mark.parametrize(
    "value",
    [
        "/",
        "/stations",
        "/recordings?device_serial=DSJ0001&page=2",
        "/recordings/5",
        "/a%2F%2Fb",
    ],
)
def test_local_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "stations",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http://evil.example/",
        "https:/evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        " /stations",
        "/x y",
        "/" + "a" * 2001,
    ],
)
def test_anything_else_falls_back(value: str | None) -> None:
    assert safe_next(value, "/home") == "/home"


def test_times_show_shanghai_wall_time_with_the_zone() -> None:
    moment = datetime(2026, 11, 20, 16, 30, 5, tzinfo=UTC)
    assert local_time(moment, ZoneInfo("Asia/Shanghai")) == "2026-11-21 00:30:05 UTC+08:00"
    assert local_time(None, ZoneInfo("Asia/Shanghai")) == "—"


@pytest.mark.parametrize(
    ("n", "shown"), [(None, "—"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024**3, "3.0 GiB")]
)
def test_filesize(n: int | None, shown: str) -> None:
    assert filesize(n) == shown


def test_duration_and_short_hash() -> None:
    assert duration(3725.4) == "1:02:05"
    assert duration(None) == "—"
    assert short_hash("blake3:" + "ab" * 32) == "abababababab…"
