"""Scans over a real database (SQLite and PostgreSQL): facts gathered in sets, flags kept per natural
key, idempotent, re-evaluated when later evidence arrives, cleared when it no longer holds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.compliance.models import ComplianceFlag, FlagEvent
from evidence_server.compliance.service import run_scan
from evidence_server.ledger import service as ledger
from evidence_server.ledger.models import LedgerEntry
from tests.compliance.conftest import BJ, Site, make_site, segment

MON = datetime(2026, 3, 2, 9, 0, tzinfo=BJ)
LATER = MON + timedelta(days=30)


def scan(site: Site, now: datetime = LATER, **kw: object) -> dict[str, int]:
    with site.session() as s:
        return dict(run_scan(s, site.settings, now=now, **kw).counts)  # type: ignore[arg-type]


def kinds(site: Site) -> list[tuple[str, str | None]]:
    return sorted((f.kind, f.device_serial) for f in site.flags(cleared_at=None))


def test_a_full_scan_flags_what_the_rules_find_and_a_second_changes_nothing(site: Site) -> None:
    site.register("D1")
    site.register("D2")
    site.checkout("D1", MON, MON + timedelta(minutes=20), expected=MON + timedelta(hours=2))
    files = [segment("D1", n, MON + timedelta(minutes=5 * (n - 1))) for n in (1, 2, 4)]  # 3 deleted
    tid = site.dock("D1", MON + timedelta(minutes=25), files)
    for f in files:
        site.arrive(tid, f, MON + timedelta(minutes=30))
    site.checkout(
        "D2", MON, None, officer="officer2", expected=MON + timedelta(hours=3), clock_offset_s=120.0
    )  # never returned, clock off at checkout
    first = scan(site)
    assert kinds(site) == [("clock_off", "D2"), ("device_overdue", "D2"), ("segment_gap", "D1")]
    assert first["raised"] == 3
    gap = site.flags(kind="segment_gap")[0]
    assert gap.evidence["missing_seq"] == [3] and gap.checkout_entry_id is not None and gap.officer_no == "102345"
    with site.session() as s:
        events = s.scalar(select(func.count()).select_from(FlagEvent))
    again = scan(site)
    assert again.get("raised", 0) == again.get("changed", 0) == again.get("cleared", 0) == 0
    with site.session() as s:
        assert s.scalar(select(func.count()).select_from(FlagEvent)) == events
        assert s.scalar(select(func.count()).select_from(ComplianceFlag)) == 3


def test_not_transferred_becomes_late_transfer_when_the_recording_arrives(site: Site) -> None:
    site.register("D1")
    site.checkout("D1", MON, MON + timedelta(hours=1))
    f = segment("D1", 1, MON + timedelta(minutes=10))
    tid = site.dock("D1", MON + timedelta(hours=1, minutes=5), [f])  # listed, but the upload never came
    scan(site, now=MON + timedelta(hours=24))  # within the 24 hours: nothing yet
    assert kinds(site) == []
    scan(site, now=MON + timedelta(hours=26))
    (flag,) = site.flags()
    assert flag.kind == "not_transferred"
    site.arrive(tid, f, MON + timedelta(hours=40))
    counts = scan(site, now=MON + timedelta(hours=41))
    (late,) = site.flags()
    assert (late.id, late.kind, counts.get("changed")) == (flag.id, "late_transfer", 1)
    assert late.evidence["hours_late"] == 15.0
    with site.session() as s:
        changed = s.scalar(select(FlagEvent).where(FlagEvent.flag_id == flag.id, FlagEvent.action == "changed"))
        assert changed is not None and changed.details == {"from": "not_transferred", "to": "late_transfer"}


def test_a_correction_in_the_ledger_clears_a_flag_it_disproves(site: Site) -> None:
    site.register("D1")
    entry = site.checkout("D1", MON, MON + timedelta(hours=7), expected=MON + timedelta(hours=4))
    site.dock("D1", MON + timedelta(hours=7, minutes=5), [])
    scan(site)
    assert [k for k, _ in kinds(site)] == ["device_overdue", "missing_recording"]
    with site.session() as s:
        back = s.scalars(select(LedgerEntry).where(LedgerEntry.refers_to_id == entry)).one()
        ledger.correct(
            s,
            site.ctx("devadmin1"),
            entry_id=back.id,
            reason="returned at 12:00, written late",
            changes={"occurred_at": (MON + timedelta(hours=3)).isoformat()},
        )
        s.commit()
    counts = scan(site)
    assert counts["cleared"] == 1 and [k for k, _ in kinds(site)] == ["missing_recording"]
    overdue = site.flags(kind="device_overdue")[0]
    assert overdue.cleared_at is not None and overdue.state == "open"


def test_a_device_scan_touches_only_that_device(site: Site) -> None:
    site.register("D1")
    site.register("D2")
    for serial in ("D1", "D2"):
        site.checkout(serial, MON, None, expected=MON + timedelta(hours=1))
    scan(site, scope="devices", serials=["D2"])
    assert kinds(site) == [("device_overdue", "D2")]


def test_unusual_access_from_the_audit_log(site: Site) -> None:
    site.register("D1")
    site.checkout("D1", MON, MON + timedelta(hours=1))
    f = segment("D1", 1, MON + timedelta(minutes=10))
    rid = site.arrive(site.dock("D1", MON + timedelta(hours=1, minutes=5), [f]), f, MON + timedelta(hours=2))
    with site.session() as s:
        handler = s.get(User, site.users["handler"])
        for _ in range(3):
            audit(s, "recording.download", actor=handler, object_type="recording", object_id=rid)
        s.commit()
    site.settings.compliance_bulk_download_threshold = 2
    scan(site, scope="access", user_ids=[site.users["handler"]])
    got = sorted((f.kind, f.user_id) for f in site.flags())
    assert got == [("access_outside_cases", site.users["handler"]), ("bulk_download", site.users["handler"])]
    assert scan(site, scope="access", user_ids=[site.users["handler"]]).get("raised", 0) == 0


def test_recordings_probed_before_profiles_existed_get_theirs_from_the_probe_they_hold(site: Site) -> None:
    """Migration 0016 added media profiles; older recordings have a probe but no profile, so their devices
    had no baseline. The periodic backfill fills them in from the stored probe, once."""
    from evidence_server.context import ServerContext
    from evidence_server.media.probe import backfill_profiles
    from evidence_server.media.profile import profile_of
    from evidence_server.recordings.models import Recording

    probe = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "tags": {"major_brand": "isom", "encoder": "Lavf60"}},
        "streams": [{"codec_type": "video", "codec_name": "h264", "profile": "Main", "r_frame_rate": "25/1"}],
    }
    site.register("DSJ0901")
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    tid = site.dock("DSJ0901", at, [segment("DSJ0901", 1, at)])
    old = site.arrive(tid, segment("DSJ0901", 1, at), at, probe=probe)
    ctx = ServerContext(site.settings)
    try:
        assert backfill_profiles(ctx) == 1
        assert backfill_profiles(ctx) == 0  # idempotent
        with site.session() as s:
            rec = s.get(Recording, old)
            assert rec is not None and rec.media_profile == profile_of(probe, rec.original_path)
            assert rec.media_profile["video_codec"] == "h264"
    finally:
        ctx.close()


def test_a_few_devices_with_long_histories_are_judged_in_worker_processes_with_the_same_findings(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's docks at 10M touch a few hundred devices with thousands of recordings each: the scan of them
    is split across worker processes. Whatever judges them, the flags are the same: the in-process scan
    after the parallel one changes nothing."""
    if not site.settings.database_url.startswith("postgresql"):
        pytest.skip("worker processes scan PostgreSQL only")
    from evidence_server.compliance import service

    serials = [f"H{n:02d}" for n in range(24)]
    for n, serial in enumerate(serials):
        site.register(serial)
        files = [segment(serial, k, MON + timedelta(minutes=5 * (k - 1))) for k in (1, 2, 4)]  # 3 deleted
        tid = site.dock(serial, MON + timedelta(minutes=25 + n), files)
        for f in files:
            site.arrive(tid, f, MON + timedelta(minutes=30 + n))
    used: list[int] = []
    real = service.scan_workers

    def counted(*a: object, **kw: object) -> int:
        used.append(real(*a, **kw))  # type: ignore[arg-type]
        return used[-1]

    monkeypatch.setattr(service, "PARALLEL_RECORDINGS", 50)  # 24 devices × 3 recordings: "long" here
    monkeypatch.setattr(service, "scan_workers", counted)
    with site.session() as s:
        result = service.scan_devices(s, site.settings.model_copy(update={"compliance_scan_workers": 2}), serials)
        s.commit()
    assert used == [2] and result.devices == 24
    flagged = kinds(site)
    assert flagged.count(("segment_gap", None)) == 0 and len(flagged) >= 24
    monkeypatch.setattr(service, "PARALLEL_RECORDINGS", 10**9)
    with site.session() as s:
        again = service.scan_devices(s, site.settings, serials)
        s.commit()
    assert used[-1] == 1
    assert again.counts.get("raised", 0) == again.counts.get("changed", 0) == again.counts.get("cleared", 0) == 0
    assert kinds(site) == flagged


