"""Replay a generated period through the server, each event at its own time, and score the flags.

The server's clock follows the scenario (``time_machine``): a checkout is written at the moment it
happened, a dock opens a transfer through the stations' own path at its time, a recording arrives
when it was verified. One full scan after the period's deadlines have passed; every flag is matched
against what was injected.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import select

from custodia_wire.documents import utc_iso
from custodia_wire.fingerprint import Fingerprint, of_bytes
from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.cases import service as cases
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.compliance.service import run_scan
from evidence_server.fixity.service import SweepReport, record_result
from evidence_server.ledger import docks as ledger_docks
from evidence_server.ledger import service as ledger
from evidence_server.ledger.rules import Condition
from evidence_server.media.probe import damaged_at_source, decoded_to_end, media_facts
from evidence_server.media.profile import profile_of
from evidence_server.recordings.models import Recording
from evidence_server.stations.models import Station
from evidence_server.transfers import service as transfers
from tests.compliance.conftest import GOOD, Site, make_site
from tests.evaluation.scenario import (
    ACCESS_KINDS,
    HANDLER,
    KINDS,
    OFFICER_NO,
    Access,
    Checkout,
    Scenario,
    fill_media,
    generate,
    media_templates,
)


@dataclass
class Row:
    kind: str
    injected: int
    flagged: int
    found: int  # injections matched by a flag
    correct: int  # flags that match an injection

    @property
    def recall(self) -> float | None:
        return self.found / self.injected if self.injected else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.flagged if self.flagged else None


def _events(scenario: Scenario) -> list[tuple[datetime, int, str, Any]]:
    order = {"checkout": 0, "return": 1, "dock": 2, "arrive": 3, "case": 4, "access": 5}
    out: list[tuple[datetime, int, str, Any]] = []
    for c in scenario.checkouts:
        if c.ledger:
            out.append((c.out_at, order["checkout"], "checkout", c))
            if c.back_at is not None:
                out.append((c.back_at, order["return"], "return", c))
        if c.dock_at is not None:
            out.append((c.dock_at, order["dock"], "dock", c))
        if c.arrive_at is not None and c.dock_at is not None:
            out.append((c.arrive_at, order["arrive"], "arrive", c))
    by_key = {c.key: c for c in scenario.checkouts}
    for number, keys in scenario.cases.items():
        arrived = [a for a in (by_key[k].arrive_at for k in keys) if a is not None]
        opened = max(arrived) + timedelta(hours=2)
        out.append((opened, order["case"], "case", (number, keys)))
    for a in scenario.accesses:
        out.append((a.at, order["access"], "access", a))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


@dataclass
class Replayed:
    entries: dict[str, int] = field(default_factory=dict)  # checkout key → its checkout entry
    docks: dict[str, str] = field(default_factory=dict)  # checkout key → transfer id
    recordings: dict[str, int] = field(default_factory=dict)  # device path → recording id
    cases: dict[str, int] = field(default_factory=dict)  # case number → case id


def replay(site: Site, scenario: Scenario, damage: dict[str, dict[str, Any]]) -> Replayed:
    """Write the period into the server, each event at its own time."""
    for serial, family in scenario.devices.items():
        site.register(serial, family=family)
    done = Replayed()
    for at, _, what, obj in _events(scenario):
        with time_machine.travel(at, tick=False), site.session() as s:
            if what == "checkout":
                done.entries[obj.key] = _checkout(s, site, obj)
            elif what == "return":
                ledger.return_device(s, site.ctx("devadmin1"), serial=obj.serial, condition=Condition.good)
                s.commit()
            elif what == "dock":
                done.docks[obj.key] = _dock(s, site, scenario, obj, at)
            elif what == "arrive":
                family = scenario.devices[obj.serial]
                done.recordings.update(_arrive(s, done.docks[obj.key], obj, at, damage[family]))
            elif what == "case":
                done.cases[obj[0]] = _case(s, site, scenario, obj[0], obj[1], done)
            else:
                _access(s, site, obj, done)
    return done


def _checkout(s: Any, site: Site, c: Checkout) -> int:
    assert c.task is not None
    entry = ledger.checkout(
        s,
        site.ctx("devadmin1"),
        serial=c.serial,
        officer_id=site.users[c.officer],
        readings={**GOOD, "clock_offset_s": c.clock_offset_s},
        override_reason="时钟待校准" if abs(c.clock_offset_s) > site.settings.max_clock_offset_seconds else None,
        task=ledger.Task("食品安全检查", c.expected_at, None, None, c.task[0], c.task[1]),
    )
    s.commit()
    return int(entry.id)


def _case(s: Any, site: Site, scenario: Scenario, number: str, keys: list[str], done: Replayed) -> int:
    """The case handler opens the inspection's case and links its footage."""
    handler = s.get(User, site.users[HANDLER])
    case = cases.create_case(
        s,
        handler,
        number=number,
        fields=cases.CaseFields(name=f"食品安全检查 {number}", enforcement_matter="食品安全检查"),
        pattern=site.settings.case_number_pattern,
    )
    for c in scenario.checkouts:
        if c.key in keys:
            for f in c.files:
                if f.path in done.recordings:
                    rec = s.get(Recording, done.recordings[f.path])
                    cases.link(s, handler, case, rec, origin="manual", reason="检查现场录像")
    s.commit()
    return int(case.id)


