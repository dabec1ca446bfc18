"""Legal holds as pure data: which holds cover a recording. A held recording is never disposed of."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Target(enum.StrEnum):
    """What a hold is placed on."""

    case = "case"  # every recording linked to the case
    recording = "recording"
    officer = "officer"  # every recording of the officer (by officer number)
    device = "device"  # every recording of the device (by serial number)


@dataclass(frozen=True)
class Hold:
    hold_id: int
    target: Target
    value: str  # the case or recording id, the officer number or the device serial, as text


@dataclass(frozen=True)
class Subject:
    """What a hold can match on a recording."""

    recording_id: int
    officer_no: str | None
    device_serial: str
    case_ids: frozenset[int] = frozenset()


def covers(hold: Hold, subject: Subject) -> bool:
    if hold.target == Target.recording:
        return hold.value == str(subject.recording_id)
    if hold.target == Target.case:
        return hold.value in {str(c) for c in subject.case_ids}
    if hold.target == Target.officer:
        return subject.officer_no is not None and hold.value == subject.officer_no
    return hold.value == subject.device_serial


def holds_on(subject: Subject, holds: Iterable[Hold]) -> list[int]:
    """The ids of the holds that cover ``subject``, in order."""
    return sorted(h.hold_id for h in holds if covers(h, subject))
