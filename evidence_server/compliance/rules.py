"""The device rules as pure functions over ``DeviceFacts``: each returns the ``Finding``s it sees.

Numbers refer to the rules of the compliance issue: 1-2 the 24-hour transfer rule, 3 overdue
devices, 4 missing or short footage, 5 gaps and deleted segments, 6 signs of editing and failed
fingerprints, 7 uncalibrated clocks, 8 use outside the ledger. Rule 9 (access) is in ``access``.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from evidence_server.compliance.facts import (
    DeviceFacts,
    Dock,
    Finding,
    HandOut,
    Kind,
    Segment,
    Thresholds,
    iso,
    sequence_of,
)
from evidence_server.compliance.profile import departures, learn

MAX_LISTED = 50  # recordings listed in one flag's evidence; the count says how many there were


def file_key(path: str, size: int) -> str:
    """A short stable name for a file of a device (natural keys stay short whatever the path)."""
    return hashlib.sha256(f"{path}\0{size}".encode()).hexdigest()[:16]


@lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


@lru_cache(maxsize=4096)
def _edited_by_tool(pattern: str, encoder: str) -> bool:
    """Most recordings of a fleet share a handful of encoder tags: match each tag once."""
    return _pattern(pattern).search(encoder) is not None


class Windows:
    """The device's checkouts, to ask which one a moment falls in (widened by a tolerance)."""

    def __init__(self, hand_outs: Iterable[HandOut], tolerance: timedelta) -> None:
        self.items = sorted(hand_outs, key=lambda h: h.start)
        self.opens = [h.start - tolerance for h in self.items]
        self.closes = [h.returned_at + tolerance if h.returned_at is not None else None for h in self.items]
        self.tolerance = tolerance

    def before(self, moment: datetime) -> HandOut | None:
        """The last checkout that began before ``moment`` (the one a dock after its return brings in)."""
        i = bisect_right([h.start for h in self.items], moment)
        return self.items[i - 1] if i else None

    def at(self, moment: datetime | None) -> HandOut | None:
        """The checkout whose widened window holds ``moment`` (the nearest if two do)."""
        if moment is None:
            return None
        i = bisect_right(self.opens, moment)
        best, best_distance = None, None
        for k in range(i - 1, max(-1, i - 4), -1):
            close = self.closes[k]
            if close is not None and moment > close:
                continue
            h = self.items[k]
            if moment < h.start:
                distance = h.start - moment
            elif h.returned_at is not None and moment > h.returned_at:
                distance = moment - h.returned_at
            else:
                return h  # inside the window itself
            if best_distance is None or distance < best_distance:
                best, best_distance = h, distance
        return best


def _finding(
    facts: DeviceFacts,
    key: str,
    kind: Kind,
    at: datetime,
    evidence: dict[str, Any],
    *,
    officer_no: str | None = None,
    hand_out: HandOut | None = None,
) -> Finding:
    return Finding(
        key=key,
        kind=kind,
        at=at,
        evidence=evidence,
        unit_id=facts.unit_id,
        device_serial=facts.serial,
        officer_no=(hand_out.officer_no if hand_out else None) or officer_no,
        checkout_entry_id=hand_out.entry_id if hand_out else None,
    )


def _listed(segments: Sequence[Segment]) -> dict[str, Any]:
    return {"recordings": [s.ref() for s in segments[:MAX_LISTED]], "recording_count": len(segments)}


# --- 1, 2: the 24-hour rule ------------------------------------------------------------------------


class Backs:
    """When the officer was back at the unit after a moment: the earlier of the first return entry and
    the first dock at or after it (sorted once per device, asked once per file)."""

    def __init__(self, facts: DeviceFacts) -> None:
        self.returns = sorted((r.at, r.entry_id) for r in facts.returns)
        self.return_at = [r[0] for r in self.returns]
        self.docks = sorted((d.docked_at, d.transfer_id) for d in facts.docks)
        self.dock_at = [d[0] for d in self.docks]

    def after(self, moment: datetime) -> tuple[datetime, str, Any] | None:
        """(time, "return" | "dock", entry id | transfer id), or None when neither came after."""
        i = bisect_left(self.return_at, moment)
        j = bisect_left(self.dock_at, moment)
        ret = self.returns[i] if i < len(self.returns) else None
        dock = self.docks[j] if j < len(self.docks) else None
        if ret is not None and (dock is None or ret[0] <= dock[0]):
            return ret[0], "return", ret[1]
        return (dock[0], "dock", dock[1]) if dock is not None else None


