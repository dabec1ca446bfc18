"""Devices bound to their ledger. A device's unit decides which stations may take in its footage and whose
figures it counts in; its status and open checkout decide whether it may be handed out and who holds it.
The row summarises the device's ledger entries (bound to the log themselves), so an insider who moves a
device to their own unit, frees a device that is out, or swaps serials in the database is named by
`custodia audit verify`; so is a device made up in the database as registered. A device only met at a
dock is `unregistered`, in the unit of its first dock. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from evidence_server.binding.service import check_rows
from evidence_server.ledger.docks import on_dock
from evidence_server.ledger.models import Device
from evidence_server.transfers.models import Transfer
from tests.audit.edits import each_named_once, edit
from tests.audit.test_rows_bound import audit_verify
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import GOOD, World, make_world


@dataclass
class Site:
    world: World
    ids: dict[str, int]  # out: checked out; back: checked out and returned; met: only docked, in U2


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    for w in make_world(tmp_path, database_url):
        now = datetime.now(UTC).replace(microsecond=0)
        for serial in ("DSJ-B001", "DSJ-C002"):
            dev = {"serial": serial, "model": "DSJ-V9", "family": "mass_storage"}
            r = w.post("devadmin1", "/api/v1/devices", {**dev, "occurred_at": (now - timedelta(days=1)).isoformat()})
            assert r.status_code == 201, r.text
            r = w.post(
                "devadmin1",
                "/api/v1/ledger/checkouts",
                {
                    "serial": serial,
                    "officer_id": w.users["officer1"],
                    "enforcement_matter": "食品安全检查",
                    "readings": GOOD,
                    "expected_return_at": (now + timedelta(hours=3)).isoformat(),
                },
            )
            assert r.status_code == 201, r.text
        r = w.post("devadmin1", "/api/v1/ledger/returns", {"serial": "DSJ-C002", "condition": "good"})
        assert r.status_code == 201, r.text
        t = w.transfer("DSJ-D003", unit="U2")  # a recorder nobody registered, docked at a station of U2
        with w.session() as s:
            on_dock(s, s.get_one(Transfer, t))
            s.commit()
            ids = {d.serial: d.id for d in s.scalars(select(Device))}
        yield Site(w, {"out": ids["DSJ-B001"], "back": ids["DSJ-C002"], "met": ids["DSJ-D003"]})


def test_devices_kept_through_the_services_agree_with_their_ledger(site: Site) -> None:
    with site.world.session() as s:
        met = s.get_one(Device, site.ids["met"])
        assert met.status == "unregistered" and met.unit_id == site.world.units["U2"]
    out = audit_verify(site.world)
    assert out.exit_code == 0, out.output
    assert "3 devices" in out.output, out.output


EDITS = [
    # moved to the insider's unit: its stations take in its footage, its figures count there
    (
        "UPDATE devices SET unit_id = :u2 WHERE id = :out",
        "devices {out}: unit_id is {u2} in the row, but its ledger",
    ),
    # freed while out: handed out again while the officer still holds it
    ("UPDATE devices SET status = 'available' WHERE id = :out", "devices {out}: status is 'available' in the row"),
    ("UPDATE devices SET open_checkout_id = NULL WHERE id = :out", "devices {out}: open_checkout_id is None"),
    # back, and marked out again: the next dock's holder is made up
    ("UPDATE devices SET status = 'checked_out' WHERE id = :back", "devices {back}: status is 'checked_out'"),
    # another serial: another recorder's docks filed under this one's ledger
    (
        "UPDATE devices SET serial = 'DSJ-X001' WHERE id = :out",
        "devices {out}: serial is 'DSJ-X001' in the row, but the log's entry of ledger entry",
    ),
    # a recorder met at U2's dock moved to U1, or made registered, in the database
    (
        "UPDATE devices SET unit_id = :u1 WHERE id = :met",
        "devices {met}: unit_id is {u1} in the row, but its first",
    ),
    ("UPDATE devices SET status = 'available' WHERE id = :met", "devices {met}: status is 'available' in the row"),
]


def test_an_insiders_edits_of_devices_are_each_named(site: Site) -> None:
    """Every edit of EDITS, all on one site: each named once, with its field and what it disagrees with."""
    w = site.world
    ids: dict[str, object] = {**site.ids, "u1": w.units["U1"], "u2": w.units["U2"]}
    each_named_once(w, EDITS, ids)


def test_a_device_made_up_in_the_database_as_registered_is_named(site: Site) -> None:
    w = site.world
    edit(
        w,
        "INSERT INTO devices (serial, unit_id, status, version, created_at) "
        "VALUES ('DSJ-Z000', :u1, 'available', 1, CURRENT_TIMESTAMP)",
        u1=w.units["U1"],
    )
    with w.session() as s:
        made = s.scalar(select(Device.id).where(Device.serial == "DSJ-Z000"))
    found = findings(w)
    assert found == [
        f"devices {made}: status is 'available' in the row, but its ledger (no entry) gives 'unregistered'"
    ]


def test_a_checkout_made_while_the_check_reads_is_not_taken_for_tampering(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The returned recorder is checked out again (through the API) after the check read the device rows and
    before it read their ledger: for that moment the row says "available" and the ledger "checked out". No
    finding, no incident. On PostgreSQL the first reading does see the two disagree (shown by reading once
    without the second look); SQLite's reading is one snapshot, which never sees the change."""
    from evidence_server.binding import devices, service
    from evidence_server.binding.tasks import check_rows_task

    w = site.world
    real = devices._batches
    moved: list[int] = []

    def batches(session, ids):  # type: ignore[no-untyped-def]
        for rows in real(session, ids):
            if not moved:
                r = w.post(
                    "devadmin1",
                    "/api/v1/ledger/checkouts",
                    {
                        "serial": "DSJ-C002",
                        "officer_id": w.users["officer2"],
                        "enforcement_matter": "价格检查",
                        "readings": GOOD,
                        "expected_return_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
                    },
                )
                assert r.status_code == 201, r.text
                moved.append(r.json()["id"])
            yield rows

    monkeypatch.setattr(devices, "_batches", batches)
    with w.session() as s:
        first = [f.message() for f in service._check_once(s).findings]
    if w.ctx.engine.dialect.name == "postgresql":
        assert first == [
            f"devices {site.ids['back']}: status is 'available' in the row, but its ledger (entry "
            f"{moved[0]}, checkout) gives 'checked_out'",
            f"devices {site.ids['back']}: open_checkout_id "
            f"is None in the row, but its ledger (entry {moved[0]}, checkout) gives {moved[0]}",
        ], first
    r = w.post("devadmin1", "/api/v1/ledger/returns", {"serial": "DSJ-C002", "condition": "good"})
    assert r.status_code == 201, r.text
    moved.clear()
    assert check_rows_task(w.ctx)["findings"] == 0
    assert len(moved) == 1
    with w.session() as s:
        assert check_rows(s).ok
