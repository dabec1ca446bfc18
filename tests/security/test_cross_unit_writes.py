"""Every write is scoped like every read: unit 1's callers try every mutating route on unit 2's real records.

For each mutating route of the app (API and pages, walked as ``tests/security`` walks them), every
unit-bound caller the route admits (officer, device administrator, case handler, and unit 1's station)
sends the attempts of ``cross_unit.PROBES`` with unit 2's real identifiers, and again with identifiers
that name nothing. The first must be refused, and with the very answer the second gets, so that no
answer tells whether another unit's record exists; and unit 2's rows in the database must be exactly
as before. Roles that act on every unit (legal affairs, auditors, system administrators) are admitted
across units by design and are not tried here; ``test_routes_for_every_unit_admit_no_unit_bound_caller``
holds the routes marked for them to that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from evidence_server.accounts.models import ALL_UNITS_ROLES, Role
from evidence_server.app import create_app
from evidence_server.security import route_table
from tests.security.conftest import count
from tests.security.cross_unit import (
    PROBES,
    AllUnitsOnly,
    CrossWorld,
    NoUnitObject,
    Probe,
    build_cross_world,
    fill,
    same_answer,
    unit2_snapshot,
    used_keys,
)
from tests.support.databases import SqliteTemplates

UNIT_BOUND = tuple(sorted(r.value for r in Role if r not in ALL_UNITS_ROLES))
CALLERS = (*UNIT_BOUND, "station")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def mutating_routes(cw: CrossWorld) -> dict[str, frozenset[str]]:
    return {
        f"{method} {path}": roles
        for methods, path, roles in route_table(create_app(cw.world.server.settings()))
        for method in methods.split(",")
        if method in MUTATING
    }


class Callers:
    """An HTTP client per caller: bearer tokens for the API, a logged-in browser session (cookie and
    CSRF token) for the pages, unit 1's station with its token."""

    def __init__(self, cw: CrossWorld) -> None:
        self.cw = cw
        self.api: dict[str, httpx.Client] = {}
        self.pages: dict[str, tuple[httpx.Client, str]] = {}

    def client(self, caller: str) -> httpx.Client:
        if caller == "station":
            return self.cw.world.units[1].station.http
        if caller not in self.api:
            self.api[caller] = httpx.Client(base_url=self.cw.url, headers=self.cw.world.headers(caller), timeout=60)
        return self.api[caller]

    def page(self, caller: str) -> tuple[httpx.Client, str]:
        if caller not in self.pages:
            http = httpx.Client(base_url=self.cw.url, timeout=60)
            username = f"{caller}-u1"
            r = http.post("/api/v1/auth/login", json={"username": username, "password": f"{username}-password-123"})
            r.raise_for_status()
            home = http.get("/", follow_redirects=True)
            token = CSRF_FIELD.search(home.text)
            assert token, f"no CSRF token on the home page of {caller}"
            self.pages[caller] = (http, token.group(1))
        return self.pages[caller]

    def send(self, caller: str, route: str, probe: Probe, ids: dict[str, str]) -> httpx.Response:
        method, template = route.split(" ", 1)
        path = re.sub(r"\{(\w+)\}", lambda m: str(fill(probe.params.get(m.group(1), ""), ids)), template)
        headers = {k: str(v) for k, v in fill(probe.headers, ids).items()}
        count("cross-unit requests")
        if path.startswith("/api/") or caller == "station":
            return self.client(caller).request(method, path, json=fill(probe.body, ids), headers=headers)
        http, token = self.page(caller)
        form = {k: str(v) for k, v in fill(probe.body or {}, ids).items()} | {"csrf_token": token}
        return http.request(method, path, data=form, headers=headers, follow_redirects=False)

    def close(self) -> None:
        for http in self.api.values():
            http.close()
        for http, _ in self.pages.values():
            http.close()


