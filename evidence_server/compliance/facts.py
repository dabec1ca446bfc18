"""The plain data the compliance rules read, and what they produce. No I/O.

Times are UTC-aware. A device timestamp (file name, container) is corrected by the clock offset
measured at the dock that saw it: ``clock_offset_s`` is device clock minus server time, so the true
time is the device time minus the offset (the same convention as ``cases.rules.RecordingSpan``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


class Kind(enum.StrEnum):
    late_transfer = "late_transfer"  # 1
    not_transferred = "not_transferred"  # 2
    device_overdue = "device_overdue"  # 3
    missing_recording = "missing_recording"  # 4
    short_recording = "short_recording"  # 4
    segment_gap = "segment_gap"  # 5
    timeline_gap = "timeline_gap"  # 5
    vanished_file = "vanished_file"  # 5
    suspected_edit = "suspected_edit"  # 6, before ingest
    fixity_failure = "fixity_failure"  # 6, after ingest
    integrity_incident = "integrity_incident"  # 6, after ingest
    clock_off = "clock_off"  # 7
    used_outside_ledger = "used_outside_ledger"  # 8
    dock_by_non_holder = "dock_by_non_holder"  # 8
    unapproved_lending = "unapproved_lending"  # 8
    access_outside_cases = "access_outside_cases"  # 9
    bulk_download = "bulk_download"  # 9


#: Kinds about a checkout's footage: a checkout with any of these is not "complete, on time and untouched".
FOOTAGE_KINDS = frozenset(
    {
        Kind.late_transfer,
        Kind.not_transferred,
        Kind.missing_recording,
        Kind.short_recording,
        Kind.segment_gap,
        Kind.timeline_gap,
        Kind.vanished_file,
        Kind.suspected_edit,
        Kind.fixity_failure,
        Kind.integrity_incident,
    }
)
#: Kinds found from audit entries (user-scoped) rather than from a device's custody facts.
ACCESS_KINDS = frozenset({Kind.access_outside_cases, Kind.bulk_download})
DEVICE_KINDS = frozenset(Kind) - ACCESS_KINDS

_SEQ = re.compile(r"_(\d{1,6})\.[A-Za-z0-9]{1,5}$")


def sequence_of(path: str) -> int | None:
    """The segment number at the end of a recorder's file name (``…_0007.MP4`` → 7), if any.

    What ``_SEQ`` finds, by string methods (a full scan asks it for every one of a million files):
    ``_``, 1-6 decimal digits, ``.``, 1-5 ASCII letters or digits, at the end (or before a final
    newline, as ``$`` allows)."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith("\n"):
        name = name[:-1]
    dot = name.rfind(".")
    ext = name[dot + 1 :]
    if dot < 0 or not 0 < len(ext) <= 5 or not (ext.isascii() and ext.isalnum()):
        return None
    underscore = name.rfind("_", 0, dot)
    digits = name[underscore + 1 : dot]
    if underscore < 0 or not 0 < len(digits) <= 6 or not digits.isdecimal():
        return None
    return int(digits)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@dataclass(slots=True)
class Segment:
    """A file a device held: transferred (``recording_id`` set) or only listed in a dock's index."""

    device_serial: str
    path: str
    size: int
    start: datetime | None  # device clock: the file name's time, else the container's
    end: datetime | None = None  # device clock
    clock_offset_s: float | None = None  # measured at the dock that brought (or first listed) it
    recording_id: int | None = None
    unit_id: int | None = None
    officer_no: str | None = None
    transferred_at: datetime | None = None  # verified by the server
    seen_at: datetime | None = None  # the first dock whose index listed it
    seen_transfer_id: str | None = None
    # media facts of a transferred recording (None before ffprobe ran)
    duration_s: float | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    encoder: str | None = None
    container_created_at: datetime | None = None  # device clock
    fixity_state: str | None = None
    family: str | None = None
    start_from_name: bool = True  # False: ``start`` is the container's own time (no time in the name)
    profile: Mapping[str, str] | None = None  # what the recorder wrote into it (``profile.profile_of``)

    # derived once at construction (a full scan asks them millions of times); slots, not frozen: a
    # frozen dataclass costs several times more to build, and a full scan builds a million of these
    seq: int | None = field(init=False, default=None)
    true_start: datetime | None = field(init=False, default=None)  # corrected by the clock offset
    true_end: datetime | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.seq = sequence_of(self.path)
        offset = self.clock_offset_s
        if offset:  # the device clock minus the offset; one timedelta for both ends
            by = timedelta(seconds=offset)
            self.true_start = None if self.start is None else self.start - by
            self.true_end = (None if self.end is None else self.end - by) or self.true_start
        else:
            self.true_start = self.start
            self.true_end = self.end or self.start

    def ref(self) -> dict[str, Any]:
        """How the evidence names this file."""
        return {
            "recording_id": self.recording_id,
            "path": self.path,
            "size": self.size,
            "start": iso(self.true_start),
            "end": iso(self.true_end),
            "device_start": iso(self.start),
            "clock_offset_s": self.clock_offset_s,
        }


