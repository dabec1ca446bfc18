"""Writing the container-level encoder tag (``moov/udta/©swr``) the way a recorder's firmware does.

libavformat always replaces a requested ``encoder`` tag with its own ``Lavf..`` (or drops it under
``-fflags +bitexact``), so the simulator writes the atom itself. Only files whose ``moov`` box is
the last top-level box are handled (no ``+faststart``); then no chunk offset moves.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_UND_LANGUAGE = 0x55C4  # ISO 639-2 "und", packed as in QuickTime text atoms


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, offset, size)`` of the boxes laid end to end in ``data[start:end]``."""
    out = []
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, off)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, off + 8)
        elif size == 0:
            size = end - off
        if size < 8 or off + size > end:
            raise ValueError(f"corrupt MP4 box {kind!r} at offset {off}")
        out.append((kind, off, size))
        off += size
    return out


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _top_level(f: BinaryIO, file_size: int) -> list[tuple[bytes, int, int]]:
    """Walk the top-level boxes by seeking over them (``mdat`` may be gigabytes)."""
    out = []
    off = 0
    while off + 8 <= file_size:
        f.seek(off)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        if size == 1:
            (size,) = struct.unpack_from(">Q", head, 8)
        elif size == 0:
            size = file_size - off
        if size < 8 or off + size > file_size:
            raise ValueError(f"corrupt MP4 top-level box {kind!r} at offset {off}")
        out.append((kind, off, size))
        off += size
    return out


def set_encoder_tag(path: Path, encoder: str) -> None:
    """Set (or replace) the container encoder tag that ffprobe reports as ``format.tags.encoder``."""
    text = encoder.encode("utf-8")
    swr = _box(b"\xa9swr", struct.pack(">HH", len(text), _UND_LANGUAGE) + text)
    with open(path, "r+b") as f:
        f.seek(0, 2)
        top = _top_level(f, f.tell())
        if not top or top[-1][0] != b"moov":
            raise ValueError(f"{path}: moov is not the last box (written with +faststart?)")
        _, moov_off, moov_size = top[-1]
        f.seek(moov_off)
        moov = f.read(moov_size)
        children = _boxes(moov, 8, moov_size)
        parts = []
        udta_found = False
        for kind, off, size in children:
            if kind == b"udta":
                udta_found = True
                kept = [moov[o : o + s] for k, o, s in _boxes(moov, off + 8, off + size) if k != b"\xa9swr"]
                parts.append(_box(b"udta", swr + b"".join(kept)))
            else:
                parts.append(moov[off : off + size])
        if not udta_found:
            parts.append(_box(b"udta", swr))
        f.seek(moov_off)
        f.write(_box(b"moov", b"".join(parts)))
        f.truncate()
