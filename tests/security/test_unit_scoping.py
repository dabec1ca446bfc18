"""Unit scoping: a user of unit 1 sees nothing of unit 2's footage or records, through any route.

Every GET route a unit-bound role may call is asked with unit 2's identifiers in its path (and as
filters in its query); no answer may carry unit 2's device serial, transfer id or fingerprints. The
all-units roles (legal affairs, auditor, sysadmin) must see them, which proves the markers are real.
"""

from __future__ import annotations

import re

import httpx
import pytest

from evidence_server.accounts.models import ALL_UNITS_ROLES, Role
from evidence_server.app import create_app
from evidence_server.security import route_table
from tests.security.conftest import UnitRecords, World, count

UNIT_BOUND = sorted(r.value for r in Role if r not in ALL_UNITS_ROLES)


def params_for(other: UnitRecords) -> dict[str, str]:
    """Path parameter → unit 2's value for it (unknown parameters get 1)."""
    return {
        "recording_id": str(other.recording_ids[0]),
        "transfer_id": other.transfer_id,
        "serial": other.serial,
        "station_id": "2",
        "unit_id": str(other.unit_id),
        "case_id": str(other.case_id or 2),
        "number": other.case_number or "2",
        "code": "zh",
    }


def queries_for(other: UnitRecords) -> dict[str, str]:
    return {
        "device_serial": other.serial,
        "serial": other.serial,
        "officer_no": other.officer_no,
        "transfer_id": other.transfer_id,
        "unit_id": str(other.unit_id),
        "q": other.serial,
        "unit": str(other.unit_id),
    }


def get_routes(world: World) -> list[tuple[str, frozenset[str]]]:
    return [
        (path, roles)
        for methods, path, roles in route_table(create_app(world.server.settings()))
        if "GET" in methods.split(",")
    ]


def leaks(resp: httpx.Response, other: UnitRecords) -> list[str]:
    """Unit 2's markers in an answer, beyond those the request itself carried (pages echo filters)."""
    asked = str(resp.request.url)
    return [m for m in other.markers() if m and m in resp.text and m not in asked]


@pytest.mark.parametrize("role", UNIT_BOUND)
def test_unit_bound_roles_see_nothing_of_another_unit(world: World, role: str) -> None:
    other = world.units[2]
    values, query = params_for(other), queries_for(other)
    found: list[str] = []
    with httpx.Client(base_url=world.server.url, timeout=30, headers=world.headers(role)) as http:
        for path, roles in get_routes(world):
            if role not in roles:
                continue
            url = re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "1"), path)
            for params in ({}, query):
                resp = http.get(url, params=params)
                count("unit-scoping requests")
                assert resp.status_code < 500, (url, resp.status_code, resp.text[:200])
                if resp.status_code == 200 and (hit := leaks(resp, other)):
                    found.append(f"{role} GET {url} {params or ''}: shows {hit}")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("role", sorted(r.value for r in ALL_UNITS_ROLES))
def test_all_units_roles_do_see_the_other_unit(world: World, role: str) -> None:
    other = world.units[2]
    r = httpx.get(
        world.server.url + "/api/v1/recordings", params={"device_serial": other.serial}, headers=world.headers(role)
    )
    assert r.status_code == 200 and r.json()["total"] == len(other.recording_ids)
    assert leaks(r, other)  # the leak detector sees unit 2's records where they may be seen


def test_own_unit_is_visible_so_the_scoping_is_not_just_an_empty_answer(world: World) -> None:
    own = world.units[1]
    for role in ("device_admin", "case_handler", "officer"):
        r = httpx.get(world.server.url + f"/api/v1/recordings/{own.recording_ids[0]}", headers=world.headers(role))
        assert r.status_code == 200, (role, r.text)
        other = world.units[2]
        r = httpx.get(
            world.server.url + f"/api/v1/recordings/{other.recording_ids[0]}/content", headers=world.headers(role)
        )
        assert r.status_code == 404, (role, r.status_code)