def _access(s: Any, site: Site, a: Access, done: Replayed) -> None:
    """What the server audits when someone downloads a recording or exports a case."""
    user = s.get(User, site.users[a.user])
    for path in a.paths:
        audit(s, "recording.download", actor=user, object_type="recording", object_id=done.recordings[path])
    if a.export_case is not None:
        case_id = done.cases[a.export_case]
        ids = [link.recording_id for link in cases.links_of_case(s, case_id)]
        audit(s, "case.export", actor=user, object_type="case", object_id=case_id, details={"recordings": ids})
    s.commit()


def _rot(site: Site, scenario: Scenario, done: Replayed) -> None:
    """A fixity sweep reads other bytes back for the files whose stored copy rotted."""
    report = SweepReport()
    with site.session() as s:
        for c in scenario.checkouts:
            for f in c.files:
                if f.rots and f.path in done.recordings:
                    other = of_bytes(f.path.encode())
                    read_back = Fingerprint(blake3=other.blake3, sha256=other.sha256, size=f.size)
                    record_result(s, done.recordings[f.path], read_back, report)
        s.commit()


def _dock(s: Any, site: Site, scenario: Scenario, c: Checkout, at: datetime) -> str:
    tid = str(uuid.uuid4())
    payload = {
        "transfer_id": tid,
        "device": {"serial": c.serial, "family": scenario.devices[c.serial]},
        "officer": {"number": OFFICER_NO[c.docked_by or c.officer] if c.ledger else None},
        "docked_at": utc_iso(at),
        "device_status": {"read_at": utc_iso(at), "clock": utc_iso(at + timedelta(seconds=c.dock_offset_s))},
        "index": [
            {
                "path": f.path,
                "size": f.size,
                "started_at": utc_iso(f.start),
                "mtime": utc_iso(f.start + timedelta(seconds=f.seconds)),
            }
            for f in c.files
            if f.on_index
        ],
    }
    station = s.get(Station, site.station_id)
    opened = transfers.open_transfer(s, station, payload)
    ledger_docks.on_dock(s, opened.transfer)
    s.commit()
    return tid


def _arrive(s: Any, tid: str, c: Checkout, at: datetime, damage: dict[str, Any]) -> dict[str, int]:
    """The server verifies the dock's files; a file cut short on the recorder is found so by the decoder."""
    from evidence_server.transfers.models import Transfer

    t = s.get(Transfer, tid)
    added: dict[str, Recording] = {}
    for f in c.files:
        if not f.arrives:
            continue
        facts = media_facts(f.probe)
        end = f.start + timedelta(seconds=facts["duration_s"] or f.seconds)
        created = facts["container_created_at"]
        rec = added[f.path] = Recording(
            blake3=f"blake3:{uuid.uuid4().hex}",
            sha256=f"sha256:{uuid.uuid4().hex}",
            size=f.size,
            storage_key=uuid.uuid4().hex,
            unit_id=t.unit_id,
            station_id=t.station_id,
            transfer_id=t.id,
            device_serial=t.device_serial,
            officer_no=t.officer_no,
            original_path=f.path,
            original_name=f.path.rsplit("/", 1)[-1],
            name_started_at=f.start,
            name_ended_at=end,
            container_started_at=created,
            container_ended_at=created + (end - f.start) if created else None,
            probe_state="done",
            probe=f.probe,
            media_profile=profile_of(f.probe, f.path),
            docked_at=t.docked_at,
            uploaded_at=at,
            verified_at=at,
            **facts,
        )
        s.add(rec)
    s.flush()
    for f in c.files:
        if f.damaged:
            damaged_at_source(s, added[f.path], damage)
    s.commit()
    return {path: rec.id for path, rec in added.items()}