Back = tuple[datetime, str, Any]


def transfer_deadline(backs: Backs, seg: Segment, th: Thresholds) -> tuple[datetime, Back | None] | None:
    """The deadline of one file (R5, "the 24-hour rule, precisely") and the return it counts from."""
    made = seg.true_end or seg.true_start or seg.seen_at
    if made is None:
        return None
    back = backs.after(made)
    if back is None:  # no return known: the recording's own end plus the limit and the field grace
        return made + timedelta(hours=th.transfer_hours + th.field_grace_hours), None
    return back[0] + timedelta(hours=th.transfer_hours), back


def _deadline_evidence(seg: Segment, deadline: datetime, back: Back | None, th: Thresholds) -> dict[str, Any]:
    if back is None:
        how: dict[str, Any] = {"back_at": None, "back_by": "recording_end"}
    else:
        how = {
            "back_at": iso(back[0]),
            "back_by": back[1],
            ("return_entry_id" if back[1] == "return" else "back_transfer_id"): back[2],
        }
    return {
        "recording": seg.ref(),
        **how,
        "deadline": iso(deadline),
        "limit_hours": th.transfer_hours,
        "seen_at": iso(seg.seen_at),
        "seen_transfer_id": seg.seen_transfer_id,
    }


def transfer_findings(
    facts: DeviceFacts,
    windows: Windows,
    th: Thresholds,
    now: datetime,
    claimed: set[tuple[str, int]] | frozenset[tuple[str, int]] = frozenset(),
) -> list[Finding]:
    """1: transferred more than the limit after the return; 2: listed in an index, still not transferred
    after the limit (a file that vanished since is rule 5's, not this one's; a file listed as expected by
    its checkout's own *not transferred* flag is that flag's, in ``claimed``)."""
    gone = {(v.path, v.size) for v in facts.vanished} | set(claimed)
    backs = Backs(facts)
    limit = timedelta(hours=th.transfer_hours)
    out = []
    for seg in facts.segments:
        if seg.recording_id is None and (seg.path, seg.size) in gone:
            continue
        made = seg.true_end or seg.true_start or seg.seen_at
        if seg.transferred_at is not None and made is not None and seg.transferred_at <= made + limit:
            continue  # on time whatever the return: the officer cannot be back before the recording ended
        found = transfer_deadline(backs, seg, th)
        if found is None:
            continue
        deadline, back = found
        if seg.transferred_at is not None:
            if seg.transferred_at <= deadline:
                continue
            evidence = _deadline_evidence(seg, deadline, back, th)
            evidence["transferred_at"] = iso(seg.transferred_at)
            evidence["hours_late"] = round((seg.transferred_at - deadline).total_seconds() / 3600, 2)
            kind = Kind.late_transfer
        elif now > deadline:
            evidence, kind = _deadline_evidence(seg, deadline, back, th), Kind.not_transferred
        else:
            continue
        out.append(
            _finding(
                facts,
                f"deadline:{facts.serial}:{file_key(seg.path, seg.size)}",
                kind,
                deadline,
                evidence,
                officer_no=seg.officer_no,
                hand_out=windows.at(seg.true_start),
            )
        )
    return out


# --- 3: devices not returned in time ---------------------------------------------------------------


def overdue_findings(facts: DeviceFacts, th: Thresholds, now: datetime) -> list[Finding]:
    grace = timedelta(hours=th.overdue_grace_hours)
    out = []
    for h in facts.hand_outs:
        if h.expected_return_at is None:
            continue
        due = h.expected_return_at + grace
        late = h.returned_at > due if h.returned_at is not None else now > due
        if late:
            out.append(
                _finding(
                    facts,
                    f"overdue:{h.entry_id}",
                    Kind.device_overdue,
                    due,
                    {
                        "checkout": h.ref(),
                        "due": iso(due),
                        "grace_hours": th.overdue_grace_hours,
                        "still_out": h.returned_at is None,
                    },
                    hand_out=h,
                )
            )
    return out


# --- 4: missing or short footage ---------------------------------------------------------------------


def _timed(segments: Iterable[Segment]) -> tuple[list[Segment], list[datetime]]:
    """The segments with a known start, in order of it, and those starts."""
    pairs = sorted(((s.true_start, s) for s in segments if s.true_start is not None), key=lambda p: p[0])
    return [s for _, s in pairs], [t for t, _ in pairs]


