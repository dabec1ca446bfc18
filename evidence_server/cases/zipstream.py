"""A streaming ZIP writer: stored (uncompressed) entries, ZIP64 throughout, data descriptors.

Nothing is held but the current chunk and one small record per entry, so a case of many gigabytes
streams with bounded memory. Entry sizes are known in advance (evidence sizes are in the database),
so the archive's exact length is known before the first byte: ``archive_size``. The CRC-32 of an
entry is only known after its bytes went out, so it travels in the data descriptor that follows the
bytes, as APPNOTE 4.3.9 allows (bit 3 of the flags); readers take it from the central directory.
Every entry carries a ZIP64 extra field, so offsets and sizes beyond 4 GiB need no special case.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

_LOCAL = 0x04034B50
_DESCRIPTOR = 0x08074B50
_CENTRAL = 0x02014B50
_ZIP64_END = 0x06064B50
_ZIP64_LOCATOR = 0x07064B50
_END = 0x06054B50
_VERSION = 45  # ZIP64
_MADE_BY = (3 << 8) | _VERSION  # Unix, so the permission bits below mean something
_FLAGS = 0x0008 | 0x0800  # data descriptor follows; names are UTF-8
_READ_ONLY_FILE = 0o100444 << 16
_U16, _U32 = 0xFFFF, 0xFFFFFFFF

LOCAL_FIXED, LOCAL_EXTRA, DESCRIPTOR = 30, 20, 24
CENTRAL_FIXED, CENTRAL_EXTRA = 46, 28
END_RECORDS = 56 + 20 + 22


class ZipSizeError(ValueError):
    """An entry produced more or fewer bytes than it declared."""


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    chunks: Callable[[], Iterable[bytes]]  # called when the entry's turn comes


@dataclass
class _Written:
    name: bytes
    size: int
    crc: int
    offset: int


def dos_time(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS form; years before 1980 are clamped to 1980."""
    year = max(1980, moment.year)
    return (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2), ((year - 1980) << 9) | (
        moment.month << 5
    ) | moment.day


def archive_size(entries: Iterable[tuple[str, int]]) -> int:
    """The exact length of the archive ``stream`` writes for these (name, size) pairs."""
    total = END_RECORDS
    for name, size in entries:
        n = len(name.encode("utf-8"))
        total += LOCAL_FIXED + n + LOCAL_EXTRA + size + DESCRIPTOR + CENTRAL_FIXED + n + CENTRAL_EXTRA
    return total


def _entry_name(entry: Entry) -> bytes:
    """The entry's name as stored; ValueError for an empty, over-long, absolute or climbing name."""
    name = entry.name.encode("utf-8")
    if not name or len(name) > _U16 or entry.name.startswith("/") or ".." in entry.name.split("/"):
        raise ValueError(f"unsafe entry name {entry.name!r}")
    return name


def _local_header(name: bytes, time_: int, date_: int) -> bytes:
    """The local file header: sizes and CRC deferred to the data descriptor, a ZIP64 extra field."""
    fixed = struct.pack(
        "<IHHHHHIIIHH", _LOCAL, _VERSION, _FLAGS, 0, time_, date_, 0, _U32, _U32, len(name), LOCAL_EXTRA
    )
    return fixed + name + struct.pack("<HHQQ", 0x0001, 16, 0, 0)


def _entry_data(entry: Entry) -> Generator[bytes, None, tuple[int, int]]:
    """The entry's bytes, checked against its declared size; returns (CRC-32, byte count)."""
    crc, count = 0, 0
    for chunk in entry.chunks():
        if not chunk:
            continue
        crc = zlib.crc32(chunk, crc)
        count += len(chunk)
        if count > entry.size:
            raise ZipSizeError(f"{entry.name}: more than the {entry.size} bytes declared")
        yield chunk
    if count != entry.size:
        raise ZipSizeError(f"{entry.name}: {count} bytes, {entry.size} declared")
    return crc, count


def _central_record(w: _Written, time_: int, date_: int) -> bytes:
    """One central directory record: a read-only Unix file, its sizes and offset in the ZIP64 extra field."""
    record = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        _CENTRAL,
        _MADE_BY,
        _VERSION,
        _FLAGS,
        0,
        time_,
        date_,
        w.crc,
        _U32,
        _U32,
        len(w.name),
        CENTRAL_EXTRA,
        0,
        0,
        0,
        _READ_ONLY_FILE,
        _U32,
    )
    return record + w.name + struct.pack("<HHQQQ", 0x0001, 24, w.size, w.size, w.offset)


def _end_records(count: int, central_start: int, central_size: int) -> list[bytes]:
    """The ZIP64 end of central directory, its locator and the classic end record."""
    zip64_end_at = central_start + central_size
    return [
        struct.pack("<IQHHIIQQQQ", _ZIP64_END, 44, _MADE_BY, _VERSION, 0, 0, count, count, central_size, central_start),
        struct.pack("<IIQI", _ZIP64_LOCATOR, 0, zip64_end_at, 1),
        struct.pack(
            "<IHHHHIIH",
            _END,
            0,
            0,
            min(count, _U16),
            min(count, _U16),
            min(central_size, _U32),
            min(central_start, _U32),
            0,
        ),
    ]


def stream(entries: Iterable[Entry], *, modified: datetime) -> Iterator[bytes]:
    """The archive, chunk by chunk."""
    time_, date_ = dos_time(modified)
    written: list[_Written] = []
    offset = 0
    for entry in entries:
        name = _entry_name(entry)
        header = _local_header(name, time_, date_)
        yield header
        crc, count = yield from _entry_data(entry)
        yield struct.pack("<IIQQ", _DESCRIPTOR, crc, count, count)
        written.append(_Written(name, count, crc, offset))
        offset += len(header) + count + DESCRIPTOR
    central_start = offset
    for w in written:
        record = _central_record(w, time_, date_)
        offset += len(record)
        yield record
    yield from _end_records(len(written), central_start, offset - central_start)
