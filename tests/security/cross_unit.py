"""Every mutating route, tried by unit 1's callers on unit 2's real records: the catalogue of attempts.

``PROBES`` names, for each mutating route of the app (API and pages), how it is tried across units:
``Probe``s put unit 2's identifiers (``{case2}``, ``{serial2}``...) in its path, body or headers; the same
request is also sent with identifiers that name nothing (the "ghost"), and both answers must be the
same refusal, so that an answer never tells whether another unit's id exists. Routes that no
unit-bound caller may call at all say ``AllUnitsOnly``; routes that touch no unit's record (login,
the station's own heartbeat) say ``NoUnitObject`` with the reason. A new mutating route without an
entry fails ``test_every_mutating_route_has_a_cross_unit_case``.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect, text

from tests.security.conftest import World, build_world
from tests.support.databases import SqliteTemplates

FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat()
GHOST_UUID = "00000000-0000-4000-8000-00000000dead"
UNREGISTERED2 = "DSJB8888"  # met at unit 2's dock, not yet in its register


@dataclass(frozen=True)
class Probe:
    """One attempt: path parameters, a JSON (API) or form (page) body and headers, with ``{key}``
    placeholders filled from unit 2's real identifiers, or from ghost ones."""

    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: False where the answer cannot be the ghost's: the id is a global one the caller holds in hand
    #: (a device serial read off the docked device, a case number issued by the bureau). Still refused.
    same_as_ghost: bool = True
    #: the issue item, owned by another branch, that makes this probe pass (xfail until merged)
    pending: str | None = None


@dataclass(frozen=True)
class AllUnitsOnly:
    """Only roles that act on every unit (legal affairs, auditors, system administrators) may call it."""


@dataclass(frozen=True)
class NoUnitObject:
    why: str


@dataclass(frozen=True)
class Int:
    """A placeholder sent as a JSON number (``"{key}"`` strings are sent as text)."""

    key: str


Case = list[Probe] | AllUnitsOnly | NoUnitObject
ALL = AllUnitsOnly()
REASON = {"reason": "跨单位尝试"}
CHECKOUT = {"enforcement_matter": "检查", "expected_return_at": FUTURE}
PAGE_CHECKOUT = {"enforcement_matter": "检查", "expected_return_at": "2030-01-01T10:00"}
LEND = {"borrower_name": "市局", "purpose": "联合检查", "expected_return_at": FUTURE}
CASE2, SERIAL2 = {"case_id": "{case2}"}, {"serial": "{serial2}"}
DOCK = {
    "transfer_id": str(uuid.uuid4()),
    "docked_at": "2026-11-21T10:00:00Z",
    "device": {"serial": "{serial2}", "family": "folder"},
    "officer": {"number": "{officer_no2}", "name": "张三"},
    "index": [],
}


def holds() -> list[Probe]:
    return [
        Probe(body={"target": target, "value": value, **REASON})
        for target, value in (
            ("recording", "{recording2}"),
            ("case", "{case2}"),
            ("device", "{serial2}"),
            ("officer", "{officer_no2}"),
        )
    ]


