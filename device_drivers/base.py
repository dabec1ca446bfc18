"""The recorder driver contract: what every device family offers the ingest agent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, ClassVar, Self

from device_drivers.errors import (
    DeviceGoneError,
    DriverError,
    IdentityError,
    NotSupportedError,
    UnsafeEntryError,
)

__all__ = [
    "DeviceGoneError",
    "DeviceIdentity",
    "DeviceStatus",
    "DriverError",
    "IdentityError",
    "NotSupportedError",
    "RecorderDriver",
    "RecordingEntry",
    "RejectedEntry",
    "UnsafeEntryError",
]


@dataclass(frozen=True)
class DeviceIdentity:
    serial: str  # device 产品序号: the trusted identity
    family: str  # driver family name, e.g. "mass_storage", "folder"
    model: str | None = None
    officer_no: str | None = None  # 警号
    officer_name: str | None = None
    unit_no: str | None = None
    unit_name: str | None = None
    volume_label: str | None = None


@dataclass(frozen=True)
class DeviceStatus:
    """What the device says about itself at docking; any field None when the family cannot tell."""

    clock: datetime | None = None  # device clock, UTC-aware
    read_at: datetime | None = None  # host UTC time when the clock was read
    battery_percent: int | None = None
    storage_total_bytes: int | None = None
    storage_free_bytes: int | None = None

    @property
    def clock_offset_seconds(self) -> float | None:
        """Device clock minus host clock, in seconds (positive: the device runs ahead)."""
        if self.clock is None or self.read_at is None:
            return None
        return (self.clock - self.read_at).total_seconds()


@dataclass(frozen=True)
class RecordingEntry:
    path: str  # relative POSIX path on the volume, already validated by check_device_path
    size: int
    mtime: datetime  # UTC-aware
    started_at: datetime | None = None  # parsed from the file name (UTC-aware), None if the name has none
    sequence: int | None = None
    serial: str | None = None  # serial as written in the file name
    officer_no: str | None = None  # officer 警号 as written in the file name
    #: how the device marked the file important (device_drivers.marks.MARK_HOW), None if it did not
    important: str | None = None


@dataclass(frozen=True)
class RejectedEntry:
    """Something found on the volume that is not offered for transfer, and why."""

    path: str  # printable form (repr-escaped if needed) of what was found
    reason: str  # e.g. "symlink", "fifo", "device node", "unsafe name: ..", "not a recording (extension)"


class RecorderDriver(ABC):
    """One docked recorder (or folder standing in for one), seen through its device family.

    Contract:

    - ``probe(root)`` is cheap, has no side effects and never raises for an unreadable or odd root:
      it answers False.
    - A driver is a context manager; ``close()`` always runs (``with driver_for(root) as d: ...``),
      is idempotent, and after it every other method raises :class:`DriverError`.
    - ``identify()`` returns the trusted serial or raises :class:`IdentityError`; doubts that do not
      stop identification (names that disagree with the label, ...) go to ``identity_warnings``.
    - ``list_recordings()`` never follows symlinks, returns regular files only, sorted by path, with
      paths already accepted by ``custodia_wire.paths.check_device_path``; everything else it found,
      except OS junk, is in ``self.rejected`` afterwards. Zero-length files are listed.
    - ``open_recording``/``stat_recording``/``delete_recording`` take such a relative path, never
      follow a symlink in any component, never reach outside the root, and act only on regular files
      (else :class:`UnsafeEntryError`). ``open_recording`` returns an unbuffered read-only binary file
      that the caller closes. ``delete_recording`` is called only by the agent after a signed server
      receipt.
    - Whenever the volume has been unplugged, unmounted or replaced, any method raises
      :class:`DeviceGoneError`, including reads on a file opened earlier where the OS reports it.
    - ``list_recordings()`` carries the family's important mark (重要文件标记) in ``RecordingEntry.important``:
      read from the file name, a folder, the container's tags or a vendor command (``device_drivers.marks``);
      a mark that cannot be read is no mark, never an error.
    - A capability the family lacks raises :class:`NotSupportedError` (``set_clock``) or reads as
      None (fields of :class:`DeviceStatus`).
    - Drivers know nothing of servers, HTTP or databases, and never write to the volume except in
      ``delete_recording`` and ``set_clock``.
    """

    family: ClassVar[str]
    #: Keyword options the constructor (and ``probe``) accept; ``registry.driver_for`` passes only these.
    accepted_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, root: Path, **options: Any) -> None:
        unknown = set(options) - self.accepted_options
        if unknown:
            raise TypeError(f"{type(self).__name__} does not accept options {sorted(unknown)}")
        self.root = Path(root)
        self.rejected: list[RejectedEntry] = []
        self.identity_warnings: list[str] = []
        self._closed = False

    @classmethod
    @abstractmethod
    def probe(cls, root: Path, **options: Any) -> bool:
        """Does this volume or folder look like this family?"""

    @abstractmethod
    def identify(self) -> DeviceIdentity: ...

    @abstractmethod
    def read_status(self) -> DeviceStatus: ...

    @abstractmethod
    def list_recordings(self) -> list[RecordingEntry]: ...

    @abstractmethod
    def open_recording(self, path: str) -> BinaryIO: ...

    @abstractmethod
    def stat_recording(self, path: str) -> tuple[int, datetime]:
        """``(size, mtime UTC)`` of one recording, without following symlinks."""

    @abstractmethod
    def delete_recording(self, path: str) -> None:
        """Unlink one recording (no follow); only after the server's signed receipt."""

    def set_clock(self, when: datetime) -> None:
        """Set the device clock (UTC-aware ``when``); families without a control channel cannot."""
        raise NotSupportedError(f"{self.family} devices have no clock to set")

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError(f"{type(self).__name__} for {self.root} is closed")

    def close(self) -> None:
        """Release whatever the driver holds; safe to call twice."""
        self._closed = True

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.root}{' closed' if self._closed else ''}>"