@dataclass(frozen=True)
class HandOut:
    """A checkout or lend with its return, corrections applied (``returned_at`` None: still out)."""

    entry_id: int
    device_serial: str
    unit_id: int
    start: datetime
    expected_return_at: datetime | None
    returned_at: datetime | None = None
    return_entry_id: int | None = None
    kind: str = "checkout"  # checkout | lend
    officer_no: str | None = None
    officer_id: int | None = None
    officer_unit_id: int | None = None  # the unit of the officer who took it (None: not a user)
    enforcement_matter: str | None = None
    case_number: str | None = None
    clock_offset_s: float | None = None  # measured at the checkout
    lend_request_id: int | None = None
    lend_request_state: str | None = None  # of the lend request behind a lend entry
    task_start: datetime | None = None  # the enforcement task's planned or reported start and end
    task_end: datetime | None = None

    def ref(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "kind": self.kind,
            "officer_no": self.officer_no,
            "checked_out_at": iso(self.start),
            "expected_return_at": iso(self.expected_return_at),
            "returned_at": iso(self.returned_at),
            "return_entry_id": self.return_entry_id,
            "enforcement_matter": self.enforcement_matter,
            "case_number": self.case_number,
            "task_start": iso(self.task_start),
            "task_end": iso(self.task_end),
        }


@dataclass(frozen=True)
class Return:
    """A return entry (the officer was back at the unit then)."""

    entry_id: int
    at: datetime


@dataclass(frozen=True)
class Dock:
    transfer_id: str
    docked_at: datetime
    unit_id: int | None = None
    officer_no: str | None = None
    clock_offset_s: float | None = None
    station_id: int | None = None


@dataclass(frozen=True)
class Mismatch:
    """A dock by an officer who did not hold the device (noted by the ledger at the dock)."""

    transfer_id: str
    docked_at: datetime
    docked_officer_no: str | None
    holder_entry_id: int | None
    holder_officer_no: str | None
    reason: str


@dataclass(frozen=True)
class Vanished:
    path: str
    size: int
    last_seen_transfer_id: str
    noticed_transfer_id: str
    noticed_at: datetime
    last_seen_at: datetime | None = None


@dataclass(frozen=True)
class Incident:
    incident_id: int
    kind: str
    at: datetime
    recording_id: int | None
    transfer_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceFacts:
    """Everything known about one device's custody, for the device rules."""

    serial: str
    unit_id: int | None
    family: str | None = None
    segments: Sequence[Segment] = ()
    hand_outs: Sequence[HandOut] = ()
    returns: Sequence[Return] = ()
    docks: Sequence[Dock] = ()
    mismatches: Sequence[Mismatch] = ()
    vanished: Sequence[Vanished] = ()
    incidents: Sequence[Incident] = ()
    known_paths: frozenset[str] = frozenset()  # files the device holds but never offered (rejected)
    family_profile: Mapping[str, str] = field(default_factory=dict)  # learnt from the family's devices


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules use; from Settings (``from_settings``), never from code."""

    transfer_hours: float = 24.0
    field_grace_hours: float = 0.0  # added to the fallback deadline when no return is known
    overdue_grace_hours: float = 2.0
    min_recorded_ratio: float = 0.5
    link_tolerance_s: float = 300.0  # how far outside a checkout a recording may start and still be in it
    clock_tolerance_s: float = 5.0  # "calibrated" means seconds
    session_join_s: float = 3.0  # a segment following another within this is the same session
    session_max_gap_s: float = 900.0  # a longer pause after a full-length segment is a new session
    edit_time_tolerance_s: float = 10.0
    bitrate_factor: float = 4.0
    editor_encoders: str = (
        r"(?i)(^|\b)(lavf|lavc|handbrake|adobe|premiere|after effects|final cut|davinci|"
        r"avidemux|shotcut|kdenlive|movavi|camtasia|imovie|vegas|capcut|format factory)"
    )
    family_encoders: Mapping[str, str] = field(default_factory=dict)  # family → regex its firmware writes
    family_resolutions: Mapping[str, Sequence[str]] = field(default_factory=dict)  # family → ["1920x1080", …]
    bulk_download_threshold: int = 50
    access_exempt_roles: Sequence[str] = ()
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, s: Any) -> Thresholds:
        return cls(
            transfer_hours=s.compliance_transfer_hours,
            field_grace_hours=s.compliance_field_grace_hours,
            overdue_grace_hours=s.compliance_overdue_grace_hours,
            min_recorded_ratio=s.compliance_min_recorded_ratio,
            link_tolerance_s=s.case_link_tolerance_s,
            clock_tolerance_s=s.max_clock_offset_seconds,
            session_join_s=s.compliance_session_join_s,
            session_max_gap_s=s.compliance_session_max_gap_s,
            edit_time_tolerance_s=s.compliance_edit_time_tolerance_s,
            bitrate_factor=s.compliance_bitrate_factor,
            editor_encoders=s.compliance_editor_encoders,
            family_encoders=s.compliance_family_encoders,
            family_resolutions=s.compliance_family_resolutions,
            bulk_download_threshold=s.compliance_bulk_download_threshold,
            access_exempt_roles=tuple(s.compliance_access_exempt_roles),
            timezone=s.default_timezone,
        )


@dataclass(frozen=True)
class Finding:
    """A violation a rule found, with its evidence; ``key`` is its natural key (one flag per key)."""

    key: str
    kind: Kind
    at: datetime  # when it happened (the dashboard's month)
    evidence: Mapping[str, Any]
    unit_id: int | None = None
    device_serial: str | None = None
    officer_no: str | None = None
    user_id: int | None = None
    checkout_entry_id: int | None = None  # the checkout whose footage it concerns (the unit's rate)