PROBES: dict[str, Case] = {
    # --- accounts, audit ---
    "POST /api/v1/auth/login": NoUnitObject("public: a username and password, no unit's record"),
    "POST /api/v1/auth/logout": NoUnitObject("ends the caller's own session"),
    "POST /api/v1/auth/password": NoUnitObject("changes the caller's own password"),
    "POST /api/v1/users": ALL,
    "POST /api/v1/audit/checkpoints": ALL,
    "POST /api/v1/audit/excerpts": ALL,
    # --- administration ---
    "POST /api/v1/admin/units": ALL,
    "POST /api/v1/admin/users": [
        Probe(body={"username": "probe-u2", "role": "officer", "unit_id": Int("unit2"), "officer_no": "990001"})
    ],
    "PATCH /api/v1/admin/users/{user_id}": [Probe({"user_id": "{officer_user2}"}, {"active": False})],
    "POST /api/v1/admin/users/{user_id}/password": [Probe({"user_id": "{officer_user2}"}, {})],
    # --- stations ---
    "POST /api/v1/stations": [Probe(body={"name": "probe-station", "unit_id": Int("unit2")})],
    "POST /api/v1/stations/{station_id}/revoke": [Probe({"station_id": "{station2}"})],
    "POST /api/v1/stations/{station_id}/re-enrol": [Probe({"station_id": "{station2}"}, REASON)],
    "POST /api/v1/stations/{station_id}/replace-credentials": [Probe({"station_id": "{station2}"}, REASON)],
    "POST /api/v1/stations/me/ports": NoUnitObject("the calling station's own ports"),
    "POST /api/v1/stations/enrol": NoUnitObject("public: a one-time code is the only thing it names"),
    "POST /api/v1/stations/me/heartbeat": NoUnitObject("the calling station's own record"),
    "POST /api/v1/stations/me/token": NoUnitObject("the calling station's own token"),
    "PUT /api/v1/stations/{station_id}/units/{unit_id}": ALL,
    "DELETE /api/v1/stations/{station_id}/units/{unit_id}": ALL,
    # --- push ingest (issue 20): push accounts act on their own account only ---
    "POST /api/v1/push/accounts": [Probe(body={"name": "probe", "unit_id": Int("unit2")})],
    **{
        route: NoUnitObject(
            "a push account's own Swift account (another's is 403); another unit's recorder is refused 403 "
            "and shown to the account's unit (tests/push/test_swift_flow.py::"
            "test_a_unit2_account_cannot_deliver_for_a_unit1_device)"
        )
        for route in (
            "PUT /v1/{account}/{container}",
            "POST /v1/{account}/{container}",
            "PUT /v1/{account}/{container}/{name:path}",
            "POST /v1/{account}/{container}/{name:path}",
        )
    },
    # --- the station's transfers and uploads ---
    "POST /api/v1/transfers": [Probe(body=DOCK, same_as_ghost=False)],
    "PUT /api/v1/transfers/{transfer_id}/progress": [
        Probe({"transfer_id": "{transfer2}"}, {"state": "uploading", "files_done": 0})
    ],
    "POST /api/v1/transfers/{transfer_id}/complete": [Probe({"transfer_id": "{transfer2}"}, {})],
    "POST /api/v1/uploads": [Probe(headers={"Upload-Length": "10", "Upload-Metadata": "{upload_meta2}"})],
    "PATCH /api/v1/uploads/{upload_id}": [
        Probe(
            {"upload_id": "{upload2}"},
            headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
    ],
    "DELETE /api/v1/uploads/{upload_id}": [Probe({"upload_id": "{upload2}"})],
    # --- devices and the ledger ---
    "POST /api/v1/devices": [
        Probe(body={"serial": "DSJP0001", "unit_id": Int("unit2")}),
        Probe(body={"serial": "{serial2}", "unit_id": Int("unit1")}, same_as_ghost=False),
        Probe(body={"serial": "{unregistered2}", "unit_id": Int("unit1")}, same_as_ghost=False),
    ],
    "POST /api/v1/devices/{serial}/restored": [Probe(SERIAL2, {})],
    "POST /api/v1/devices/{serial}/retire": [Probe(SERIAL2, {})],
    "POST /api/v1/devices/{serial}/readings": [
        Probe(SERIAL2, {"read_at": FUTURE, "battery_percent": 5}, same_as_ghost=False)
    ],
    "POST /api/v1/ledger/checkouts": [
        Probe(body={**SERIAL2, **CHECKOUT}),
        Probe(body={"serial": "{serial1}", "officer_id": Int("officer_user2"), **CHECKOUT}),
    ],
    "POST /api/v1/ledger/returns": [Probe(body={**SERIAL2, "condition": "good"})],
    "POST /api/v1/ledger/faults": [Probe(body={**SERIAL2, "kind": "fault", "description": "x"})],
    "POST /api/v1/ledger/corrections": [
        Probe(body={"entry_id": Int("entry2"), "changes": {"description": "x"}, **REASON})
    ],
    "POST /api/v1/ledger/lend-requests": [Probe(body={**SERIAL2, **LEND})],
    "POST /api/v1/ledger/lend-requests/{request_id}/approve": [Probe({"request_id": "{lend2}"}, {})],
    "POST /api/v1/ledger/lend-requests/{request_id}/reject": [Probe({"request_id": "{lend2}"}, {})],
    "PUT /api/v1/ledger/units/{unit_id}/allocation": ALL,
    # --- cases and the dock's task ---
    "POST /api/v1/cases": [
        Probe(body={"number": "杭西市监处罚〔2026〕555号", "name": "x", "unit_id": Int("unit2")}),
        Probe(body={"number": "{case_number2}", "name": "x"}, same_as_ghost=False),
    ],
    "PATCH /api/v1/cases/{case_id}": [Probe(CASE2, {"name": "改名"})],
    "POST /api/v1/cases/{case_id}/links": [
        Probe(CASE2, {"recording_id": Int("recording1"), **REASON}),
        Probe({"case_id": "{case1}"}, {"recording_id": Int("recording2"), **REASON}),
    ],
    "POST /api/v1/cases/{case_id}/links/{recording_id}/unlink": [
        Probe({**CASE2, "recording_id": "{recording2}"}, REASON),
        Probe({"case_id": "{case1}", "recording_id": "{recording2}"}, REASON),
    ],
    "POST /api/v1/cases/{case_id}/shares": [Probe(CASE2, {"unit_id": Int("unit1"), **REASON})],
    "POST /api/v1/cases/{case_id}/shares/{share_id}/revoke": [Probe({**CASE2, "share_id": "{share2}"}, {})],
    "POST /api/v1/cases/{case_id}/package-links": [
        Probe(CASE2, {"recipient": "某律师", "expires_at": FUTURE}),
    ],
    "POST /api/v1/cases/{case_id}/package-links/{link_id}/revoke": [Probe({**CASE2, "link_id": "1"}, {})],
    "POST /api/v1/cases/{case_id}/handovers": [  # a 移交回执 for another unit's case (issue 19)
        Probe(
            CASE2,
            {
                "recipient_kind": "court",
                "organisation": "某法院",
                "person": "某人",
                "id_number": "1",
                "package_digest": "sha256:" + "0" * 64,
            },
        )
    ],
    "PUT /api/v1/transfers/{transfer_id}/task": [
        Probe({"transfer_id": "{transfer2}"}, {"enforcement_matter": "检查"}),
        Probe({"transfer_id": "{transfer1}"}, {"case_number": "{case_number2}"}),
    ],
    # --- the important mark (重要文件标记): officers their own, case handlers their unit's ---
    "POST /api/v1/recordings/{recording_id}/important": [
        Probe({"recording_id": "{recording2}"}, {"action": action, **REASON}) for action in ("set", "clear", "review")
    ],
    # --- retention ---
    "PUT /api/v1/retention/policy": ALL,
    "POST /api/v1/retention/run": ALL,
    "POST /api/v1/retention/recordings/{recording_id}/extension": ALL,
    "PUT /api/v1/retention/cases/{case_id}/kind": [Probe(CASE2, {"kind": "obstruction", **REASON})],
    "POST /api/v1/retention/holds": holds(),
    "POST /api/v1/retention/holds/{hold_id}/lift": ALL,
    "POST /api/v1/retention/changes/{change_id}/approve": ALL,
    "POST /api/v1/retention/changes/{change_id}/reject": ALL,
    "POST /api/v1/retention/changes/{change_id}/apply": ALL,
    "POST /api/v1/retention/disposals": ALL,
    "POST /api/v1/retention/disposals/{request_id}/approve": ALL,
    "POST /api/v1/retention/disposals/{request_id}/reject": ALL,
    "POST /api/v1/retention/disposals/{request_id}/execute": ALL,
    # --- compliance ---
    "POST /api/v1/compliance/flags/{flag_id}/review": ALL,
    "POST /api/v1/compliance/flags/{flag_id}/assign": ALL,
    "POST /api/v1/compliance/flags/{flag_id}/comments": ALL,
    "POST /api/v1/compliance/flags/{flag_id}/explanations": [Probe({"flag_id": "{flag2}"}, {"body": "说明"})],
    "POST /api/v1/compliance/scans": ALL,
    # --- pages (forms; the same services answer) ---
    "POST /login": NoUnitObject("public: a username and password, no unit's record"),
    "POST /logout": NoUnitObject("ends the caller's own session"),
    "POST /devices": [
        Probe(body={"serial": "DSJP0002", "unit_id": "{unit2}"}),
        Probe(body={"serial": "{unregistered2}"}, same_as_ghost=False),
    ],
    "POST /devices/{serial}/checkout": [Probe(SERIAL2, PAGE_CHECKOUT)],
    "POST /devices/{serial}/return": [Probe(SERIAL2, {"condition": "good"})],
    "POST /devices/{serial}/fault": [Probe(SERIAL2, {"kind": "fault", "description": "x"})],
    "POST /devices/{serial}/restored": [Probe(SERIAL2, {})],
    "POST /devices/{serial}/lend": [
        Probe(SERIAL2, {"borrower_name": "市局", "purpose": "联合检查", "expected_return_at": "2030-01-01T10:00"})
    ],
    "POST /ledger/approvals/{request_id}/{decision}": [
        Probe({"request_id": "{lend2}", "decision": "reject"}, {}),
        Probe({"request_id": "{lend2}", "decision": "approve"}, {}),
    ],
    "POST /cases": [Probe(body={"number": "{case_number2}", "name": "x"}, same_as_ghost=False)],
    "POST /cases/{case_id}": [Probe(CASE2, {"name": "改名"})],
    "POST /cases/{case_id}/links": [
        Probe(CASE2, {"recording_id": "{recording1}", **REASON}),
        Probe({"case_id": "{case1}"}, {"recording_id": "{recording2}", **REASON}),
    ],
    "POST /cases/add-recordings": [  # ticked in a list: another unit's case, or another unit's recording
        Probe(body={"case_number": "{case_number2}", "recording_ids": "{recording1}", **REASON}),
        Probe(body={"case_number": "{case_number1}", "recording_ids": "{recording2}", **REASON}),
    ],
    "POST /cases/{case_id}/links/{recording_id}/unlink": [
        Probe({**CASE2, "recording_id": "{recording2}"}, REASON),
        Probe({"case_id": "{case1}", "recording_id": "{recording2}"}, REASON),
    ],
    "POST /cases/{case_id}/shares": [Probe(CASE2, {"unit_code": "U1", **REASON})],
    "POST /cases/{case_id}/shares/{share_id}/revoke": [Probe({**CASE2, "share_id": "{share2}"}, {})],
    "POST /cases/{case_id}/package-links": [Probe(CASE2, {"recipient": "某律师", "days": "3"})],
    "POST /cases/{case_id}/package-links/{link_id}/revoke": [Probe({**CASE2, "link_id": "1"}, {})],
    "POST /cases/{case_id}/handovers": [
        Probe(
            CASE2,
            {
                "recipient_kind": "court",
                "organisation": "某法院",
                "person": "某人",
                "id_number": "1",
                "package_digest": "0" * 64,
            },
        )
    ],
    "POST /transfers/{transfer_id}/task": [
        Probe({"transfer_id": "{transfer2}"}, {"enforcement_matter": "检查"}),
        Probe({"transfer_id": "{transfer1}"}, {"case_number": "{case_number2}"}),
    ],
    "POST /compliance/flags/{flag_id}/review": ALL,
    "POST /compliance/flags/{flag_id}/assign": ALL,
    "POST /compliance/flags/{flag_id}/comment": ALL,
    "POST /compliance/flags/{flag_id}/explain": [Probe({"flag_id": "{flag2}"}, {"body": "说明"})],
    "POST /recordings/{recording_id}/important": [
        Probe({"recording_id": "{recording2}"}, {"action": action, **REASON}) for action in ("set", "clear", "review")
    ],
    "POST /retention/policy": ALL,
    "POST /retention/holds": holds(),
    "POST /retention/holds/{hold_id}/lift": ALL,
    "POST /retention/disposals": ALL,
    "POST /retention/disposals/{request_id}/{decision}": ALL,
    "POST /retention/changes/{change_id}/{decision}": ALL,
    "POST /me/transfers/{transfer_id}/task": [Probe({"transfer_id": "{transfer2}"}, {"enforcement_matter": "检查"})],
    "POST /admin/units": ALL,
    "POST /admin/users": [
        Probe(body={"username": "probe-p2", "role": "officer", "unit_id": "{unit2}", "officer_no": "990002"})
    ],
    "POST /admin/users/{user_id}/{change}": [
        Probe({"user_id": "{officer_user2}", "change": "disable"}, {}),
        Probe({"user_id": "{officer_user2}", "change": "password"}, {}),
    ],
    "POST /admin/stations": [Probe(body={"name": "probe-station-p", "unit_id": "{unit2}"})],
    "POST /admin/stations/{station_id}/{change}": [
        Probe({"station_id": "{station2}", "change": "code"}, {}),
        Probe({"station_id": "{station2}", "change": "rotate"}, {}),
        Probe({"station_id": "{station2}", "change": "revoke"}, {}),
    ],
    "POST /audit/excerpt": ALL,
    "POST /audit/verify": ALL,
}


# --- the world: two units, and in unit 2 one of every kind of record a write can touch -------------------


@dataclass
class CrossWorld:
    world: World
    real: dict[str, str]  # placeholder → unit 2's (or unit 1's own) identifier
    ghost: dict[str, str]  # placeholder → an identifier that names nothing

    @property
    def url(self) -> str:
        return self.world.server.url


def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), (r.request.method, r.request.url, r.status_code, r.text[:300])
    return r.json() if r.content else {}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def build_cross_world(tmp: Path, templates: SqliteTemplates) -> CrossWorld:
    w = build_world(tmp, templates)
    url = w.server.url

    def call(who: str, method: str, path: str, body: Any = None, *codes: int) -> dict[str, Any]:
        return _ok(httpx.request(method, url + path, json=body, headers=w.headers(who), timeout=60), *codes)

    own, other = w.units[1], w.units[2]
    assert own.case_id and other.case_id and other.case_number, "the world's cases were not made"
    users = {who: call(who, "GET", "/api/v1/auth/me")["id"] for who in ("officer@u2", "auditor@u2")}
    entry1 = call("device_admin", "POST", "/api/v1/devices", {"serial": own.serial, "unit_id": 1})
    entry2 = call("device_admin@u2", "POST", "/api/v1/devices", {"serial": other.serial, "unit_id": 2})
    assert entry1["id"] and entry2["id"]
    lend = call("device_admin@u2", "POST", "/api/v1/ledger/lend-requests", {"serial": other.serial, **LEND})
    share = call(
        "case_handler@u2", "POST", f"/api/v1/cases/{other.case_id}/shares", {"user_id": users["auditor@u2"], **REASON}
    )
    call("sysadmin", "POST", "/api/v1/compliance/scans", {"scope": "full"})
    flags = call("legal_affairs", "GET", "/api/v1/compliance/flags?unit_id=2&limit=1")["items"]
    assert flags, "the scan raised no flag in unit 2: the explanation probes need one"
    # a recorder unit 2's station met at its dock and no one registered yet, with an upload left unfinished
    station2 = other.station
    extra = {f"DCIM/20261122/{UNREGISTERED2}_{other.officer_no}_20261122090000_0009.MP4": b"unfinished upload " * 50}
    station2.open(extra, serial=UNREGISTERED2, officer=other.officer_no)
    ((path, data),) = extra.items()
    created = station2.create_upload(path, data)
    assert created.status_code == 201, created.text
    upload2 = created.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    meta2 = created.request.headers["Upload-Metadata"]
    ghost_meta = meta2.replace(_b64(station2.transfer_id), _b64(GHOST_UUID))
    real = {
        "unit1": "1",
        "unit2": "2",
        "case1": str(own.case_id),
        "case2": str(other.case_id),
        "case_number1": own.case_number,
        "case_number2": other.case_number,
        "recording1": str(own.recording_ids[0]),
        "recording2": str(other.recording_ids[0]),
        "transfer1": own.transfer_id,
        "transfer2": other.transfer_id,
        "serial1": own.serial,
        "serial2": other.serial,
        "unregistered2": UNREGISTERED2,
        "officer_no2": other.officer_no,
        "officer_user2": str(users["officer@u2"]),
        "station2": str(other.station.enrolment["station_id"]),
        "entry2": str(entry2["id"]),
        "lend2": str(lend["id"]),
        "share2": str(share["id"]),
        "flag2": str(flags[0]["id"]),
        "upload2": upload2,
        "upload_meta2": meta2,
    }
    ghost = {key: "999999" for key in real} | {
        "case_number2": "杭西市监处罚〔2026〕999号",
        "transfer2": GHOST_UUID,
        "serial2": "DSJZ0000",
        "officer_no2": "909090",
        "upload2": uuid.UUID(int=0xDEAD).hex,
        "upload_meta2": ghost_meta,
    }
    for own_key in ("unit1", "case1", "case_number1", "recording1", "transfer1", "serial1"):
        ghost[own_key] = real[own_key]  # the caller's own records are the same in both attempts
    return CrossWorld(w, real, ghost)


