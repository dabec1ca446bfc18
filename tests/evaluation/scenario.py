"""A period of operations for scoring the compliance rules, written apart from the product's simulator.

Recorders of several families (firmware-tagged H.265, libavformat-muxing H.264, a 5-minute
firmware), one enforcement inspection of 20-90 minutes per checkout, segments of the family's
length (5-15 minutes), docks and arrivals at their own times; violations of every device kind the
period can show are injected, each remembered with what a correct flag must name.

The media facts of each file are those ffprobe reports of a tiny real clip made by ffmpeg the way the
family's firmware (or a desktop editor) writes it, with the durations the scenario states. Pure
except ``media_templates`` (runs ffmpeg once per family and edit).
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

BJ = timezone(timedelta(hours=8))

#: family → (segment length in seconds, ffmpeg output options of its firmware, bytes per second)
FAMILIES: dict[str, tuple[int, list[str], int]] = {
    "HX": (600, [
        "-c:v", "libx265", "-x265-params", "log-level=error", "-c:a", "aac", "-ac", "1", "-ar", "16000",
        "-fflags", "+bitexact", "-metadata", "comment=HXFW 2.1.4", "-metadata:s:v", "encoder=HX HEVC",
        "-metadata:s:v", "handler_name=HX Video", "-video_track_timescale", "90000",
    ], 500_000),
    "LV": (900, ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2", "-ar", "48000"], 750_000),
    "ZF": (300, [
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-c:a", "aac", "-ac", "1",
        "-ar", "32000", "-fflags", "+bitexact", "-metadata:s:v", "handler_name=ZFY AVC",
        "-video_track_timescale", "30000",
    ], 600_000),
}  # fmt: skip

#: desktop edits (applied to the family's original clip) → ffmpeg options
EDITS: dict[str, list[str]] = {
    "trim": ["-t", "1", "-c", "copy"],
    "reencode": ["-c:v", "mpeg4", "-c:a", "copy"],
    "remux": ["-c", "copy", "-f", "mov"],
    "metadata": ["-c", "copy", "-map_metadata", "-1"],
    "concat": ["-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-c:a", "aac", "-ar", "44100"],
}

KINDS = (
    "late_transfer",
    "not_transferred",
    "device_overdue",
    "missing_recording",
    "short_recording",
    "segment_gap",
    "timeline_gap",
    "suspected_edit",
    "clock_off",
    "used_outside_ledger",
    "dock_by_non_holder",
    "vanished_file",
    "fixity_failure",
    "integrity_incident",
    "access_outside_cases",
    "bulk_download",
)
#: Kinds the period cannot show: the ledger refuses them outright (lending to another unit without an
#: approval: tests/ledger/test_api.py), so there is nothing to inject through it.
PREVENTED = ("unapproved_lending",)
#: Kinds about what people did with footage, judged per person and day (not per recorder).
ACCESS_KINDS = ("access_outside_cases", "bulk_download")


def media_templates(directory: Path) -> dict[str, dict[str, Any]]:
    """ffprobe's JSON of a 2-second clip per family, and per family and edit (``"HX/trim"``)."""
    cache = directory / "templates.json"
    if cache.exists():
        loaded: dict[str, dict[str, Any]] = json.loads(cache.read_text())
        return loaded
    out = {}
    for family, (_, options, _) in FAMILIES.items():
        original = directory / f"{family}.mp4"
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
            *options, "-metadata", "creation_time=2026-03-02T01:00:00Z", str(original),
        )  # fmt: skip
        out[family] = _probe(original)
        for edit, args in EDITS.items():
            edited = directory / f"{family}-{edit}.mp4"
            _ffmpeg("-i", str(original), *args, str(edited))
            out[f"{family}/{edit}"] = _probe(edited)
        # a recorder that lost power mid-write: its index (written first) states the whole length, the
        # file holds only the first part of the packets
        whole = directory / f"{family}-whole.mp4"
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=6",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
            *options, "-movflags", "+faststart", str(whole),
        )  # fmt: skip
        cut = directory / f"{family}-cut.mp4"
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) * 55 // 100])
        out[f"{family}/cut"] = {"file": str(cut), "declared_s": float(_probe(whole)["format"]["duration"])}
    cache.write_text(json.dumps(out))
    return out


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True)


def _probe(path: Path) -> dict[str, Any]:
    text = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, Any] = json.loads(text)
    return {"format": found["format"], "streams": found["streams"]}


