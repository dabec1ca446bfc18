"""Reading recordings: HTTP byte ranges and serving an original's checked, audited bytes.
(Who may see which recording: ``cases.access.recordings_visible``.)"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from evidence_server.audit.service import record as audit
from evidence_server.context import ServerContext
from evidence_server.custody import reads
from evidence_server.custody.damage import CopyDamaged
from evidence_server.recordings.custody import MapUntrusted
from evidence_server.recordings.models import FIXITY_BAD, Recording

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


class RangeError(ValueError):
    pass


class ContentRefused(RuntimeError):
    """The stored bytes are not the evidence ingested: they are not served (the refusal is audited)."""


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """One HTTP byte range → (start, end) inclusive; RangeError when malformed or unsatisfiable. Pure."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeError(f"malformed Range header {header!r}: want one range like bytes=0-1023")
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeError("unsatisfiable range")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeError(f"range {header!r} is outside the {size} bytes of this recording")
    return start, end


@dataclass(frozen=True)
class ByteSpan:
    """The bytes a request asks for, inclusive; ``partial`` when it named a Range (HTTP 206)."""

    start: int
    end: int
    partial: bool


def byte_span(range_header: str | None, size: int) -> ByteSpan:
    """The whole recording, or the one range the header names (RangeError when unsatisfiable). Pure."""
    if not range_header:
        return ByteSpan(0, size - 1, False)
    start, end = parse_range(range_header, size)
    return ByteSpan(start, end, True)


def _suffix(original_name: str) -> str:
    return "." + original_name.rsplit(".", 1)[-1].lower() if "." in original_name else ""


def media_type(rec: Recording) -> str:
    """The Content-Type an original is served as, from its file name's extension. Pure."""
    return MEDIA_TYPES.get(_suffix(rec.original_name), "application/octet-stream")


def content_headers(rec: Recording, span: ByteSpan) -> dict[str, str]:
    """The response headers of an original's bytes: length, name, both fingerprints and the range. Pure."""
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(max(0, span.end - span.start + 1)),
        "Content-Disposition": f'inline; filename="recording-{rec.id}{_suffix(rec.original_name)}"',
        "ETag": f'"{rec.blake3}"',
        "Custodia-SHA256": rec.sha256,
    }
    if span.partial:
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{rec.size}"
    return headers


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