# --- filling a probe in, and comparing answers ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(value: Any, ids: dict[str, str]) -> Any:
    """The value with its placeholders replaced by these identifiers."""
    if isinstance(value, Int):
        return int(ids[value.key])
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: ids[m.group(1)], value)
    return value


def used_keys(probe: Probe) -> set[str]:
    """The identifiers a probe names."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Int):
            found.add(value.key)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.update(_PLACEHOLDER.findall(value))

    walk([probe.params, probe.body, probe.headers])
    return found


_TOKEN = re.compile(r"([\w.-]+)")


def same_answer(real: str, ghost: str, pairs: set[tuple[str, str]]) -> tuple[bool, str]:
    """Are the two answers the same, but for the identifiers each request named?

    Both are cut into words; each word must be equal, or be the real and the ghost identifier of
    one key (``pairs``) at the same place. Returns the verdict and, if they differ, where.
    """
    for r, g in list(pairs):  # an identifier of several words (a case number) differs word by word
        rw, gw = _TOKEN.split(r), _TOKEN.split(g)
        if len(rw) == len(gw):
            pairs = pairs | set(zip(rw, gw, strict=True))
    a, b = _TOKEN.split(real), _TOKEN.split(ghost)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y and (x, y) not in pairs:
            return False, f"{''.join(a[max(0, i - 12) : i + 12])!r} / {''.join(b[max(0, i - 12) : i + 12])!r}"
    if len(a) != len(b):
        return False, f"one answer goes on: {''.join(a[len(b) :])[:200]!r} / {''.join(b[len(a) :])[:200]!r}"
    return True, ""


# --- unit 2's records, read straight from the database, to see that no attempt changed any -------------------

#: (table, the rows of unit 2, columns left out because background work may change them)
UNIT2_ROWS: list[tuple[str, str, tuple[str, ...]]] = [
    ("stations", "unit_id = 2", ("last_seen_at", "heartbeat")),
    ("enrolment_codes", "station_id IN (SELECT id FROM stations WHERE unit_id = 2)", ()),
    ("ended_station_tokens", "station_id IN (SELECT id FROM stations WHERE unit_id = 2)", ()),
    ("cases", "unit_id = 2", ()),
    (
        "case_links",
        "case_id IN (SELECT id FROM cases WHERE unit_id = 2) "
        "OR recording_id IN (SELECT id FROM recordings WHERE unit_id = 2)",
        (),
    ),
    ("case_shares", "case_id IN (SELECT id FROM cases WHERE unit_id = 2)", ()),
    ("issued_documents", "unit_id = 2", ()),
    ("package_links", "unit_id = 2", ()),
    ("retention_case_kinds", "case_id IN (SELECT id FROM cases WHERE unit_id = 2)", ()),
    ("devices", "unit_id = 2 OR serial IN ('DSJB7777', 'DSJB8888')", ()),
    ("ledger_entries", "unit_id = 2 OR device_id IN (SELECT id FROM devices WHERE serial = 'DSJB7777')", ()),
    ("lend_requests", "unit_id = 2", ()),
    ("device_readings", "device_id IN (SELECT id FROM devices WHERE serial = 'DSJB7777')", ()),
    ("transfers", "unit_id = 2 OR device_serial = 'DSJB7777'", ()),
    (
        "transfer_files",
        "transfer_id IN (SELECT id FROM transfers WHERE unit_id = 2) "
        "OR recording_id IN (SELECT id FROM recordings WHERE unit_id = 2)",
        (),
    ),
    ("uploads", "station_id IN (SELECT id FROM stations WHERE unit_id = 2)", ()),
    ("legal_holds", "unit_id = 2", ()),
    ("compliance_flags", "unit_id = 2", ("last_seen_at", "evidence", "evidence_digest", "cleared_at")),
    ("compliance_flag_events", "flag_id IN (SELECT id FROM compliance_flags WHERE unit_id = 2)", ()),
]
RECORDING_COLUMNS = (
    "id, unit_id, transfer_id, device_serial, officer_no, blake3, fixity_state, "
    "important, important_source, important_by_id, important_at, important_reviewed_at"
)


def unit2_snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(world.server.settings().database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        out: dict[str, list[tuple[Any, ...]]] = {}
        with engine.connect() as conn:
            for table, where, skip in UNIT2_ROWS:
                if table not in tables:
                    continue
                cols = ", ".join(f'"{c["name"]}"' for c in inspect(engine).get_columns(table) if c["name"] not in skip)
                rows = conn.execute(text(f"SELECT {cols} FROM {table} WHERE {where} ORDER BY 1"))  # noqa: S608
                out[table] = [tuple(r) for r in rows]
            rows = conn.execute(text(f"SELECT {RECORDING_COLUMNS} FROM recordings WHERE unit_id = 2 ORDER BY id"))  # noqa: S608
            out["recordings"] = [tuple(r) for r in rows]
        return out
    finally:
        engine.dispose()
