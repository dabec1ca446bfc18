"""Payloads the vendor protocols carry, as pure functions: ZFY_INFO blocks, times, numbers."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from custodia_wire.paths import UnsafePathError, check_device_path
from device_drivers.usb.protocol_errors import ProtocolError

ENCODING = "gbk"

#: ZFY_INFO layouts: (field, width) in order. 94 bytes leave room for NUL terminators; 89 do not.
INFO_LAYOUTS: dict[int, tuple[tuple[str, int], ...]] = {
    94: (("serial", 8), ("officer_no", 7), ("officer_name", 33), ("unit_no", 13), ("unit_name", 33)),
    89: (("serial", 7), ("officer_no", 6), ("officer_name", 32), ("unit_no", 12), ("unit_name", 32)),
}

#: Resolution codes of one family's menu config: code -> (width, height, fps).
RESOLUTION_CODES: dict[int, tuple[int, int, int]] = {
    0: (2688, 1512, 30),
    1: (2560, 1440, 30),
    2: (2304, 1296, 30),
    3: (1920, 1080, 30),
    4: (1280, 720, 30),
    5: (848, 480, 30),
    6: (1920, 1080, 20),
    7: (1280, 720, 20),
    8: (848, 480, 20),
}


@dataclass(frozen=True)
class ZfyInfo:
    """The info block: who the recorder belongs to, as the device stores it."""

    serial: str = ""  # 产品序号
    officer_no: str = ""  # 警号
    officer_name: str = ""
    unit_no: str = ""  # 单位编号
    unit_name: str = ""


def gbk_field(text: str, width: int, *, terminator: bool) -> bytes:
    """``text`` in GBK, cut at a character boundary to fit, NUL-padded to ``width`` bytes.

    With ``terminator`` at least one NUL always follows the text (the 94-byte layout).
    """
    room = width - 1 if terminator else width
    out = b""
    for ch in text:
        enc = ch.encode(ENCODING, errors="replace")
        if len(out) + len(enc) > room:
            break
        out += enc
    return out.ljust(width, b"\0")


def gbk_text(raw: bytes) -> str:
    """Text of a NUL-padded GBK field: up to the first NUL; undecodable bytes become U+FFFD."""
    return raw.split(b"\0", 1)[0].decode(ENCODING, errors="replace").strip()


def encode_info(info: ZfyInfo, size: int = 94) -> bytes:
    try:
        layout = INFO_LAYOUTS[size]
    except KeyError:
        raise ValueError(f"ZFY_INFO is 94 or 89 bytes, not {size}") from None
    return b"".join(gbk_field(getattr(info, name), width, terminator=size == 94) for name, width in layout)


def decode_info(raw: bytes) -> ZfyInfo:
    """Decode a 94- or 89-byte block (the size tells the layout)."""
    layout = INFO_LAYOUTS.get(len(raw))
    if layout is None:
        raise ProtocolError(f"ZFY_INFO block of {len(raw)} bytes; expected 94 or 89")
    values, at = {}, 0
    for name, width in layout:
        values[name] = gbk_text(raw[at : at + width])
        at += width
    return ZfyInfo(**values)


def info_offsets(size: int) -> dict[str, int]:
    """Field offsets of a layout (the 89-byte one: 0, 7, 13, 45, 57)."""
    at, out = 0, {}
    for name, width in INFO_LAYOUTS[size]:
        out[name] = at
        at += width
    return out


# --- times --------------------------------------------------------------------------------------


def local(when: datetime, tz: str) -> datetime:
    """``when`` (UTC-aware) as naive device-local time."""
    if when.tzinfo is None:
        raise ValueError("times given to a device must be timezone-aware")
    return when.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def from_local(naive: datetime, tz: str) -> datetime:
    return naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def encode_time_struct(when: datetime, tz: str) -> bytes:
    """DV16: little-endian u16 year, then month, day, hour, minute, second, local time."""
    t = local(when, tz)
    return struct.pack("<HBBBBB", t.year, t.month, t.day, t.hour, t.minute, t.second)


def decode_time_struct(raw: bytes, tz: str) -> datetime:
    if len(raw) < 7:
        raise ProtocolError(f"time payload of {len(raw)} bytes; expected 7")
    year, month, day, hour, minute, second = struct.unpack("<HBBBBB", raw[:7])
    try:
        return from_local(datetime(year, month, day, hour, minute, second), tz)
    except ValueError as exc:
        raise ProtocolError(f"device time {raw[:7].hex()} is not a date: {exc}") from exc


def format_time_text(when: datetime, tz: str, fmt: str) -> str:
    """A text time: strftime ``fmt``, plus ``%-H`` style unpadded fields as the E12 family sends them."""
    t = local(when, tz)
    fmt = fmt.replace("%-H", str(t.hour)).replace("%-m", str(t.month)).replace("%-d", str(t.day))
    return t.strftime(fmt)


def parse_time_text(text: str, tz: str) -> datetime:
    """``2017-05-15 8:00:00`` (unpadded fields allowed), ``20170515080000``, or epoch seconds/ms."""
    text = text.strip()
    if re.fullmatch(r"\d{12,13}", text) and not text.startswith(("19", "20")):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    m = re.fullmatch(r"(\d{4})-?(\d{1,2})-?(\d{1,2})[ T]?(\d{1,2}):?(\d{1,2}):?(\d{1,2})", text)
    if m is None:
        if re.fullmatch(r"\d{9,10}", text):
            return datetime.fromtimestamp(int(text), UTC)
        raise ProtocolError(f"device time {text!r} is not a time")
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        return from_local(datetime(year, month, day, hour, minute, second), tz)
    except ValueError as exc:
        raise ProtocolError(f"device time {text!r}: {exc}") from exc


def parse_resolution(text: str) -> tuple[int, int]:
    """``1920*1080`` / ``1920x1080`` -> (1920, 1080)."""
    m = re.fullmatch(r"\s*(\d{2,5})\s*[*xX×]\s*(\d{2,5})\s*", text)
    if m is None:
        raise ProtocolError(f"resolution {text!r} is not W*H")
    return int(m.group(1)), int(m.group(2))


def parse_battery(value: str | int) -> int:
    try:
        n = int(str(value).strip().rstrip("%"))
    except ValueError:
        raise ProtocolError(f"battery level {value!r} is not a number") from None
    if not 0 <= n <= 100:
        raise ProtocolError(f"battery level {n} is outside 0-100")
    return n


def int32s(raw: bytes, count: int) -> tuple[int, ...]:
    if len(raw) < 4 * count:
        raise ProtocolError(f"expected {count} int32 values, got {len(raw)} bytes")
    return struct.unpack(f"<{count}i", raw[: 4 * count])


def ascii_field(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


#: Most entries a device's list of marked files is taken with (beyond: the rest is ignored).
MAX_LISTED_FILES = 100_000


def parse_file_list(text: str) -> frozenset[str]:
    """A device's list of marked files: paths (or bare names) separated by newlines, ``;`` or ``|``.

    Entries that are not safe relative device paths (``..``, absolute, control characters) are
    dropped: a list can only ever name files of the volume the station reads itself. Pure.
    """
    out: set[str] = set()
    for raw in re.split(r"[\r\n;|]+", text):
        entry = raw.strip().strip("\x00").lstrip("/")
        if not entry:
            continue
        try:
            out.add(check_device_path(entry))
        except UnsafePathError:
            continue
        if len(out) >= MAX_LISTED_FILES:
            break
    return frozenset(out)