def covered_seconds(spans: Iterable[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> float:
    """Seconds of [lo, hi] covered by the union of the spans."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in spans if b > lo and a < hi)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in clipped:
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += (cur_b - cur_a).total_seconds()
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += (cur_b - cur_a).total_seconds()
    return total


def _dock_ref(d: Dock | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"transfer_id": d.transfer_id, "docked_at": iso(d.docked_at), "officer_no": d.officer_no}


def missing_findings(
    facts: DeviceFacts, th: Thresholds, now: datetime, claimed: set[tuple[str, int]] | None = None
) -> list[Finding]:
    """4: a returned checkout with no footage; or footage much shorter than the task it was taken for.

    No footage and no dock between the return and its transfer deadline (the return plus the limit):
    *not transferred* at the deadline (it may have been recorded and never brought in), with the last
    dock before and the files an index listed for the window. No footage although the device docked in
    time: *missing recording*. Short footage is measured against the task's own start and end (from the
    checkout entry), never against how long the officer held the device; no task times, no such flag.
    """
    tol = timedelta(seconds=th.link_tolerance_s)
    limit = timedelta(hours=th.transfer_hours)
    timed, starts = _timed(s for s in facts.segments if s.recording_id is not None)
    listed, listed_starts = _timed(s for s in facts.segments if s.recording_id is None)
    docks = sorted(facts.docks, key=lambda d: d.docked_at)
    dock_times = [d.docked_at for d in docks]
    out = []
    for h in facts.hand_outs:
        end = h.returned_at
        if end is None:
            continue
        deadline = end + limit
        # docked once back (a dock just before the return entry counts): what it held then is what it had
        first = bisect_left(dock_times, max(h.start, end - tol))
        docked_in_time = first < len(docks) and docks[first].docked_at <= deadline
        if not docked_in_time and now <= deadline:
            continue
        lo, hi = bisect_left(starts, h.start - tol), bisect_right(starts, end + tol)
        inside = timed[lo:hi]
        base = {"checkout": h.ref(), "window_s": (end - h.start).total_seconds()}
        listed_inside = listed[bisect_left(listed_starts, h.start - tol) : bisect_right(listed_starts, end + tol)]
        if not inside:
            if docked_in_time and listed_inside:
                continue  # it held files for the task: each is judged by the 24-hour rule (1, 2)
            if docked_in_time:
                evidence = {**base, **_listed([]), "docked": _dock_ref(docks[first])}
                out.append(
                    _finding(facts, f"missing:{h.entry_id}", Kind.missing_recording, h.start, evidence, hand_out=h)
                )
                continue
            before = bisect_right(dock_times, deadline) - 1
            last = docks[before] if before >= 0 else None
            out.append(_not_transferred(facts, h, th, base, deadline, last, listed_inside, claimed))
            continue
        short = _short_of_task(facts, h, th, base, inside, starts[lo:hi])
        if short is not None:
            out.append(short)
    return out


def _not_transferred(
    facts: DeviceFacts,
    h: HandOut,
    th: Thresholds,
    base: dict[str, Any],
    deadline: datetime,
    last_dock: Dock | None,
    listed_inside: Sequence[Segment],
    claimed: set[tuple[str, int]] | None,
) -> Finding:
    """2: recorded (maybe) and never brought in by the deadline: the last dock before it, the files expected."""
    expected = [s for s in listed_inside if s.seen_at is None or s.seen_at <= deadline]
    if claimed is not None:
        claimed.update((s.path, s.size) for s in expected)
    evidence = {
        **base,
        "returned_at": iso(h.returned_at),
        "deadline": iso(deadline),
        "limit_hours": th.transfer_hours,
        "last_dock": _dock_ref(last_dock),
        "expected_files": [s.ref() for s in expected[:MAX_LISTED]],
        "expected_count": len(expected),
    }
    return _finding(facts, f"untransferred:{h.entry_id}", Kind.not_transferred, deadline, evidence, hand_out=h)


def _short_of_task(
    facts: DeviceFacts,
    h: HandOut,
    th: Thresholds,
    base: dict[str, Any],
    inside: Sequence[Segment],
    starts: Sequence[datetime],
) -> Finding | None:
    """4: footage much shorter than the task's own length; never judged without the task's times."""
    task_start, task_end = h.task_start, h.task_end
    if task_start is None or task_end is None or task_end <= task_start:
        return None
    tol = timedelta(seconds=th.link_tolerance_s)
    task_s = (task_end - task_start).total_seconds()
    spans = [(start, s.true_end or start) for s, start in zip(inside, starts, strict=True)]
    recorded = min(covered_seconds(spans, task_start - tol, task_end + tol), task_s)
    if recorded / task_s >= th.min_recorded_ratio:
        return None
    evidence = {
        **base,
        **_listed(inside),
        "task_start": iso(task_start),
        "task_end": iso(task_end),
        "task_s": task_s,
        "recorded_s": round(recorded, 1),
        "ratio": round(recorded / task_s, 4),
        "min_ratio": th.min_recorded_ratio,
    }
    return _finding(facts, f"missing:{h.entry_id}", Kind.short_recording, task_start, evidence, hand_out=h)


# --- 5: gaps and deleted segments ------------------------------------------------------------------


def full_length(segments: Iterable[Segment]) -> float | None:
    """The device's segment length: the commonest duration (whole seconds), if at least 3 segments have it."""
    counts = Counter(round(s.duration_s) for s in segments if s.duration_s)
    if not counts:
        return None
    length, n = counts.most_common(1)[0]
    return float(length) if n >= 3 and length > 0 else None


def _blame(
    a: Segment, b: Segment, first_missing: int, full: float | None, windows: Windows, join: float
) -> tuple[HandOut | None, datetime]:
    """The checkout a missing segment belongs to, and its expected start.

    A checkout lying between the two neighbours' own checkouts is the one that recorded it (the device
    records only when held). Otherwise its time is estimated from the neighbours: straight after ``a``
    if ``a`` ran its full length (the session went on), else counted back from ``b`` by the device's
    segment length (a new session that ``b`` continued)."""
    assert a.true_start is not None and b.true_start is not None
    a_end = a.true_end or a.true_start
    own = {id(windows.at(a.true_start)), id(windows.at(b.true_start))}
    between = [
        h
        for h in windows.items
        if id(h) not in own and h.start < b.true_start and (h.returned_at is None or h.returned_at > a_end)
    ]
    if between:
        h = between[0]
        return h, max(h.start, a_end)
    length = full or a.duration_s or 0.0
    if a.duration_s is not None and full is not None and a.duration_s >= full - join:
        expected = a_end + timedelta(seconds=length * (first_missing - (a.seq or 0) - 1))
    else:
        assert b.seq is not None
        expected = b.true_start - timedelta(seconds=length * (b.seq - first_missing))
        expected = max(expected, a_end)
    return windows.at(expected), expected


def gap_findings(facts: DeviceFacts, windows: Windows, th: Thresholds) -> list[Finding]:
    """A break in the segment numbers between two consecutive files; or, numbers intact, a break in the
    timeline of one session (a full-length segment not followed at once by the next) or an overlap."""
    timed = sorted((s for s in facts.segments if s.true_start is not None), key=lambda s: (s.true_start, s.seq or 0))
    known = {n for n in (sequence_of(p) for p in facts.known_paths) if n is not None}
    full = full_length(facts.segments)
    join = th.session_join_s
    out = []
    for a, b in zip(timed, timed[1:], strict=False):
        assert a.true_start is not None and b.true_start is not None
        pause = (b.true_start - (a.true_end or a.true_start)).total_seconds()
        kind, extra = None, {}
        if a.seq is not None and b.seq is not None and b.seq > a.seq + 1:
            missing = [n for n in range(a.seq + 1, b.seq) if n not in known]
            if missing:
                kind, extra = Kind.segment_gap, {"missing_seq": missing[:MAX_LISTED], "missing_count": len(missing)}
                blamed, expected = _blame(a, b, missing[0], full, windows, join)
                extra["expected_at"] = iso(expected)
                out.append(
                    _finding(
                        facts,
                        f"gap:{facts.serial}:{file_key(a.path, a.size)}",
                        kind,
                        expected,
                        {"before": a.ref(), "after": b.ref(), "pause_s": round(pause, 3), **extra},
                        officer_no=None if blamed else a.officer_no,
                        hand_out=blamed,
                    )
                )
                continue
        elif a.true_end is not None and pause < -join:
            kind, extra = Kind.timeline_gap, {"reason": "overlap"}
        elif (
            full is not None
            and a.duration_s is not None
            and a.duration_s >= full - join
            and join < pause <= th.session_max_gap_s
        ):
            kind, extra = Kind.timeline_gap, {"reason": "break", "segment_length_s": full}
        if kind is not None:
            evidence = {"before": a.ref(), "after": b.ref(), "pause_s": round(pause, 3), **extra}
            out.append(
                _finding(
                    facts,
                    f"gap:{facts.serial}:{file_key(a.path, a.size)}",
                    kind,
                    a.true_end or a.true_start,
                    evidence,
                    officer_no=a.officer_no,
                    hand_out=windows.at(a.true_start),
                )
            )
    return out


def vanished_findings(facts: DeviceFacts, windows: Windows) -> list[Finding]:
    """A file listed at an earlier dock, gone at a later one, never transferred."""
    by_file = {(s.path, s.size): s for s in facts.segments}
    out = []
    for v in facts.vanished:
        seg = by_file.get((v.path, v.size))
        if seg is not None and seg.recording_id is not None:
            continue  # it did arrive after all
        evidence = {
            "path": v.path,
            "size": v.size,
            "last_seen_transfer_id": v.last_seen_transfer_id,
            "last_seen_at": iso(v.last_seen_at),
            "noticed_transfer_id": v.noticed_transfer_id,
            "noticed_at": iso(v.noticed_at),
            "recording": seg.ref() if seg else None,
        }
        out.append(
            _finding(
                facts,
                f"vanished:{facts.serial}:{file_key(v.path, v.size)}",
                Kind.vanished_file,
                v.noticed_at,
                evidence,
                officer_no=seg.officer_no if seg else None,
                hand_out=windows.at(seg.true_start if seg else None),
            )
        )
    return out


# --- 6: signs of editing, failed fingerprints --------------------------------------------------------


def _bitrates(segments: Sequence[Segment]) -> dict[tuple[Any, ...], float]:
    """The median bitrate of the device's recordings of each codec and size (at least 4 of them)."""
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for s in segments:
        if s.duration_s and s.duration_s > 0 and s.size > 0:
            groups[(s.codec, s.width, s.height)].append(s.size * 8 / s.duration_s)
    return {k: statistics.median(v) for k, v in groups.items() if len(v) >= 4}


def edit_signs(
    seg: Segment,
    th: Thresholds,
    *,
    family: str | None,
    medians: dict[tuple[Any, ...], float],
    neighbours: tuple[Segment | None, Segment | None] = (None, None),
    from_name: bool = True,
    baseline: Mapping[str, str] | None = None,
    baseline_from: str | None = None,
    tags_are_honest: bool = False,
    full: float | None = None,
) -> list[dict[str, Any]]:
    """What about one recording's container says it was not written by the recorder as it is.

    With a ``baseline`` (the device's own profile, else its family's), every property that departs
    from it is listed. An editor's tag is a sign by itself only when there is no baseline, and never
    for a device whose every segment carries it (``tags_are_honest``: its firmware writes it)."""
    signs: list[dict[str, Any]] = []
    tol = timedelta(seconds=th.edit_time_tolerance_s)
    if baseline and seg.profile:
        differences = departures(seg.profile, baseline)
        if differences:
            signs.append({"sign": "profile", "profile_from": baseline_from, "differences": differences})
    elif seg.encoder and not tags_are_honest and _edited_by_tool(th.editor_encoders, seg.encoder):
        signs.append({"sign": "editor_encoder", "encoder": seg.encoder})
    after = neighbours[1]
    if (
        full is not None
        and seg.duration_s is not None
        and seg.duration_s < full - 0.5
        and after is not None
        and seg.seq is not None
        and after.seq == seg.seq + 1
        and seg.start is not None
        and after.start is not None
        and abs((after.start - seg.start).total_seconds() - full) <= th.session_join_s
    ):  # cut short, although the recorder went on straight into the next segment
        signs.append({"sign": "length", "expected_s": full, "found_s": seg.duration_s})
    expected = th.family_encoders.get(family or "")
    if expected and seg.encoder and not _pattern(expected).search(seg.encoder) and not signs:
        signs.append({"sign": "foreign_encoder", "encoder": seg.encoder, "expected": expected})
    created = seg.container_created_at
    if created is not None and seg.start is not None and from_name and abs(created - seg.start) > tol:
        signs.append({"sign": "creation_time_vs_name", "created": iso(created), "named": iso(seg.start)})
    if created is not None and not from_name:
        before, after = neighbours
        if (before is not None and before.start is not None and created < before.start - tol) or (
            after is not None and after.start is not None and created > after.start + tol
        ):
            signs.append({"sign": "creation_time_vs_neighbours", "created": iso(created)})
    median = medians.get((seg.codec, seg.width, seg.height))
    if median and seg.duration_s and seg.duration_s > 0:
        rate = seg.size * 8 / seg.duration_s
        if rate > median * th.bitrate_factor or rate < median / th.bitrate_factor:
            signs.append(
                {
                    "sign": "bitrate",
                    "bitrate": round(rate),
                    "device_median": round(median),
                    "duration_s": seg.duration_s,
                    "size": seg.size,
                }
            )
    allowed = th.family_resolutions.get(family or "")
    if allowed and seg.width and seg.height and f"{seg.width}x{seg.height}" not in allowed:
        signs.append({"sign": "resolution", "resolution": f"{seg.width}x{seg.height}", "allowed": list(allowed)})
    return signs


def edit_findings(facts: DeviceFacts, windows: Windows, th: Thresholds) -> list[Finding]:
    held = sorted(
        (s for s in facts.segments if s.recording_id is not None),
        key=lambda s: (s.start is None, s.start or s.container_created_at or s.transferred_at, s.path),
    )
    medians = _bitrates(held)
    own = learn(s.profile for s in held if s.profile)
    baseline, baseline_from = (own, "device") if own else (dict(facts.family_profile), "family")
    encoders = [s.encoder for s in held if s.encoder]
    honest = bool(encoders) and len(encoders) == len(held) and len(set(encoders)) == 1
    full = full_length(held)
    out = []
    for i, seg in enumerate(held):
        neighbours = (held[i - 1] if i else None, held[i + 1] if i + 1 < len(held) else None)
        signs = edit_signs(
            seg,
            th,
            family=seg.family or facts.family,
            medians=medians,
            neighbours=neighbours,
            from_name=seg.start_from_name,
            baseline=baseline or None,
            baseline_from=baseline_from if baseline else None,
            tags_are_honest=honest,
            full=full,
        )
        if signs:
            out.append(
                _finding(
                    facts,
                    f"edit:{seg.recording_id}",
                    Kind.suspected_edit,
                    seg.true_start or seg.transferred_at or seg.seen_at,  # type: ignore[arg-type]
                    {
                        "recording": seg.ref(),
                        "signs": signs,
                        "differences": [d for s in signs for d in s.get("differences", ())],
                        "encoder": seg.encoder,
                        "family": seg.family or facts.family,
                    },
                    officer_no=seg.officer_no,
                    hand_out=windows.at(seg.true_start),
                )
            )
    return out


def fixity_findings(facts: DeviceFacts, windows: Windows) -> list[Finding]:
    """A stored recording whose bytes no longer match its fingerprints (or are gone), and any other
    integrity incident about the device's transfers."""
    bad = {s.recording_id: s for s in facts.segments if s.fixity_state in ("failed", "missing")}
    out = []
    for rid, seg in bad.items():
        incidents = [
            {"incident_id": i.incident_id, "kind": i.kind, "at": iso(i.at)}
            for i in facts.incidents
            if i.recording_id == rid
        ]
        out.append(
            _finding(
                facts,
                f"fixity:{rid}",
                Kind.fixity_failure,
                seg.transferred_at or seg.true_start,  # type: ignore[arg-type]
                {"recording": seg.ref(), "fixity_state": seg.fixity_state, "incidents": incidents},
                officer_no=seg.officer_no,
                hand_out=windows.at(seg.true_start),
            )
        )
    by_id = {s.recording_id: s for s in facts.segments if s.recording_id is not None}
    for inc in facts.incidents:
        if inc.recording_id in bad:
            continue
        about = by_id.get(inc.recording_id) if inc.recording_id else None
        out.append(
            _finding(
                facts,
                f"incident:{inc.incident_id}",
                Kind.integrity_incident,
                inc.at,
                {
                    "incident_id": inc.incident_id,
                    "incident_kind": inc.kind,
                    "at": iso(inc.at),
                    "transfer_id": inc.transfer_id,
                    "recording": about.ref() if about else None,
                    "details": dict(inc.details),
                },
                officer_no=about.officer_no if about else None,
                hand_out=windows.at(about.true_start if about else None),
            )
        )
    return out


# --- 7: clocks -------------------------------------------------------------------------------------


def clock_findings(facts: DeviceFacts, windows: Windows, th: Thresholds) -> list[Finding]:
    out = []
    for h in facts.hand_outs:
        if h.clock_offset_s is not None and abs(h.clock_offset_s) > th.clock_tolerance_s:
            out.append(
                _finding(
                    facts,
                    f"clock:checkout:{h.entry_id}",
                    Kind.clock_off,
                    h.start,
                    {
                        "at": "checkout",
                        "checkout": h.ref(),
                        "clock_offset_s": h.clock_offset_s,
                        "tolerance_s": th.clock_tolerance_s,
                    },
                    hand_out=h,
                )
            )
    for d in facts.docks:
        if d.clock_offset_s is not None and abs(d.clock_offset_s) > th.clock_tolerance_s:
            out.append(
                _finding(
                    facts,
                    f"clock:dock:{d.transfer_id}",
                    Kind.clock_off,
                    d.docked_at,
                    {
                        "at": "dock",
                        "transfer_id": d.transfer_id,
                        "docked_at": iso(d.docked_at),
                        "clock_offset_s": d.clock_offset_s,
                        "tolerance_s": th.clock_tolerance_s,
                    },
                    officer_no=d.officer_no,
                    hand_out=windows.at(d.docked_at) or windows.before(d.docked_at),
                )
            )
    return out


# --- 8: use outside the ledger -------------------------------------------------------------------------


def outside_findings(facts: DeviceFacts, windows: Windows, th: Thresholds) -> list[Finding]:
    """Recordings made while the device was not checked out, one flag per device and local day."""
    tz = ZoneInfo(th.timezone)
    days: dict[str, list[Segment]] = defaultdict(list)
    for s in facts.segments:
        if s.true_start is not None and windows.at(s.true_start) is None:
            days[s.true_start.astimezone(tz).date().isoformat()].append(s)
    out = []
    for day, segs in sorted(days.items()):
        segs.sort(key=lambda s: s.true_start)  # type: ignore[arg-type,return-value]
        first = segs[0]
        out.append(
            _finding(
                facts,
                f"outside:{facts.serial}:{day}",
                Kind.used_outside_ledger,
                first.true_start,  # type: ignore[arg-type]
                {"day": day, **_listed(segs)},
                officer_no=first.officer_no,
            )
        )
    for m in facts.mismatches:
        out.append(
            _finding(
                facts,
                f"dock:{m.transfer_id}",
                Kind.dock_by_non_holder,
                m.docked_at,
                {
                    "transfer_id": m.transfer_id,
                    "docked_at": iso(m.docked_at),
                    "docked_officer_no": m.docked_officer_no,
                    "holder_entry_id": m.holder_entry_id,
                    "holder_officer_no": m.holder_officer_no,
                    "reason": m.reason,
                },
                officer_no=m.docked_officer_no,
            )
        )
    for h in facts.hand_outs:
        reason = None
        if h.kind == "lend" and h.lend_request_state != "approved":
            reason = "no_approval"
        elif h.kind == "checkout" and h.officer_unit_id is not None and h.officer_unit_id != h.unit_id:
            reason = "other_unit"
        if reason:
            out.append(
                _finding(
                    facts,
                    f"lend:{h.entry_id}",
                    Kind.unapproved_lending,
                    h.start,
                    {
                        "checkout": h.ref(),
                        "reason": reason,
                        "lend_request_id": h.lend_request_id,
                        "lend_request_state": h.lend_request_state,
                        "officer_unit_id": h.officer_unit_id,
                        "device_unit_id": h.unit_id,
                    },
                    hand_out=h,
                )
            )
    return out


# --- all of them ----------------------------------------------------------------------------------


def device_findings(facts: DeviceFacts, th: Thresholds, now: datetime) -> list[Finding]:
    """Every violation the device rules see in one device's facts at ``now``."""
    windows = Windows(facts.hand_outs, timedelta(seconds=th.link_tolerance_s))
    claimed: set[tuple[str, int]] = set()
    missing = missing_findings(facts, th, now, claimed)
    return [
        *transfer_findings(facts, windows, th, now, claimed),
        *overdue_findings(facts, th, now),
        *missing,
        *gap_findings(facts, windows, th),
        *vanished_findings(facts, windows),
        *edit_findings(facts, windows, th),
        *fixity_findings(facts, windows),
        *clock_findings(facts, windows, th),
        *outside_findings(facts, windows, th),
    ]
