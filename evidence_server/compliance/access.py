"""Rule 9, unusual access, as pure functions over audit entries: footage downloaded or exported outside
the user's own cases, and bulk downloads beyond a threshold. One flag per user and local day each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from evidence_server.compliance.facts import Finding, Kind, Thresholds, iso

#: The audit actions that hand footage out of the system (playback in the browser is not a copy).
ACCESS_ACTIONS = ("recording.download", "case.export")
MAX_LISTED = 50


@dataclass(frozen=True)
class AccessEvent:
    seq: int
    at: datetime
    user_id: int
    action: str  # recording.download | case.export
    recording_id: int | None = None
    case_id: int | None = None
    recordings: int = 1  # how many recordings left (an export holds many)


@dataclass(frozen=True)
class UserInfo:
    user_id: int
    unit_id: int
    role: str
    officer_no: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Holdings:
    """Who footage belongs to: the cases of each recording, each case's unit and its shares."""

    recording_cases: Mapping[int, frozenset[int]] = field(default_factory=dict)
    recording_officer: Mapping[int, str | None] = field(default_factory=dict)
    case_unit: Mapping[int, int] = field(default_factory=dict)
    case_shared_users: Mapping[int, frozenset[int]] = field(default_factory=dict)
    case_shared_units: Mapping[int, frozenset[int]] = field(default_factory=dict)


def own_case(user: UserInfo, case_id: int, h: Holdings) -> bool:
    """A case of the user's unit, or one shared with the user or their unit."""
    return (
        h.case_unit.get(case_id) == user.unit_id
        or user.user_id in h.case_shared_users.get(case_id, ())
        or user.unit_id in h.case_shared_units.get(case_id, ())
    )


def own_footage(user: UserInfo, event: AccessEvent, h: Holdings) -> bool:
    if event.case_id is not None:
        return own_case(user, event.case_id, h)
    rid = event.recording_id
    if rid is None:
        return True
    if user.officer_no and h.recording_officer.get(rid) == user.officer_no:
        return True  # the officer's own recording
    return any(own_case(user, c, h) for c in h.recording_cases.get(rid, ()))


def _event_ref(e: AccessEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": iso(e.at),
        "action": e.action,
        "recording_id": e.recording_id,
        "case_id": e.case_id,
        "recordings": e.recordings,
    }


def access_findings(
    events: Iterable[AccessEvent], users: Mapping[int, UserInfo], holdings: Holdings, th: Thresholds
) -> list[Finding]:
    tz = ZoneInfo(th.timezone)
    days: dict[tuple[int, str], list[AccessEvent]] = defaultdict(list)
    for e in events:
        user = users.get(e.user_id)
        if user is None or user.role in th.access_exempt_roles:
            continue
        days[(e.user_id, e.at.astimezone(tz).date().isoformat())].append(e)
    out = []
    for (user_id, day), evs in sorted(days.items()):
        user = users[user_id]
        evs.sort(key=lambda e: e.seq)
        base = {"user_id": user_id, "username": user.username, "role": user.role, "day": day}
        outside = [e for e in evs if not own_footage(user, e, holdings)]
        if outside:
            out.append(
                Finding(
                    key=f"access:{user_id}:{day}",
                    kind=Kind.access_outside_cases,
                    at=outside[0].at,
                    evidence={
                        **base,
                        "events": [_event_ref(e) for e in outside[:MAX_LISTED]],
                        "event_count": len(outside),
                    },
                    unit_id=user.unit_id,
                    officer_no=user.officer_no,
                    user_id=user_id,
                )
            )
        # a court package of one's own case is how footage is meant to leave (each is audited, signed and
        # handed over with a receipt): it does not count toward a bulk copy; downloads and others' cases do
        counted = [e for e in evs if not (e.action == "case.export" and own_footage(user, e, holdings))]
        total = sum(e.recordings for e in counted)
        if total > th.bulk_download_threshold:
            out.append(
                Finding(
                    key=f"bulk:{user_id}:{day}",
                    kind=Kind.bulk_download,
                    at=counted[0].at,
                    evidence={
                        **base,
                        "recordings": total,
                        "threshold": th.bulk_download_threshold,
                        "events": [_event_ref(e) for e in counted[:MAX_LISTED]],
                        "event_count": len(counted),
                    },
                    unit_id=user.unit_id,
                    officer_no=user.officer_no,
                    user_id=user_id,
                )
            )
    return out
