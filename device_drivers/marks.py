"""Files a recorder marks important (重要文件标记): where each family writes the mark, as data.

Chinese recorders mark a file important (a button pressed during or after recording) in one of three
ways, and each family's rules say which it uses:

- in the **file name**: a whole token at the start or the end of the name's stem, ``IMP_20261120_093000_0001.MP4``
  or ``DSJ0001_102345_20261120093000_0001_IMP.MP4`` (``name_tokens``), or in a **folder** named so,
  ``DCIM/重要/..`` (``folders``);
- in the **container's metadata**: an MP4 tag such as ``comment=IMP`` (``mp4_tags``: tag name -> values);
- through a **driver command** that lists the marked files (a USB vendor profile's ``list_important``).

The rules are plain data (:meth:`MarkRules.from_dict`); a vendor profile carries them under ``important``.
What the family writes is unverified for every shipped family (see each profile's ``notes``); a bureau
sets them from what its recorders do. A mark names *how* the device said it (``MARK_HOW``), never more:
the station carries it, the server stores it as a mark set by the device.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

#: How a device marked a file: the only values a mark may carry from station to server.
BY_FILE_NAME = "file_name"
BY_FOLDER = "folder"
BY_MP4_TAG = "mp4_tag"
BY_DEVICE_LIST = "device_list"
MARK_HOW = (BY_FILE_NAME, BY_FOLDER, BY_MP4_TAG, BY_DEVICE_LIST)

_TOKEN = re.compile(r"[A-Za-z0-9\u4e00-\u9fff]{1,16}")
_SEPARATORS = "_-"
MP4_EXTENSIONS = frozenset({".mp4", ".mov", ".m4a", ".3gp"})
#: Largest ``udta`` or ``meta`` box read for its tags (thumbnails aside, tags take a few kilobytes).
MAX_TAG_BOX_BYTES = 4 * 1024 * 1024


class MarkRulesError(ValueError):
    """Mark rules that cannot be used, naming where they came from and the key."""


@dataclass(frozen=True)
class MarkRules:
    """How one family marks a file important. Tokens, folders and tag values compare case-insensitively."""

    name_tokens: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    mp4_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<rules>") -> MarkRules:
        """Validated rules: ``{"name_tokens": [..], "folders": [..], "mp4_tags": {"comment": [..]}}``."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise MarkRulesError(f"{where}: important must be an object")
        unknown = set(data) - {"name_tokens", "folders", "mp4_tags"}
        if unknown:
            raise MarkRulesError(f"{where}: unknown key(s) {sorted(unknown)} in important")

        def texts(value: Any, key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise MarkRulesError(f"{where}: important.{key} must be a list of non-empty strings")
            for v in value:
                if pattern is not None and not pattern.fullmatch(v):
                    raise MarkRulesError(f"{where}: important.{key}: {v!r} is not 1-16 letters or digits")
                if len(v) > 64 or "/" in v:
                    raise MarkRulesError(f"{where}: important.{key}: {v!r} is not a plain name")
            return tuple(value)

        tags = data.get("mp4_tags", {})
        if not isinstance(tags, Mapping):
            raise MarkRulesError(f"{where}: important.mp4_tags must map a tag name to its values")
        return cls(
            name_tokens=texts(data.get("name_tokens", []), "name_tokens", _TOKEN),
            folders=texts(data.get("folders", []), "folders"),
            mp4_tags={str(k).casefold(): texts(v, f"mp4_tags.{k}") for k, v in tags.items()},
        )

    def __bool__(self) -> bool:
        return bool(self.name_tokens or self.folders or self.mp4_tags)

    def from_path(self, path: str) -> tuple[str | None, str]:
        """``(how, base name without the mark)`` of a device path: the name parsers read the clean name.

        A token counts only whole, at the start or the end of the stem: ``IMP_x.MP4`` and ``x_IMP.MP4``
        are marked, ``IMPORTANT_x.MP4``, ``xIMP.MP4`` and ``a_IMP_b.MP4`` are not. Pure.
        """
        *dirs, base = path.split("/")
        wanted = {t.casefold() for t in self.name_tokens}
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        if wanted and stem:
            for sep in _SEPARATORS:
                head, _, rest = stem.partition(sep)
                if rest and head.casefold() in wanted:
                    return BY_FILE_NAME, rest + dot + ext
                front, _, tail = stem.rpartition(sep)
                if front and tail.casefold() in wanted:
                    return BY_FILE_NAME, front + dot + ext
        folders = {f.casefold() for f in self.folders}
        if folders and any(d.casefold() in folders for d in dirs):
            return BY_FOLDER, base
        return None, base

    def from_tags(self, tags: Mapping[str, str]) -> bool:
        """Do these container tags (name -> text, as :func:`read_mp4_tags` gives them) say important? Pure."""
        for name, values in self.mp4_tags.items():
            text = tags.get(name)
            if text is not None and text.strip().casefold() in {v.casefold() for v in values}:
                return True
        return False


#: What the volume families (mass storage, folder) take unless configured otherwise.
DEFAULT_MARKS = MarkRules.from_dict(
    {"name_tokens": ["IMP"], "folders": ["IMP", "重要"], "mp4_tags": {"comment": ["IMP", "重要", "important"]}},
    "device_drivers.marks.DEFAULT_MARKS",
)


def rules_of(value: MarkRules | Mapping[str, Any] | None) -> MarkRules:
    """Rules from a driver option: rules, their dict form, or None for the defaults."""
    if value is None:
        return DEFAULT_MARKS
    if isinstance(value, MarkRules):
        return value
    return MarkRules.from_dict(value, "driver option important")


def match_device_list(path: str, listed: frozenset[str]) -> bool:
    """Is ``path`` among the files a device listed as marked (by full path, or by name when it gave names)?"""
    return path in listed or path.rsplit("/", 1)[-1] in listed


# --- MP4 container tags ------------------------------------------------------------------------------

#: iTunes-style item atoms and the names ffmpeg gives them (``-metadata comment=..`` writes ``©cmt``).
_ILST_NAMES = {
    b"\xa9cmt": "comment",
    b"\xa9nam": "title",
    b"desc": "description",
    b"\xa9too": "encoder",
    b"keyw": "keywords",
    b"\xa9key": "keywords",
    b"\xa9grp": "grouping",
}


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes in ``data[start:end]``; stops at a malformed one."""
    out = []
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, off)
        head = 8
        if size == 1 and off + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, off + 8)
            head = 16
        elif size == 0:
            size = end - off
        if size < head or off + size > end:
            break
        out.append((kind, off + head, off + size))
        off += size
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip("\x00").strip()


def _ilst(data: bytes, start: int, end: int, keys: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for kind, pstart, pend in _children(data, start, end):
        if kind in _ILST_NAMES:
            name = _ILST_NAMES[kind]
        elif kind[:4] != b"\x00\x00\x00\x00" and 1 <= int.from_bytes(kind, "big") <= len(keys):
            name = keys[int.from_bytes(kind, "big") - 1]  # an mdta key, by its 1-based index
        else:
            continue
        for dkind, dstart, dend in _children(data, pstart, pend):
            if dkind == b"data" and dend - dstart >= 8:
                tags.setdefault(name.casefold(), _text(data[dstart + 8 : dend]))
    return tags


def _keys(data: bytes, start: int, end: int) -> list[str]:
    """The names of an ``mdta`` keys box (``-movflags use_metadata_tags``)."""
    if end - start < 8:
        return []
    (count,) = struct.unpack_from(">I", data, start + 4)
    names = []
    off = start + 8
    for _ in range(min(count, 1000)):
        if off + 8 > end:
            break
        (size,) = struct.unpack_from(">I", data, off)
        if size < 8 or off + size > end:
            break
        names.append(_text(data[off + 8 : off + size]))
        off += size
    return names


def _meta(data: bytes, start: int, end: int) -> dict[str, str]:
    # ``meta`` is a full box in MP4 (4 bytes of version and flags) but a plain one in QuickTime
    body = start + 4 if end - start >= 12 and data[start + 8 : start + 12] == b"hdlr" else start
    boxes = _children(data, body, end)
    keys = next((_keys(data, s, e) for k, s, e in boxes if k == b"keys"), [])
    tags: dict[str, str] = {}
    for kind, s, e in boxes:
        if kind == b"ilst":
            tags.update(_ilst(data, s, e, keys))
    return tags


def tags_of_moov(moov: bytes) -> dict[str, str]:
    """Tag name (casefolded) -> text from a ``moov`` box's payload: ``udta`` QuickTime text atoms,
    ``udta/meta/ilst`` items and ``meta`` with ``mdta`` keys. Malformed boxes end the walk, never raise. Pure."""
    tags: dict[str, str] = {}
    for kind, s, e in _children(moov, 0, len(moov)):
        if kind == b"meta":
            tags.update(_meta(moov, s, e))
        elif kind == b"udta":
            for ukind, us, ue in _children(moov, s, e):
                if ukind == b"meta":
                    tags.update(_meta(moov, us, ue))
                elif ukind in _ILST_NAMES and ue - us >= 4:  # QuickTime text atom: size, language, text
                    (n,) = struct.unpack_from(">H", moov, us)
                    tags.setdefault(_ILST_NAMES[ukind], _text(moov[us + 4 : min(ue, us + 4 + n)]))
    return tags


def _headers(f: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, offset, size)`` of the boxes laid end to end in ``[start, end)`` of the file, reading only
    their headers; the walk ends at the first malformed one."""
    out: list[tuple[bytes, int, int]] = []
    off = start
    while off + 8 <= end:
        f.seek(off)
        head = f.read(16)
        if len(head) < 8:
            break
        size, kind = struct.unpack_from(">I4s", head)
        hlen = 8
        if size == 1:
            if len(head) < 16:
                break
            (size,) = struct.unpack_from(">Q", head, 8)
            hlen = 16
        elif size == 0:
            size = end - off
        if size < hlen or off + size > end:
            break
        out.append((kind, off, size))
        off += size
    return out


def read_mp4_tags(f: BinaryIO, size: int) -> dict[str, str]:
    """The container tags of an open MP4/QuickTime file.

    Reads box headers only, then the ``moov``'s ``udta`` and ``meta`` children (a few kilobytes), never
    its sample tables nor the media: a card of long recordings is docked without reading it twice.
    Returns {} for anything that is not a well-formed MP4.
    """
    moov = next(((off, box) for kind, off, box in _headers(f, 0, size) if kind == b"moov"), None)
    if moov is None:
        return {}
    off, box = moov
    f.seek(off)
    hlen = 16 if struct.unpack(">I", f.read(4))[0] == 1 else 8
    wanted = []
    for kind, coff, csize in _headers(f, off + hlen, off + box):
        if kind in (b"udta", b"meta") and csize <= MAX_TAG_BOX_BYTES:
            f.seek(coff)
            wanted.append(f.read(csize))
    return tags_of_moov(b"".join(wanted))