def score(site: Site, scenario: Scenario, done: Replayed) -> list[Row]:
    with site.session() as s:
        flags = list(s.scalars(select(ComplianceFlag).where(ComplianceFlag.cleared_at.is_(None))))
    by_key = {c.key: c for c in scenario.checkouts}

    def named(flag: ComplianceFlag) -> str | None:
        ev = flag.evidence or {}
        return ev.get("path") or (ev.get("recording") or {}).get("path")

    def matches(flag: ComplianceFlag, inj: Any) -> bool:
        if flag.kind != inj.kind:
            return False
        if inj.kind in ACCESS_KINDS:
            return flag.user_id == site.users[inj.checkout] and (flag.evidence or {}).get("day") == inj.note
        if flag.device_serial != inj.serial:
            return False
        if inj.kind in ("suspected_edit", "vanished_file", "fixity_failure", "integrity_incident"):
            return named(flag) == inj.path
        if inj.kind == "dock_by_non_holder":
            return bool(flag.evidence.get("transfer_id") == done.docks.get(inj.checkout))
        if inj.kind == "used_outside_ledger":
            c = by_key[inj.checkout]
            return abs(flag.at - c.out_at) < timedelta(days=1)
        return flag.checkout_entry_id == done.entries.get(inj.checkout)

    rows = []
    kinds = list(KINDS) + sorted({f.kind for f in flags} - set(KINDS))
    for kind in kinds:
        injected = [i for i in scenario.injected if i.kind == kind]
        flagged = [f for f in flags if f.kind == kind]
        found = sum(1 for i in injected if any(matches(f, i) for f in flagged))
        correct = sum(1 for f in flagged if any(matches(f, i) for i in injected))
        rows.append(Row(kind, len(injected), len(flagged), found, correct))
    return rows


def damage_found(templates: dict[str, dict[str, Any]], ffprobe: str = "ffprobe") -> dict[str, dict[str, Any]]:
    """What the decoder finds in each family's file cut short (the server's own reading of such bytes)."""
    out = {}
    for family in scenario_families(templates):
        cut = templates[f"{family}/cut"]
        out[family] = decoded_to_end(cut["file"], cut["declared_s"], ffprobe)
        assert not out[family]["complete"], f"the cut {family} file decodes to its end: not a damaged file"
    return out


def scenario_families(templates: dict[str, dict[str, Any]]) -> list[str]:
    return [k for k in templates if "/" not in k]


def evaluate(database_url: str, work: Path, seed: int, **size: Any) -> tuple[list[Row], Scenario]:
    scenario = generate(seed, **size)
    templates = media_templates(work)
    fill_media(scenario, templates, seed)
    site, engine = make_site(database_url, work / f"site-{uuid.uuid4().hex[:8]}", compliance_min_recorded_ratio=0.5)
    try:
        done = replay(site, scenario, damage_found(templates))
        end = max(c.arrive_at or c.back_at or c.out_at for c in scenario.checkouts)
        end = max(end, *(a.at for a in scenario.accesses)) + timedelta(days=2)
        with time_machine.travel(end - timedelta(days=1), tick=False):
            _rot(site, scenario, done)
        with time_machine.travel(end, tick=False), site.session() as s:
            run_scan(s, site.settings, now=end)
        return score(site, scenario, done), scenario
    finally:
        engine.dispose()


def table(rows: list[Row]) -> str:
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    lines = [f"{'kind':<22}{'injected':>9}{'flagged':>9}{'found':>7}{'correct':>9}{'recall':>8}{'precision':>11}"]
    for r in rows:
        lines.append(
            f"{r.kind:<22}{r.injected:>9}{r.flagged:>9}{r.found:>7}{r.correct:>9}{pct(r.recall):>8}{pct(r.precision):>11}"
        )
    return "\n".join(lines)


def summary(scenario: Scenario) -> str:
    files = [f for c in scenario.checkouts for f in c.files]
    lengths = [(c.task[1] - c.task[0]).total_seconds() / 60 for c in scenario.checkouts if c.task]
    fams = Counter(scenario.devices.values())
    return (
        f"{len(scenario.devices)} recorders ({', '.join(f'{k}×{v}' for k, v in sorted(fams.items()))}), "
        f"{len(scenario.checkouts)} checkouts, {len(files)} segments, "
        f"inspections {min(lengths):.0f}-{max(lengths):.0f} min, "
        f"{len(scenario.injected)} violations injected"
    )
