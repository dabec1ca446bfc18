"""Reading recordings: HTTP byte ranges and the headers an original is served with. (Who may see which
recording: ``cases.access.recordings_visible``; the checked, audited read: ``custody.serving``.)"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evidence_server.recordings.models import Recording

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
    if rec.sm3:
        headers["Custodia-SM3"] = rec.sm3
    if span.partial:
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{rec.size}"
    return headers