def _sixty_flags_to_raise(site: Site) -> None:
    """30 devices never returned, their clocks off at checkout: two flags each."""
    for n in range(30):
        serial = f"D{n:02d}"
        site.register(serial)
        site.checkout(serial, MON, None, expected=MON + timedelta(hours=3), clock_offset_s=120.0)


def test_a_scan_that_raises_many_flags_refreshes_their_statistics_and_a_quiet_one_does_not(site: Site) -> None:
    """The dashboard's plans rest on the flags' statistics, and autovacuum may be off or behind (it is
    off on the CI machine's PostgreSQL): a scan that changed more than a tenth of the flags, and more
    than 50, analyses the table itself."""
    with site.session() as s:
        if s.get_bind().dialect.name != "postgresql":
            pytest.skip("ANALYZE and its statistics are PostgreSQL's")

    def analysed() -> tuple[Any, float]:
        with site.session() as s:  # a new transaction: no statistics snapshot kept from the last
            return s.execute(
                text(
                    "SELECT s.last_analyze, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                    "WHERE s.relname = 'compliance_flags'"
                )
            ).one()  # type: ignore[return-value]

    _sixty_flags_to_raise(site)
    assert analysed()[0] is None
    first = scan(site)
    assert first["raised"] == 60
    at, rows = analysed()
    assert at is not None and rows == 60  # the planner now knows 60 flags, not an empty table
    again = scan(site)
    assert again.get("raised", 0) == again.get("cleared", 0) == 0
    assert analysed() == (at, rows)  # nothing changed, nothing analysed


def test_statistics_that_cannot_be_taken_leave_the_scan_standing(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ANALYZE comes after the flags are committed: when it cannot run (here another session holds the
    table in a mode ANALYZE waits for, and this database gives up on a lock after 200 ms), the scan's
    findings stand and the log says why the statistics are old."""
    if not database_url.startswith("postgresql"):
        pytest.skip("ANALYZE and its locks are PostgreSQL's")
    import psycopg

    from tests.support.databases import _admin_conn

    name = database_url.rsplit("/", 1)[1]
    with _admin_conn() as admin:  # type: ignore[no-untyped-call]
        admin.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'")
    site, engine = make_site(database_url, tmp_path)
    try:
        _sixty_flags_to_raise(site)
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as holder:
            holder.execute("LOCK TABLE compliance_flags IN SHARE UPDATE EXCLUSIVE MODE")  # held to the end
            with caplog.at_level(logging.WARNING, logger="evidence_server.compliance.service"):
                first = scan(site)
            holder.rollback()
        assert first["raised"] == 60
        assert len(site.flags(cleared_at=None)) == 60  # committed, whatever the statistics did
        assert any("statistics were not refreshed" in r.getMessage() for r in caplog.records)
    finally:
        engine.dispose()
