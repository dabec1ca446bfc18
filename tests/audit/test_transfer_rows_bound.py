"""A transfer bound to the log: where and when footage docked, whose it is, what the device held, and the case
and enforcement matter it is filed under. An insider who edits any of them in the database (a late dock made
to look on time, a file the device held struck from its index so that nobody misses it, footage moved to
another case or unit) is named by `custodia audit verify`; entries written before say nothing of what they
did not record. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from custodia_wire.documents import Manifest
from evidence_server.audit.service import record
from evidence_server.binding.service import check_rows
from evidence_server.transfers.models import Transfer
from tests.audit.test_rows_bound import audit_verify
from tests.cases.conftest import World, make_world

CASE = "杭西市监处罚〔2026〕41号"


@dataclass
class Dock:
    world: World
    transfer: str
    case_id: int


def _open(w: World, serial: str, docked_at: datetime) -> str:
    transfer_id = str(uuid.uuid4())
    r = w.client.post(
        "/api/v1/transfers",
        headers=w.headers("station"),
        json={
            "transfer_id": transfer_id,
            "docked_at": docked_at.isoformat(),
            "device": {"serial": serial, "family": "mass_storage", "model": "DSJ-V9"},
            "officer": {"number": "102345", "name": "张三"},
            "device_status": {
                "clock": (docked_at + timedelta(seconds=93)).isoformat(),
                "read_at": docked_at.isoformat(),
                "battery_percent": 61,
            },
            "index": [
                {"path": "DCIM/100MEDIA/DSJ_20261205093000.MP4", "size": 734_003_200},
                {"path": "DCIM/100MEDIA/DSJ_20261205101500.MP4", "size": 512_000_000},
            ],
            "rejected": [{"path": "DCIM/100MEDIA/../../etc/passwd", "reason": "unsafe path"}],
        },
    )
    assert r.status_code == 201, r.text
    return transfer_id


@pytest.fixture
def dock(tmp_path: Path, database_url: str) -> Iterator[Dock]:
    """A transfer opened by the station, its task set by the officer at the dock, its receipt signed: all
    through the API."""
    for w in make_world(tmp_path, database_url):
        case = w.open_case(CASE)
        transfer = _open(w, "DSJ-T001", datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30))
        r = w.put("officer1", f"/api/v1/transfers/{transfer}/task", {"case_number": CASE})
        assert r.status_code == 200, r.text
        r = w.put("officer1", f"/api/v1/transfers/{transfer}/task", {"enforcement_matter": "食品安全日常检查"})
        assert r.status_code == 200, r.text
        manifest = Manifest(transfer, {"id": w.station_id}, {"serial": "DSJ-T001"}, {"number": "102345"}, "x")
        r = w.client.post(
            f"/api/v1/transfers/{transfer}/complete", headers=w.headers("station"), json=manifest.to_dict()
        )
        assert r.status_code == 200, r.text
        yield Dock(w, transfer, int(case["id"]))


def edit(w: World, sql: str, t: str) -> None:
    """Run SQL as the database owner would, on transfer ``t`` (``:t``)."""
    with w.ctx.engine.begin() as conn:
        conn.execute(text(sql), {"t": t})


def findings(w: World) -> list[str]:
    with w.session() as s:
        return [f.message() for f in check_rows(s).findings]


def test_a_transfer_made_through_the_services_agrees_with_the_log(dock: Dock) -> None:
    out = audit_verify(dock.world)
    assert out.exit_code == 0, out.output
    assert "OK       evidence rows agree with the log" in out.output
    assert "1 transfers" in out.output


@pytest.mark.parametrize(
    "sql, named",
    [
        # a dock of 30 hours ago moved later: the 24 hours to transfer would run from then, late no more
        (
            "UPDATE transfers SET docked_at = '2099-01-01 00:00:00' WHERE id = :t",
            "transfers {t}: docked_at is '2099-01-01",
        ),
        ("UPDATE transfers SET case_id = case_id + 1000 WHERE id = :t", "transfers {t}: case_id is {c1000}"),
        ("UPDATE transfers SET case_id = NULL WHERE id = :t", "transfers {t}: case_id is None in the row"),
        (
            "UPDATE transfers SET enforcement_matter = '无' WHERE id = :t",
            "transfers {t}: enforcement_matter is '无' in the row, but log entry",
        ),
        (
            "UPDATE transfers SET unit_id = (SELECT max(id) FROM units) WHERE id = :t",
            "transfers {t}: unit_id is",
        ),
        ("UPDATE transfers SET officer_no = '999999' WHERE id = :t", "transfers {t}: officer_no is '999999'"),
        ("UPDATE transfers SET device_serial = 'DSJ-X' WHERE id = :t", "transfers {t}: device_serial is 'DSJ-X'"),
        ("UPDATE transfers SET clock_offset_s = 0 WHERE id = :t", "transfers {t}: clock_offset_s is 0"),
        # a file the device held struck from the index: compliance would no longer miss it
        (
            'UPDATE transfers SET index = \'[{"path": "DCIM/100MEDIA/DSJ_20261205093000.MP4", '
            '"size": 734003200, "mtime": null, "started_at": null}]\' WHERE id = :t',
            "transfers {t}: index_sha256 is 'sha256:",
        ),
        ("UPDATE transfers SET rejected = '[]' WHERE id = :t", "transfers {t}: index_sha256 is 'sha256:"),
        (
            "UPDATE transfers SET manifest_blake3 = 'blake3:" + "3" * 64 + "' WHERE id = :t",
            "transfers {t}: manifest_blake3 is 'blake3:333",
        ),
    ],
)
def test_an_edited_transfer_is_named_with_its_field_and_the_entry_that_disagrees(
    dock: Dock, sql: str, named: str
) -> None:
    w = dock.world
    index_col = '"index"'  # a reserved word in both databases
    edit(w, sql.replace(" index =", f" {index_col} ="), dock.transfer)
    expected = named.format(t=dock.transfer, c1000=dock.case_id + 1000)
    found = findings(w)
    assert [m for m in found if m.startswith(expected)], found
    assert len(found) == 1, found  # that field alone
    out = audit_verify(w)
    assert out.exit_code != 0 and expected in out.output, out.output


def test_a_transfer_deleted_or_inserted_behind_the_log_is_named(dock: Dock) -> None:
    w = dock.world
    ghost = str(uuid.uuid4())
    with w.session() as s:
        row = s.get_one(Transfer, dock.transfer)
        s.add(
            Transfer(
                id=ghost,
                station_id=row.station_id,
                unit_id=row.unit_id,
                device_serial=row.device_serial,
                device=row.device,
                docked_at=row.docked_at,
                index=[],
            )
        )
        s.commit()
    gone = w.transfer("DSJ-T002")  # logged as a dock logs it; nothing refers to it, so it can be deleted
    edit(w, "DELETE FROM transfers WHERE id = :t", gone)
    found = findings(w)
    assert f"transfers {ghost}: not in the log (no audit entry records it): inserted behind the log's back" in found
    assert [m for m in found if m.startswith(f"transfers {gone}: missing from the database")], found
    assert len(found) == 2, found


def test_the_lawful_ways_a_task_changes_leave_the_transfer_bound(dock: Dock) -> None:
    """Another case named at the dock, and a transfer whose case and matter are filled from the checkout its
    footage matched (the other writer of a transfer's task): both logged, so both bind clean."""
    w = dock.world
    w.open_case("杭西市监处罚〔2026〕42号")
    r = w.put("officer1", f"/api/v1/transfers/{dock.transfer}/task", {"case_number": "杭西市监处罚〔2026〕42号"})
    assert r.status_code == 200, r.text
    from tests.cases.test_api import ledger

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    ledger(w, "DSJ-L009", start, start + timedelta(hours=2), "市监案[2026]77号")
    filled = w.transfer("DSJ-L009", docked_at=start + timedelta(hours=3))
    rec = w.recording(b"matched", serial="DSJ-L009", transfer_id=filled, started_at=start + timedelta(minutes=30))
    from evidence_server.cases.tasks import auto_link_recording

    auto_link_recording(w.ctx, rec)
    task = w.get("officer1", f"/api/v1/transfers/{filled}/task").json()
    assert task["case_number"] == "市监案〔2026〕77号", task  # filled from the checkout
    assert findings(w) == []
    edit(w, "UPDATE transfers SET case_id = NULL, enforcement_matter = NULL WHERE id = :t", filled)
    found = findings(w)  # and what the fill recorded is bound from then on
    assert sorted(m.split(" is ")[0] for m in found) == [
        f"transfers {filled}: case_id",
        f"transfers {filled}: enforcement_matter",
    ], found


def test_an_older_log_binds_what_it_recorded_and_says_nothing_of_the_rest(tmp_path: Path, database_url: str) -> None:
    """A dock logged before its facts were recorded named the device alone: the device is bound, the rest is
    not (there is nothing to bind it to), so an old site's check raises nothing false."""
    for w in make_world(tmp_path, database_url):
        transfer_id = str(uuid.uuid4())
        with w.session() as s:
            s.add(
                Transfer(
                    id=transfer_id,
                    station_id=w.station_id,
                    unit_id=w.units["U1"],
                    device_serial="DSJ-OLD",
                    device={"serial": "DSJ-OLD"},
                    docked_at=datetime.now(UTC) - timedelta(days=900),
                    index=[{"path": "DCIM/A.MP4", "size": 1}],
                )
            )
            s.flush()
            details = {"device_serial": "DSJ-OLD", "files": 1, "already_held": 0, "vanished": [], "rejected": 0}
            record(s, "transfer.docked", object_type="transfer", object_id=transfer_id, details=details)
            s.commit()
        edit(w, "UPDATE transfers SET docked_at = '2099-01-01 00:00:00', officer_no = '7' WHERE id = :t", transfer_id)
        assert findings(w) == []
        with w.session() as s:
            seq = s.execute(
                text("SELECT seq FROM audit_events WHERE object_id = :t AND action = 'transfer.docked'"),
                {"t": transfer_id},
            ).scalar_one()
        edit(w, "UPDATE transfers SET device_serial = 'DSJ-NEW' WHERE id = :t", transfer_id)
        assert findings(w) == [
            f"transfers {transfer_id}: device_serial is 'DSJ-NEW' in the row, but log entry {seq} (transfer.docked) "
            "recorded 'DSJ-OLD'"
        ]


def test_the_periodic_check_raises_an_incident_naming_the_transfer(dock: Dock) -> None:
    from evidence_server.binding.tasks import check_rows_task
    from evidence_server.uploads.models import IntegrityIncident

    w = dock.world
    assert check_rows_task(w.ctx)["findings"] == 0
    edit(w, "UPDATE transfers SET docked_at = '2099-01-01 00:00:00' WHERE id = :t", dock.transfer)
    assert check_rows_task(w.ctx)["findings"] == 1
    assert check_rows_task(w.ctx)["findings"] == 1  # a second run raises no second incident
    with w.session() as s:
        incidents = s.query(IntegrityIncident).filter(IntegrityIncident.kind == "row_differs_from_log").all()
        assert [(i.recording_id, i.details["table"], i.details["row_id"], i.details["field"]) for i in incidents] == [
            (None, "transfers", dock.transfer, "docked_at")
        ]