@pytest.fixture(scope="module")
def cross(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[CrossWorld]:
    cw = build_cross_world(tmp_path_factory.mktemp("cross-unit"), sqlite_templates)
    yield cw
    cw.world.server.stop()


@pytest.fixture(scope="module")
def callers(cross: CrossWorld) -> Iterator[Callers]:
    c = Callers(cross)
    yield c
    c.close()


@pytest.fixture(scope="module")
def routes(cross: CrossWorld) -> dict[str, frozenset[str]]:
    return mutating_routes(cross)


def test_every_mutating_route_has_a_cross_unit_case(routes: dict[str, frozenset[str]]) -> None:
    missing = sorted(set(routes) - set(PROBES))
    stale = sorted(set(PROBES) - set(routes))
    assert not missing, (
        "mutating routes without a cross-unit case in tests/security/cross_unit.py PROBES:\n" + "\n".join(missing)
    )
    assert not stale, "cross-unit cases for routes that no longer exist:\n" + "\n".join(stale)
    assert len(routes) > 70


def test_routes_for_every_unit_admit_no_unit_bound_caller(routes: dict[str, frozenset[str]]) -> None:
    wrong = [
        f"{route} admits {sorted(roles & {*CALLERS, 'public'})}: give it probes with another unit's ids"
        for route, roles in routes.items()
        if isinstance(PROBES.get(route), AllUnitsOnly) and roles & {*CALLERS, "public"}
    ]
    assert wrong == [], "\n".join(wrong)
    assert all(p.why for p in PROBES.values() if isinstance(p, NoUnitObject))


def test_the_identifiers_tried_are_real_records_of_the_other_unit(cross: CrossWorld) -> None:
    """The attempts name unit 2's records that exist (a sysadmin sees each), not placeholders."""
    ids, w = cross.real, cross.world
    sysadmin = {"Authorization": f"Bearer {w.tokens['sysadmin']}"}
    legal = {"Authorization": f"Bearer {w.tokens['legal_affairs']}"}
    for path, headers in [
        (f"/api/v1/cases/{ids['case2']}", sysadmin),
        (f"/api/v1/recordings/{ids['recording2']}", sysadmin),
        (f"/api/v1/transfers/{ids['transfer2']}/task", sysadmin),
        (f"/api/v1/devices/{ids['serial2']}", sysadmin),
        (f"/api/v1/ledger/entries/{ids['entry2']}", sysadmin),
        (f"/api/v1/compliance/flags/{ids['flag2']}", legal),
    ]:
        r = httpx.get(w.server.url + path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert r.json().get("unit_id", 2) == 2, path
    assert int(ids["station2"]) in [
        s["id"] for s in httpx.get(w.server.url + "/api/v1/stations", headers=sysadmin).json() if s["unit_id"] == 2
    ]
    assert int(ids["lend2"]) in [
        r["id"] for r in httpx.get(w.server.url + "/api/v1/ledger/lend-requests", headers=sysadmin).json()
    ]
    shares = httpx.get(w.server.url + f"/api/v1/cases/{ids['case2']}/shares", headers=sysadmin).json()
    assert int(ids["share2"]) in [s["id"] for s in shares]
    head = w.units[2].station.http.head(f"/api/v1/uploads/{ids['upload2']}")
    assert head.status_code == 200, head.text


def _params() -> list[Any]:
    out = []
    for route, case in sorted(PROBES.items()):
        if not isinstance(case, list):
            continue
        pending = [p.pending for p in case if p.pending]
        marks = [pytest.mark.xfail(reason=f"awaits {pending[0]}", strict=False)] if pending else []
        out.append(pytest.param(route, marks=marks, id=route))
    return out


@pytest.mark.parametrize("route", _params())
def test_no_unit_bound_caller_reaches_another_units_records(
    route: str, cross: CrossWorld, callers: Callers, routes: dict[str, frozenset[str]]
) -> None:
    before = unit2_snapshot(cross.world)
    probes = PROBES[route]
    assert isinstance(probes, list)
    admitted = [c for c in CALLERS if c in routes[route]]
    assert admitted, f"{route} admits no unit-bound caller: mark it AllUnitsOnly"
    wrong: list[str] = []
    for caller in admitted:
        for probe in probes:
            real = callers.send(caller, route, probe, cross.real)
            what = f"{caller} {route} {probe.params or ''} {probe.body or ''}"
            if real.status_code >= 500 or real.status_code < 400:
                wrong.append(f"{what}: answered {real.status_code} {real.text[:160]}")
                continue
            if not probe.same_as_ghost:
                continue
            ghost = callers.send(caller, route, probe, cross.ghost)
            pairs = {(cross.real[k], cross.ghost[k]) for k in used_keys(probe)}
            same, where = same_answer(real.text, ghost.text, pairs)
            if real.status_code != ghost.status_code or not same:
                wrong.append(
                    f"{what}: another unit's record answers {real.status_code}, one that does not exist "
                    f"{ghost.status_code}; {where}"
                )
    after = unit2_snapshot(cross.world)
    changed = [table for table in before if after.get(table) != before[table]]
    assert wrong == [] and changed == [], "\n".join(wrong + [f"unit 2's {t} changed" for t in changed])


def test_a_docks_task_never_moves_another_units_recording_into_a_case(cross: CrossWorld) -> None:
    """Found: a station of unit 2 got a unit 1 recording named in its transfer; a unit 2 case handler then
    set the dock's task, which linked the recording into a unit 2 case, and could download it.

    Whatever a transfer names (the station's claim is put straight into the database here, as a flaw
    in custody would leave it), the task links only the transfer's unit's own recordings."""
    w, own, other = cross.world, cross.world.units[1], cross.world.units[2]
    foreign = own.recording_ids[1]
    engine = create_engine(w.server.settings().database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO transfer_files (transfer_id, recording_id, path, verified_at) "
                "VALUES (:t, :r, 'DCIM/invented.MP4', CURRENT_TIMESTAMP)"
            ),
            {"t": other.transfer_id, "r": foreign},
        )
    engine.dispose()
    handler = {"Authorization": f"Bearer {w.tokens['case_handler@u2']}"}
    r = httpx.put(
        w.server.url + f"/api/v1/transfers/{other.transfer_id}/task",
        json={"enforcement_matter": "联合检查", "case_number": other.case_number},
        headers=handler,
    )
    assert r.status_code == 200, r.text
    linked = httpx.get(w.server.url + f"/api/v1/cases/{other.case_id}/links", headers=handler).json()
    assert foreign not in [lk["recording_id"] for lk in linked]
    assert set(other.recording_ids) <= {lk["recording_id"] for lk in linked}  # its own were linked
    for path in (f"/api/v1/recordings/{foreign}", f"/api/v1/recordings/{foreign}/content"):
        assert httpx.get(w.server.url + path, headers=handler).status_code == 404
    task = httpx.get(
        w.server.url + "/api/v1/audit/entries",
        params={"action": "transfer.task"},
        headers={"Authorization": f"Bearer {w.tokens['sysadmin']}"},
    ).json()["items"][-1]
    assert task["details"]["left_out_other_unit"] == [foreign]
