"""Station-facing transfer API: open a docking, report progress, complete with a manifest."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field, field_validator

from custodia_wire import documents
from custodia_wire.paths import UnsafePathError, check_device_path
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.ledger import docks as ledger_docks
from evidence_server.security import CurrentStation
from evidence_server.transfers import service
from evidence_server.transfers.models import Transfer, docked_evidence

router = APIRouter(prefix="/api/v1/transfers", tags=["transfers"])


class DeviceIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    family: str = Field(max_length=64)
    model: str | None = Field(default=None, max_length=200)
    volume_label: str | None = Field(default=None, max_length=200)


class OfficerIn(BaseModel):
    number: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)


class DeviceStatusIn(BaseModel):
    clock: datetime | None = None
    read_at: datetime | None = None
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    storage_total_bytes: int | None = Field(default=None, ge=0)
    storage_free_bytes: int | None = Field(default=None, ge=0)


class IndexEntry(BaseModel):
    path: str
    size: int = Field(ge=0)
    mtime: datetime | None = None
    started_at: datetime | None = Field(default=None, description="recording start read from the file name")

    @field_validator("mtime", "started_at")
    @classmethod
    def _zoned(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("timestamps need a time zone")
        return v

    @field_validator("path")
    @classmethod
    def _safe(cls, v: str) -> str:
        try:
            return check_device_path(v)
        except UnsafePathError as exc:
            raise ValueError(str(exc)) from exc


class RejectedIn(BaseModel):
    path: str = Field(max_length=2048)
    reason: str = Field(max_length=500)


class TransferIn(BaseModel):
    transfer_id: uuid.UUID
    docked_at: datetime
    device: DeviceIn
    officer: OfficerIn = OfficerIn()
    device_status: DeviceStatusIn = DeviceStatusIn()
    index: list[IndexEntry] = Field(max_length=200_000)
    rejected: list[RejectedIn] = Field(default_factory=list, max_length=200_000)

    @field_validator("docked_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("docked_at needs a time zone")
        return v


class HeldOut(BaseModel):
    path: str
    size: int
    blake3: str
    recording_id: int


class TransferOpened(BaseModel):
    transfer_id: str
    already_held: list[HeldOut]
    vanished: list[str]


class ProgressIn(BaseModel):
    state: str
    files_total: int | None = Field(default=None, ge=0)
    files_done: int | None = Field(default=None, ge=0)
    bytes_total: int | None = Field(default=None, ge=0)
    bytes_done: int | None = Field(default=None, ge=0)
    message: str | None = Field(default=None, max_length=2000)


class CompleteOut(BaseModel):
    receipt: dict[str, Any]
    missing: list[str]


def _jsonable(payload: TransferIn) -> dict[str, Any]:
    data = payload.model_dump(mode="json")
    data["transfer_id"] = str(payload.transfer_id)
    for entry in data["index"]:
        for key in ("mtime", "started_at"):
            if entry[key]:
                entry[key] = documents.utc_iso(documents.parse_iso(entry[key]))
    return data


@router.post("", response_model=TransferOpened, status_code=201)
def open_transfer(
    payload: TransferIn, request: Request, response: Response, station: CurrentStation, session: SessionDep
) -> TransferOpened:
    """Open a transfer for a docked device with its file index (idempotent on transfer_id).

    Only for a device of the station's unit (or of a unit it was allowed to serve), or one never seen
    before (registered as pending in the station's unit); any other device is refused with 403.
    """
    access = ledger_docks.dock_access(session, station, payload.device.serial)
    if not access.allowed:
        audit(
            session,
            "transfer.refused",
            request=request,
            object_type="device",
            object_id=payload.device.serial,
            details={"transfer_id": str(payload.transfer_id), "why": "device of another unit"},
        )
        session.commit()
        raise HTTPException(403, "this device belongs to another unit: this station may not take it in")
    try:
        opened = service.open_transfer(
            session, station, _jsonable(payload), unit_id=access.unit_id, own_unit=access.own_unit
        )
    except service.TransferError as exc:
        raise HTTPException(409, str(exc)) from exc
    if opened.created:
        ledger_docks.on_dock(session, opened.transfer)  # register an unknown device; note a dock by a non-holder
        audit(
            session,
            "transfer.docked",
            request=request,
            object_type="transfer",
            object_id=opened.transfer.id,
            details={
                **docked_evidence(opened.transfer),
                "files": len(payload.index),
                "already_held": len(opened.already_held),
                "vanished": opened.vanished,
                "rejected": len(payload.rejected),
            },
        )
    else:
        response.status_code = 200
    session.commit()
    return TransferOpened(
        transfer_id=opened.transfer.id,
        already_held=opened.already_held,  # type: ignore[arg-type]
        vanished=opened.vanished,
    )


def _own(session: SessionDep, station_id: int, transfer_id: str) -> Transfer:
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or transfer.station_id != station_id:
        raise HTTPException(404, "no such transfer for this station")
    return transfer


@router.put("/{transfer_id}/progress", status_code=204)
def progress(transfer_id: str, body: ProgressIn, station: CurrentStation, session: SessionDep) -> Response:
    transfer = _own(session, station.id, transfer_id)
    try:
        service.update_progress(transfer, body.model_dump())
    except service.TransferError as exc:
        raise HTTPException(422, str(exc)) from exc
    session.commit()
    return Response(status_code=204)


@router.post("/{transfer_id}/complete", response_model=CompleteOut)
def complete(
    transfer_id: str,
    manifest: dict[str, Any],
    request: Request,
    ctx: CtxDep,
    station: CurrentStation,
    session: SessionDep,
) -> CompleteOut:
    """Check the station's manifest against what was verified and return a signed receipt."""
    transfer = _own(session, station.id, transfer_id)
    try:
        parsed = documents.Manifest.from_dict(manifest)
        for f in parsed.files:
            check_device_path(f.path)
    except (documents.DocumentError, ValueError) as exc:
        raise HTTPException(422, f"malformed manifest: {exc}") from exc
    try:
        receipt, missing = service.complete(session, station, transfer, parsed, ctx.signer, ctx.key_id)
    except service.TransferError as exc:
        raise HTTPException(409, str(exc)) from exc
    audit(
        session,
        "transfer.receipt",
        request=request,
        object_type="transfer",
        object_id=transfer.id,
        details={"manifest_blake3": transfer.manifest_blake3, "confirmed": len(receipt["files"]), "missing": missing},
    )
    session.commit()
    return CompleteOut(receipt=receipt, missing=missing)
