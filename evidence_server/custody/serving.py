"""Serving an original over HTTP: refused when its fixity check failed or its first block no longer
matches the block map, every read and every refusal audited."""

from __future__ import annotations

from collections.abc import Generator

from fastapi import Request
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.custody import reads
from evidence_server.custody.damage import CopyDamaged
from evidence_server.recordings.custody import MapUntrusted
from evidence_server.recordings.models import FIXITY_BAD, Recording
from evidence_server.recordings.service import ByteSpan


class ContentRefused(RuntimeError):
    """The stored bytes are not the evidence ingested: they are not served (the refusal is audited)."""


def _refuse(session: Session, request: Request, rec: Recording, details: dict[str, object]) -> None:
    audit(
        session,
        "recording.content_refused",
        request=request,
        object_type="recording",
        object_id=rec.id,
        details=details,
    )
    session.commit()


def ensure_servable(session: Session, request: Request, rec: Recording) -> None:
    """ContentRefused (audited and committed) when the recording failed its fixity check."""
    if rec.fixity_state in FIXITY_BAD:
        _refuse(session, request, rec, {"fixity_state": rec.fixity_state})
        raise ContentRefused(
            f"recording {rec.id} failed its fixity check ({rec.fixity_state}): the stored "
            "bytes are not the ones fingerprinted at ingest, so they are not served; an "
            "integrity incident was raised for legal affairs"
        )


def open_content(
    session: Session, ctx: ServerContext, request: Request, rec: Recording, span: ByteSpan, range_header: str | None
) -> Generator[bytes, None, None]:
    """The checked bytes of ``span``, the read audited and committed; ContentRefused (audited) when the
    first block no longer matches the recording's block map."""
    action = "recording.playback" if range_header else "recording.download"
    try:
        src = reads.original(ctx, session, rec, action.split(".")[1])
        # the first block is read and checked before answering: a damaged copy gets a 409, not a cut stream
        body = reads.first_then_rest(reads.chunks(ctx, src, action.split(".")[1], span.start, span.end))
    except (CopyDamaged, MapUntrusted) as exc:
        session.rollback()
        _refuse(session, request, rec, {"why": str(exc), "incident_id": getattr(exc, "incident_id", None)})
        raise ContentRefused(str(exc)) from exc
    details = {"range": range_header} if range_header else None
    audit(session, action, request=request, object_type="recording", object_id=rec.id, details=details)
    session.commit()
    return body
