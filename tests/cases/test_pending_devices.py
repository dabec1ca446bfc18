"""A device first seen at a dock is pending in the station's unit: its footage is taken into custody but
linked to no case until a device administrator confirms it (issue 15, item 2)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from evidence_server.cases.tasks import auto_link_recording
from evidence_server.ledger.models import Device
from tests.cases.conftest import World
from tests.cases.test_api import ledger

CASE = "市监案〔2026〕31号"


def test_an_unknown_device_docked_is_pending_in_the_stations_unit(world: World) -> None:
    serial = f"DSJ-P{uuid.uuid4().hex[:5]}"
    r = world.client.post(
        "/api/v1/transfers",
        headers=world.headers("station"),
        json={
            "transfer_id": str(uuid.uuid4()),
            "docked_at": datetime.now(UTC).isoformat(),
            "device": {"serial": serial, "family": "folder"},
            "index": [],
        },
    )
    assert r.status_code == 201, r.text
    device = world.get("devadmin1", f"/api/v1/devices/{serial}").json()
    assert (device["status"], device["unit_id"]) == ("unregistered", world.units["U1"])


def test_a_pending_devices_recordings_link_to_no_case_until_it_is_confirmed(world: World) -> None:
    serial = f"DSJ-P{uuid.uuid4().hex[:5]}"
    now = datetime.now(UTC).replace(microsecond=0)
    ledger(world, serial, now - timedelta(hours=3), now - timedelta(hours=1), CASE)
    with world.session() as s:  # as a device nobody vouched for: first seen at a dock, not confirmed
        s.execute(update(Device).where(Device.serial == serial).values(status="unregistered"))
        s.commit()
    rec = world.recording(b"pending-footage", serial=serial, started_at=now - timedelta(hours=2))
    auto_link_recording(world.ctx, rec)
    assert world.get("legal", f"/api/v1/recordings/{rec}/cases").json() == []  # in custody, in no case

    r = world.post("devadmin1", "/api/v1/devices", {"serial": serial, "model": "DSJ-V9", "family": "mass_storage"})
    assert r.status_code == 201, r.text  # the confirmation: a register entry in the ledger, audited
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not world.get("legal", f"/api/v1/recordings/{rec}/cases").json():
        time.sleep(0.1)
    cases = world.get("legal", f"/api/v1/recordings/{rec}/cases").json()
    assert [c["number"] for c in cases] == [CASE]