def stated(template: dict[str, Any], seconds: float, created: datetime | None) -> dict[str, Any]:
    """The template with the scenario's duration and creation time (if the template has one)."""
    probe = copy.deepcopy(template)
    probe["format"]["duration"] = f"{seconds:.6f}"
    tags = probe["format"].get("tags") or {}
    if "creation_time" in tags and created is not None:
        tags["creation_time"] = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    for s in probe["streams"]:
        s["duration"] = f"{seconds:.6f}"
    return probe


@dataclass
class File:
    path: str
    size: int
    start: datetime  # device clock
    seconds: float
    probe: dict[str, Any]
    on_index: bool = True  # the device still held it at the dock
    arrives: bool = True  # the station transferred it
    damaged: bool = False  # cut short on the recorder (a power loss mid-write): does not decode to its end
    rots: bool = False  # its stored copy later reads back other bytes (a failing disk)


@dataclass
class Checkout:
    key: str
    serial: str
    officer: str
    out_at: datetime
    expected_at: datetime
    back_at: datetime | None
    task: tuple[datetime, datetime] | None
    clock_offset_s: float
    dock_at: datetime | None
    dock_offset_s: float
    arrive_at: datetime | None
    docked_by: str | None = None  # default: the holder
    files: list[File] = field(default_factory=list)
    ledger: bool = True  # False: the device was used without a checkout (no entries)


@dataclass
class Injected:
    kind: str
    serial: str
    checkout: str  # Checkout.key (for the access kinds: the user)
    path: str | None = None  # the file the flag must name
    note: str = ""  # the edit made; for the access kinds, the local day


@dataclass
class Access:
    """Someone takes footage out: one download per path, or a case's export."""

    at: datetime
    user: str
    paths: list[str] = field(default_factory=list)
    export_case: str | None = None


@dataclass
class Scenario:
    start: datetime
    end: datetime
    devices: dict[str, str]  # serial → family
    checkouts: list[Checkout]
    injected: list[Injected]
    cases: dict[str, list[str]] = field(default_factory=dict)  # case number → checkout keys
    accesses: list[Access] = field(default_factory=list)


OFFICERS = ("officer1", "officer2")
OFFICER_NO = {"officer1": "102345", "officer2": "102346"}
HANDLER = "handler"
BULK = 60  # downloads in one day by one person (a bulk copy; a day's own review is a handful)


