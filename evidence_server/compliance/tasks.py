"""When scans run: a device scan after each transfer and ledger change, an access scan after each
download or export, and the full scan on a schedule (Celery beat, or the in-process scheduler).

The incremental scans are triggered from the database session itself (``install``): whatever wrote
the change (an API route, a page, the dock), the device is rescanned once the change is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import QUEUED
from evidence_server.background.registry import task
from evidence_server.compliance.access import ACCESS_ACTIONS
from evidence_server.compliance.service import run_scan
from evidence_server.context import ServerContext
from evidence_server.ledger.models import Device, DockMismatch, LedgerEntry, LendRequest
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer, VanishedFile
from evidence_server.uploads.models import IntegrityIncident

if TYPE_CHECKING:
    from evidence_server.background.dispatch import Dispatcher

log = logging.getLogger(__name__)
TOUCHED = "compliance_touched"


def _changed(obj: Any, attr: str) -> bool:
    return bool(inspect(obj).attrs[attr].history.has_changes())


def _accessed(action: str, actor_type: str | None, actor_id: int | None) -> bool:
    return action in ACCESS_ACTIONS and actor_type == "user" and actor_id is not None


def touched_by(
    new: list[Any], dirty: list[Any], queued: Sequence[tuple[str, str | None, int | None]] = ()
) -> dict[str, set[Any]]:
    """What a flush changed that the rules read: devices (by serial, id, recording) and downloaders.

    ``queued``: audit entries written as Core inserts (PostgreSQL's group commit), never in ``new``."""
    out: dict[str, set[Any]] = {"serials": set(), "device_ids": set(), "recording_ids": set(), "users": set()}
    out["users"] |= {actor_id for action, actor_type, actor_id in queued if _accessed(action, actor_type, actor_id)}
    for obj in new:
        if isinstance(obj, (Transfer, VanishedFile)):
            out["serials"].add(obj.device_serial)
        elif isinstance(obj, (LedgerEntry, LendRequest, DockMismatch)):
            out["device_ids"].add(obj.device_id)
        elif isinstance(obj, IntegrityIncident) and obj.recording_id is not None:
            out["recording_ids"].add(obj.recording_id)
        elif isinstance(obj, AuditEvent) and _accessed(obj.action, obj.actor_type, obj.actor_id):
            out["users"].add(obj.actor_id)
    for obj in dirty:
        watched = "completed_at" if isinstance(obj, Transfer) else "fixity_state"
        if isinstance(obj, (Transfer, Recording)) and _changed(obj, watched):
            out["serials"].add(obj.device_serial)
        elif isinstance(obj, LendRequest) and _changed(obj, "state"):
            out["device_ids"].add(obj.device_id)
    return out


def install(ctx: ServerContext, dispatcher: Dispatcher) -> None:
    """Rescan what each committed transaction of this server's sessions changed, in the background."""
    if not ctx.settings.compliance_incremental:
        return
    maker = ctx.sessionmaker

    @event.listens_for(maker, "after_flush")
    def _collect(session: Session, _flush: Any) -> None:
        found = touched_by(list(session.new), list(session.dirty))
        if any(found.values()):
            mine = session.info.setdefault(TOUCHED, {k: set() for k in found})
            for k, v in found.items():
                mine[k] |= v

    @event.listens_for(maker, "after_commit")
    def _dispatch(session: Session) -> None:
        found = session.info.pop(TOUCHED, None)
        queued = touched_by([], [], session.info.pop(QUEUED, ()))
        if queued["users"]:
            found = found or {k: set() for k in queued}
            found["users"] |= queued["users"]
        if not found:
            return
        try:
            if found["serials"] or found["device_ids"] or found["recording_ids"]:
                dispatcher.send(
                    "compliance.scan_devices",
                    sorted(found["serials"]),
                    sorted(found["device_ids"]),
                    sorted(found["recording_ids"]),
                )
            if found["users"]:
                dispatcher.send("compliance.scan_access", sorted(found["users"]))
        except Exception:  # noqa: BLE001  (the change is committed; the scheduled full scan catches up)
            log.exception("could not queue a compliance scan")

    @event.listens_for(maker, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(TOUCHED, None)
        session.info.pop(QUEUED, None)


def _probe_pending(ctx: ServerContext, serials: list[str]) -> None:
    """The edit rule reads media facts: probe what the media task has not probed yet (idempotent)."""
    from evidence_server.media.probe import probe_recording

    with ctx.sessionmaker() as session:
        pending = session.scalars(
            select(Recording.id)
            .where(Recording.device_serial.in_(serials), Recording.probe_state == "pending")
            .limit(500)
        ).all()
    for rid in pending:
        try:
            probe_recording(ctx, rid)
        except Exception:  # noqa: BLE001  (a missing ffprobe or object must not stop the scan)
            log.warning("could not probe recording %s before the compliance scan", rid, exc_info=True)


@task("compliance.scan_devices")
def scan_devices(
    ctx: ServerContext, serials: list[str], device_ids: list[int] | None = None, recording_ids: list[int] | None = None
) -> dict[str, int]:
    """Rescan some devices (named by serial, register id, or one of their recordings)."""
    with ctx.sessionmaker() as session:
        found = set(serials)
        if device_ids:
            found |= set(session.scalars(select(Device.serial).where(Device.id.in_(device_ids))))
        if recording_ids:
            found |= set(session.scalars(select(Recording.device_serial).where(Recording.id.in_(recording_ids))))
    if not found:
        return {}
    _probe_pending(ctx, sorted(found))
    with ctx.sessionmaker() as session:
        return dict(run_scan(session, ctx.settings, scope="devices", serials=sorted(found)).counts)


@task("compliance.scan_access")
def scan_access(ctx: ServerContext, user_ids: list[int]) -> dict[str, int]:
    with ctx.sessionmaker() as session:
        return dict(run_scan(session, ctx.settings, scope="access", user_ids=user_ids).counts)


@task("compliance.full_scan", every=lambda s: s.compliance_scan_interval_s)
def full_scan(ctx: ServerContext) -> dict[str, int]:
    """Every device and the whole audit log (the scheduled run: catches deadlines that passed quietly)."""
    with ctx.sessionmaker() as session:
        return dict(run_scan(session, ctx.settings, scope="full").counts)
