"""What every family whose recordings are plain files under a directory shares."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from device_drivers.base import DeviceStatus, RecorderDriver, RecordingEntry, RejectedEntry
from device_drivers.errors import DriverError
from device_drivers.marks import BY_MP4_TAG, MP4_EXTENSIONS, MarkRules, read_mp4_tags, rules_of
from device_drivers.names import DEFAULT_NAME_PATTERNS, NamePattern, parse_name, utc_from_ns
from device_drivers.safefs import DEFAULT_EXTENSIONS, VolumeRoot

log = logging.getLogger(__name__)


def normalize_extensions(extensions: Iterable[str] | None) -> frozenset[str]:
    """``["MP4", ".mov"]`` -> ``{".mp4", ".mov"}``; None gives the default allow-list."""
    if extensions is None:
        return DEFAULT_EXTENSIONS
    return frozenset("." + e.lower().lstrip(".") for e in extensions)


def normalize_patterns(patterns: Iterable[NamePattern | str] | None) -> tuple[NamePattern, ...]:
    """Name patterns from :class:`NamePattern` objects or plain regexes (default strptime format and tz)."""
    if patterns is None:
        return DEFAULT_NAME_PATTERNS
    return tuple(p if isinstance(p, NamePattern) else NamePattern.compile(p) for p in patterns)


@dataclass
class NameEvidence:
    """What the file names of a listing say about who recorded them."""

    serials: Counter[str] = field(default_factory=Counter)
    officers: Counter[str] = field(default_factory=Counter)
    latest_officer: str | None = None

    @classmethod
    def of(cls, entries: Iterable[RecordingEntry]) -> NameEvidence:
        ev = cls()
        latest: tuple[datetime, str] | None = None
        for e in entries:
            if e.serial:
                ev.serials[e.serial] += 1
            if e.officer_no:
                ev.officers[e.officer_no] += 1
                when = e.started_at or e.mtime
                if latest is None or when >= latest[0]:
                    latest = (when, e.officer_no)
        ev.latest_officer = latest[1] if latest else None
        return ev

    def officer_warnings(self) -> list[str]:
        if len(self.officers) <= 1:
            return []
        return [
            f"file names carry several officers {sorted(self.officers)}; "
            f"taking {self.latest_officer} from the latest recording"
        ]


#: How long the listing identify() read may stand in for the next list_recordings() (seconds).
IDENTIFY_LISTING_TTL = 2.0


class FileVolumeDriver(RecorderDriver):
    """A recorder seen as a directory tree of recording files (USB disk, SD card, folder)."""

    accepted_options = frozenset({"extensions", "name_patterns", "important"})

    def __init__(
        self,
        root: Path,
        *,
        extensions: Iterable[str] | None = None,
        name_patterns: Iterable[NamePattern | str] | None = None,
        important: MarkRules | dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.extensions = normalize_extensions(extensions)
        self.name_patterns = normalize_patterns(name_patterns)
        #: where this family writes its important mark (default: device_drivers.marks.DEFAULT_MARKS)
        self.marks = rules_of(important)
        self._volume = VolumeRoot(self.root)
        self._identify_listing: tuple[float, list[RecordingEntry], list[RejectedEntry]] | None = None

    def read_status(self) -> DeviceStatus:
        self._check_open()
        with self._volume.fd():
            return DeviceStatus()

    def list_recordings(self) -> list[RecordingEntry]:
        self._check_open()
        handed = self._identify_listing
        self._identify_listing = None
        if handed is not None and time.monotonic() - handed[0] < IDENTIFY_LISTING_TTL:
            # identify() walked the volume a moment ago: on a card of 100k files, once is enough
            self.rejected = list(handed[2])
            return list(handed[1])
        found, self.rejected = self._volume.walk(self.extensions)
        entries = []
        for f in found:
            important, clean_name = self.marks.from_path(f.path)
            parsed = parse_name(clean_name, self.name_patterns)
            if important is None and self.marks.mp4_tags and self._tag_marked(f.path, f.size):
                important = BY_MP4_TAG
            entries.append(
                RecordingEntry(
                    path=f.path,
                    size=f.size,
                    mtime=utc_from_ns(f.mtime_ns),
                    started_at=parsed.started_at,
                    sequence=parsed.sequence,
                    serial=parsed.serial,
                    officer_no=parsed.officer_no,
                    important=important,
                )
            )
        return entries

    def _tag_marked(self, path: str, size: int) -> bool:
        """Do the container tags of an MP4/QuickTime file carry the family's mark? Unreadable: no."""
        if "." + path.rsplit(".", 1)[-1].lower() not in MP4_EXTENSIONS or size < 16:
            return False
        try:
            with self._volume.open_file(path) as f:
                return self.marks.from_tags(read_mp4_tags(f, size))
        except (DriverError, OSError, ValueError) as exc:
            log.warning("%s: container tags unreadable, no important mark taken: %s", path, exc)
            return False

    def open_recording(self, path: str) -> BinaryIO:
        self._check_open()
        return self._volume.open_file(path)

    def stat_recording(self, path: str) -> tuple[int, datetime]:
        self._check_open()
        st = self._volume.lstat_file(path)
        return st.st_size, utc_from_ns(st.st_mtime_ns)

    def delete_recording(self, path: str) -> None:
        self._check_open()
        self._volume.unlink_file(path)

    def name_evidence(self) -> NameEvidence:
        entries = self.list_recordings()
        self._identify_listing = (time.monotonic(), entries, list(self.rejected))
        return NameEvidence.of(entries)