def generate(seed: int, *, devices_per_family: int = 2, days: int = 6, per_kind: int = 2) -> Scenario:
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 0, 0, tzinfo=BJ)
    devices = {f"{fam}{i:02d}": fam for fam in FAMILIES for i in range(1, devices_per_family + 1)}
    plan: list[Checkout] = []
    seq = dict.fromkeys(devices, 0)
    for serial in devices:
        for day in range(days):
            if rng.random() < 0.15:
                continue  # a day the recorder stays in the cabinet
            morning = start + timedelta(days=day, hours=8, minutes=rng.randint(0, 60))
            inspect_at = morning + timedelta(minutes=rng.randint(30, 120))
            length = rng.randint(20, 90) * 60
            back = inspect_at + timedelta(seconds=length, minutes=rng.randint(30, 150))
            officer = rng.choice(OFFICERS)
            c = Checkout(
                key=f"{serial}/{day}",
                serial=serial,
                officer=officer,
                out_at=morning,
                expected_at=back + timedelta(hours=rng.randint(1, 3)),
                back_at=back,
                task=(inspect_at, inspect_at + timedelta(seconds=length)),
                clock_offset_s=round(rng.uniform(-2, 2), 1),
                dock_at=back + timedelta(minutes=rng.randint(2, 20)),
                dock_offset_s=round(rng.uniform(-2, 2), 1),
                arrive_at=None,
            )
            c.arrive_at = (c.dock_at or back) + timedelta(minutes=rng.randint(5, 30))
            plan.append(c)
    # the violations, each on its own checkout (a device's last one for "not transferred": its files
    # would otherwise be found by its next dock)
    last = {c.serial: c for c in plan}
    pool = [c for c in plan if last[c.serial] is not c]
    rng.shuffle(pool)
    injected: list[Injected] = []
    for kind in KINDS:
        if kind in ACCESS_KINDS:
            continue  # chosen once the files are known (``_accesses``)
        for n in range(per_kind if kind != "suspected_edit" else len(EDITS)):
            if kind == "not_transferred":
                candidates = [c for s, c in last.items() if not any(i.checkout == c.key for i in injected)]
                c = rng.choice(candidates)
            else:
                c = pool.pop()
            if kind == "late_transfer":  # not handed out again before that dock
                c.dock_at = (c.back_at or c.out_at) + timedelta(hours=rng.randint(26, 40))
                c.arrive_at = c.dock_at + timedelta(minutes=20)
                busy = c.dock_at + timedelta(hours=1)
                gone = {x.key for x in plan if x.serial == c.serial and c.out_at < x.out_at < busy}
                plan = [x for x in plan if x.key not in gone]
                pool = [x for x in pool if x.key not in gone]
                last = {x.serial: x for x in plan}
            injected.append(Injected(kind, c.serial, c.key, note=list(EDITS)[n] if kind == "suspected_edit" else ""))
    by_key = {c.key: c for c in plan}
    outside: list[Checkout] = []
    for inj in injected:
        c = by_key[inj.checkout]
        if inj.kind == "not_transferred":
            c.dock_at = c.arrive_at = None
        elif inj.kind == "device_overdue":
            c.back_at = c.expected_at + timedelta(hours=rng.randint(3, 6))
            c.dock_at = c.back_at + timedelta(minutes=10)
            c.arrive_at = c.dock_at + timedelta(minutes=10)
        elif inj.kind == "dock_by_non_holder":
            c.docked_by = next(o for o in OFFICERS if o != c.officer)
        elif inj.kind == "clock_off":
            if rng.random() < 0.5:
                c.clock_offset_s = rng.choice((-1, 1)) * rng.randint(20, 60)
                c.dock_offset_s = c.clock_offset_s
            else:
                c.dock_offset_s = rng.choice((-1, 1)) * rng.randint(20, 60)
        elif inj.kind == "used_outside_ledger":
            # the same recorder, recording on the evening after its return, with no checkout
            assert c.back_at is not None and c.dock_at is not None
            when = c.dock_at + timedelta(hours=rng.randint(3, 5))
            extra = Checkout(
                key=f"{c.key}/outside",
                serial=c.serial,
                officer=c.officer,
                out_at=when,
                expected_at=when,
                back_at=None,
                task=(when, when + timedelta(minutes=rng.randint(20, 40))),
                clock_offset_s=0,
                dock_at=when + timedelta(hours=1),
                dock_offset_s=0.5,
                arrive_at=when + timedelta(hours=1, minutes=10),
                ledger=False,
            )
            outside.append(extra)
            inj.checkout = extra.key
    plan += outside
    plan.sort(key=lambda c: c.out_at)
    kinds = {i.checkout: i for i in injected}
    # the files: each checkout's inspection in segments of the family's length
    for c in plan:
        family = devices[c.serial]
        seg_s, _, rate = FAMILIES[family]
        inj = kinds.get(c.key)
        assert c.task is not None
        t0, t1 = c.task
        total = (t1 - t0).total_seconds()
        if inj and inj.kind in ("segment_gap", "timeline_gap", "suspected_edit") and total < 3 * seg_s:
            total = 3 * seg_s + rng.randint(60, 300)  # long enough for a segment in the middle
            c.task = (t0, t0 + timedelta(seconds=total))
            assert c.back_at is not None
            c.back_at = max(c.back_at, c.task[1] + timedelta(minutes=30))
            c.expected_at = max(c.expected_at, c.back_at + timedelta(hours=1))
            if c.dock_at is not None:
                c.dock_at = c.back_at + timedelta(minutes=10)
                c.arrive_at = c.dock_at + timedelta(minutes=10)
        if inj and inj.kind == "missing_recording":
            continue
        if inj and inj.kind == "short_recording":
            total = total * rng.uniform(0.1, 0.3)
        offset = timedelta(seconds=c.clock_offset_s if abs(c.clock_offset_s) > 5 else 0)
        at, left = t0, total
        while left > 1:
            seconds = float(min(seg_s, left))
            seq[c.serial] += 1
            device_at = (at + offset).astimezone(BJ)
            name = f"{c.serial}_{OFFICER_NO[c.officer]}_{device_at:%Y%m%d%H%M%S}_{seq[c.serial]:04d}.MP4"
            path = f"DCIM/{device_at:%Y%m%d}/{name}"
            c.files.append(File(path, int(seconds * rate * rng.uniform(0.95, 1.05)), device_at, seconds, {}))
            at += timedelta(seconds=seconds)
            left -= seconds
            if inj and inj.kind == "timeline_gap" and len(c.files) == 1:
                at += timedelta(seconds=rng.randint(120, 600))  # stopped and started again, numbers intact
        if inj and inj.kind == "segment_gap":
            middle = c.files[len(c.files) // 2]
            middle.on_index = middle.arrives = False
        if inj and inj.kind == "suspected_edit":
            inj.path = c.files[len(c.files) // 2 - 1 if len(c.files) > 2 else 0].path
        if inj and inj.kind in ("vanished_file", "fixity_failure", "integrity_incident"):
            f = c.files[-1] if inj.kind == "vanished_file" else rng.choice(c.files)
            inj.path = f.path
            if inj.kind == "vanished_file":  # listed at its dock, never sent, wiped before the next dock
                f.arrives = False
            elif inj.kind == "fixity_failure":
                f.rots = True
            else:
                f.damaged = True
    scenario = Scenario(start, start + timedelta(days=days), devices, plan, injected)
    _cases(scenario, rng)
    _accesses(scenario, rng, per_kind)
    return scenario


def _arrived(scenario: Scenario) -> list[tuple[datetime, str, File]]:
    """(arrival, holder, file) of every file that reached the server."""
    return [
        (c.arrive_at, c.docked_by or c.officer, f)  # the footage is the docking officer's
        for c in scenario.checkouts
        if c.arrive_at is not None and c.ledger
        for f in c.files
        if f.arrives
    ]


def _cases(scenario: Scenario, rng: random.Random) -> None:
    """About a third of the inspections become cases, numbered as the bureau numbers them."""
    n = 0
    for c in scenario.checkouts:
        if c.ledger and c.arrive_at is not None and c.files and rng.random() < 0.35:
            n += 1
            scenario.cases[f"京朝市监处罚〔2026〕{1000 + n}号"] = [c.key]


def _accesses(scenario: Scenario, rng: random.Random, per_kind: int) -> None:
    """A period's downloads and exports: officers fetch some of their own footage, the case handler works
    on cases; injected: a download outside one's own footage and cases, and a bulk download."""
    arrived = _arrived(scenario)
    in_case = {f.path for keys in scenario.cases.values() for c in scenario.checkouts if c.key in keys for f in c.files}
    days = (scenario.end - scenario.start).days
    for day in range(1, days + 2):
        at = scenario.start + timedelta(days=day, hours=rng.randint(16, 20), minutes=rng.randint(0, 59))
        for officer in OFFICERS:
            own = [f.path for t, o, f in arrived if o == officer and t < at]
            if own and rng.random() < 0.4:
                scenario.accesses.append(Access(at, officer, rng.sample(own, min(len(own), rng.randint(1, 3)))))
    for number, keys in scenario.cases.items():  # each case: its footage looked at, then exported once
        paths = [f.path for c in scenario.checkouts if c.key in keys for f in c.files if f.arrives]
        done = max(c.arrive_at for c in scenario.checkouts if c.key in keys and c.arrive_at)
        look = done + timedelta(days=rng.randint(1, 3), hours=rng.randint(2, 6))
        scenario.accesses.append(Access(look, HANDLER, rng.sample(paths, min(len(paths), 2))))
        scenario.accesses.append(Access(look + timedelta(days=rng.randint(0, 3), hours=1), HANDLER, export_case=number))
    late = scenario.end + timedelta(days=1)
    for n in range(per_kind):
        user = (HANDLER, *OFFICERS)[n % 3]
        day = days + 2 + n
        at = scenario.start + timedelta(days=day, hours=11)
        others = [f.path for t, o, f in arrived if f.path not in in_case and o != user and t < late]
        scenario.accesses.append(Access(at, user, [rng.choice(others)]))
        scenario.injected.append(Injected("access_outside_cases", "", user, note=at.astimezone(BJ).date().isoformat()))
    for n in range(per_kind):
        user = OFFICERS[n % 2]
        day = days + 2 + per_kind + n
        at = scenario.start + timedelta(days=day, hours=9)
        own = [f.path for t, o, f in arrived if o == user]
        scenario.accesses.append(Access(at, user, [rng.choice(own) for _ in range(BULK)]))
        scenario.injected.append(Injected("bulk_download", "", user, note=at.astimezone(BJ).date().isoformat()))
    scenario.accesses.sort(key=lambda a: a.at)


def fill_media(scenario: Scenario, templates: dict[str, dict[str, Any]], seed: int) -> None:
    """Each file's probe: its family's original, or the desktop edit injected on it."""
    rng = random.Random(seed + 1)
    edits = {i.path: i.note for i in scenario.injected if i.kind == "suspected_edit"}
    for c in scenario.checkouts:
        family = scenario.devices[c.serial]
        for f in c.files:
            edit = edits.get(f.path)
            seconds = f.seconds
            if edit == "trim":
                seconds -= rng.randint(1, 30)
            template = templates[f"{family}/{edit}"] if edit else templates[family]
            f.probe = stated(template, seconds, f.start)
            if edit:
                f.size = int(f.size * seconds / f.seconds)
                f.seconds = seconds
