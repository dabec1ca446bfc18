"""A device's row against its ledger: the unit it belongs to, its status and the checkout it is out on.

A device's unit decides which stations may take in its footage (``ledger.docks.dock_access``) and whose
compliance figures it counts in; its status and open checkout decide whether it may be handed out and who
holds it. The row is a summary of the device's ledger entries, which are themselves bound to the log (the
``ledger_entries`` binding): so the row is checked against them, entry by entry replayed with the ledger's
own rule (``ledger.rules.replay``), and its serial against the one the latest entry's audit entry names.
A device no entry records is one a station met and nobody registered: it is ``unregistered``, out on no
checkout, in the unit its first dock was recorded in (when the log names one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.audit.models import AuditEvent
from evidence_server.binding.batches import batches
from evidence_server.binding.rules import Finding
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import RuleError, Status, replay
from evidence_server.transfers.models import Transfer

TABLE = "devices"
COLUMNS = ("id", "serial", "unit_id", "status", "open_checkout_id")


def _batches(session: Session, ids: list[int] | None) -> Iterator[list[Any]]:
    return batches(session, Device, COLUMNS, ids)


def expected(entries: list[Any]) -> dict[str, Any]:
    """What a device's ledger entries (in seq order, at least one) leave its row saying. Pure."""
    last = entries[-1]
    try:
        state = replay(entries)
    except RuleError:  # entries the rule refuses (written before it, or edited): the latest one's word
        return {"unit_id": last.unit_id, "status": last.status_after}
    return {"unit_id": last.unit_id, "status": state.status.value, "open_checkout_id": state.open_checkout}


def check_devices(session: Session, findings: list[Finding], ids: list[int] | None = None) -> int:
    """Every device row (or those of ``ids``) against its ledger; the findings are appended; returns how
    many rows were checked."""
    count = 0
    for rows in _batches(session, ids):
        count += len(rows)
        entries: dict[int, list[Any]] = {}
        for e in session.execute(
            select(LedgerEntry.id, LedgerEntry.device_id, LedgerEntry.kind, LedgerEntry.condition)
            .add_columns(LedgerEntry.unit_id, LedgerEntry.status_after)
            .where(LedgerEntry.device_id.in_([r.id for r in rows]))
            .order_by(LedgerEntry.device_id, LedgerEntry.seq)
        ):
            entries.setdefault(e.device_id, []).append(e)
        serials = _logged_serials(session, [es[-1].id for es in entries.values()])
        unregistered = [r.serial for r in rows if r.id not in entries]
        first_docks = _first_docks(session, unregistered) if unregistered else {}
        for r in rows:
            said: dict[str, tuple[Any, str]] = {}
            if r.id in entries:
                last = entries[r.id][-1]
                source = f"its ledger (entry {last.id}, {last.kind})"
                said = {name: (value, source) for name, value in expected(entries[r.id]).items()}
                if last.id in serials:
                    said["serial"] = (serials[last.id], f"the log's entry of ledger entry {last.id}")
            else:
                said = {name: (value, "its ledger (no entry)") for name, value in UNREGISTERED.items()}
                if r.serial in first_docks:
                    unit_id, seq, action = first_docks[r.serial]
                    said["unit_id"] = (unit_id, f"its first dock (log entry {seq}, {action})")
            for name, (value, source) in said.items():
                if getattr(r, name) != value:
                    findings.append(Finding(TABLE, r.id, name, getattr(r, name), value, source=source))
    return count


#: a device no ledger entry records: met at a dock, registered by nobody
UNREGISTERED = {"status": Status.unregistered.value, "open_checkout_id": None}


def _logged_serials(session: Session, entry_ids: list[int]) -> dict[int, str]:
    """The serial each ledger entry's audit entry names (``details.device_serial``)."""
    out: dict[int, str] = {}
    if not entry_ids:
        return out
    for object_id, details in session.execute(
        select(AuditEvent.object_id, AuditEvent.details).where(
            AuditEvent.object_type == "ledger_entry",
            AuditEvent.object_id.in_([str(i) for i in entry_ids]),
            AuditEvent.action.startswith("ledger."),
        )
    ):
        serial = (details or {}).get("device_serial")
        if isinstance(serial, str):
            out.setdefault(int(object_id), serial)
    return out


def _first_docks(session: Session, serials: list[str]) -> dict[str, tuple[int, int, str]]:
    """The unit each serial's first dock was recorded in, from the log (the entry that opened the transfer,
    naming the recorder and its unit), with that entry's seq and action: not from the transfer's row, which
    the transfers binding checks on its own. Entries that named no unit say nothing."""
    out: dict[str, tuple[int, int, str]] = {}
    wanted = set(serials)
    their_transfers = select(Transfer.id).where(Transfer.device_serial.in_(serials)).scalar_subquery()
    for seq, action, details in session.execute(
        select(AuditEvent.seq, AuditEvent.action, AuditEvent.details)
        .where(
            AuditEvent.object_type == "transfer",
            AuditEvent.action.in_(OPENED),
            AuditEvent.object_id.in_(their_transfers),
        )
        .order_by(AuditEvent.seq)
    ):
        d = details or {}
        serial, unit_id = d.get("device_serial"), d.get("unit_id")
        if serial in wanted and isinstance(unit_id, int):
            out.setdefault(serial, (unit_id, seq, action))
    return out


#: the entries that record a transfer's opening: a dock, or a recorder's push
OPENED = ("transfer.docked", "push.recording_opened")
