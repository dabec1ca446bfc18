"""Evidence rows bound to the log (issue 14.3): an edited digest, size, ledger entry, case link, hold or
disposal approval is named by `custodia audit verify` (row, field and the entry that disagrees), with the
database's own guards in place and with them dropped; the fixity sweep never takes a forged row for the
truth. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from custodia_cli.main import cli
from evidence_server.binding.service import check_rows
from evidence_server.binding.tasks import check_rows_task
from evidence_server.fixity.service import sweep
from evidence_server.recordings.models import Recording
from evidence_server.uploads.models import IntegrityIncident
from tests.cases.conftest import GOOD, World, make_world

LONG_AGO = datetime.now(UTC) - timedelta(days=400)


@dataclass
class Site:
    world: World
    recording: int
    entry: int  # the checkout's ledger entry
    link: int
    hold: int
    disposal: int


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    """A device checked out, a recording linked to a case, a hold and a disposal request with one approval,
    all made through the API."""
    for w in make_world(tmp_path, database_url):
        now = datetime.now(UTC).replace(microsecond=0)
        dev = {"serial": "DSJ-B001", "model": "DSJ-V9", "family": "mass_storage"}
        assert w.post("devadmin1", "/api/v1/devices", {**dev, "occurred_at": (now - timedelta(days=1)).isoformat()})
        r = w.post(
            "devadmin1",
            "/api/v1/ledger/checkouts",
            {
                "serial": "DSJ-B001",
                "officer_id": w.users["officer1"],
                "enforcement_matter": "食品安全检查",
                "readings": GOOD,
                "expected_return_at": (now + timedelta(hours=3)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        rec = w.recording(b"evidence bytes " * 100, serial="DSJ-B001")
        case = w.open_case()
        link = w.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场检查"})
        assert link.status_code == 201, link.text
        hold = w.post(
            "handler", "/api/v1/retention/holds", {"target": "recording", "value": str(rec), "reason": "复议"}
        )
        assert hold.status_code == 201, hold.text
        old = w.recording(
            b"old footage", started_at=LONG_AGO, verified_at=LONG_AGO, uploaded_at=LONG_AGO, docked_at=LONG_AGO
        )
        from evidence_server.retention.tasks import retention_apply

        retention_apply(w.ctx)
        req = w.post("legal", "/api/v1/retention/disposals", {"recording_ids": [old], "reason": "期限届满"})
        assert req.status_code == 201, req.text
        assert w.post("legal", f"/api/v1/retention/disposals/{req.json()['id']}/approve", {"note": "核对"})
        yield Site(w, rec, r.json()["id"], link.json()["id"], hold.json()["id"], req.json()["id"])


def custodia(w: World, *args: str) -> Result:
    """The command line, on the world's database and data."""
    from evidence_server.config import get_settings

    env = {
        "CUSTODIA_DATA_DIR": str(w.settings.data_dir),
        "CUSTODIA_DATABASE_URL": w.settings.database_url,
        "CUSTODIA_ENVIRONMENT": "test",
    }
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args), env=env)
    finally:
        get_settings.cache_clear()


def audit_verify(w: World) -> Result:
    return custodia(w, "audit", "verify")


def edit(w: World, sql: str, *, drop_ledger_guard: bool = False) -> None:
    """Run SQL as the database owner would; optionally with the ledger's append-only triggers dropped."""
    sqlite = w.ctx.engine.dialect.name == "sqlite"
    with w.ctx.engine.begin() as conn:
        if drop_ledger_guard:
            if sqlite:
                for name in ("ledger_entries_no_update", "ledger_entries_no_delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
            else:
                conn.execute(text("DROP TRIGGER IF EXISTS ledger_entries_no_change ON ledger_entries"))
        conn.execute(text(sql))


def test_rows_made_through_the_services_agree_with_the_log(site: Site) -> None:
    out = audit_verify(site.world)
    assert out.exit_code == 0, out.output
    assert "OK       audit log intact" in out.output
    assert (
        "evidence rows agree with the log: 2 recordings, 2 ledger entries, 1 case links, 1 cases, 0 case shares, "
        "1 legal holds, 1 disposal requests, 2 transfers" in out.output
    )


@pytest.mark.parametrize(
    "sql, named",
    [
        (
            "UPDATE recordings SET sha256 = 'sha256:" + "0" * 64 + "' WHERE id = {recording}",
            "recordings {recording}: sha256 is 'sha256:000",
        ),
        ("UPDATE recordings SET size = 7 WHERE id = {recording}", "recordings {recording}: size is 7 in the row"),
        (
            "UPDATE recordings SET blake3 = 'blake3:" + "1" * 64 + "' WHERE id = {recording}",
            "recordings {recording}: blake3 is 'blake3:111",
        ),
        (
            "UPDATE recordings SET sm3 = '" + "2" * 64 + "' WHERE id = {recording}",
            "recordings {recording}: sm3 is '222",
        ),
        (
            "UPDATE recordings SET fixity_state = 'disposed' WHERE id = {recording}",
            "recordings {recording}: disposed is True in the row",
        ),
        (  # moved to another unit: out of its own unit's sight and into the other's
            "UPDATE recordings SET unit_id = (SELECT max(id) FROM units) WHERE id = {recording}",
            "recordings {recording}: unit_id is",
        ),
        ("UPDATE recordings SET officer_no = '999999' WHERE id = {recording}", "officer_no is '999999' in the row"),
        ("UPDATE recordings SET device_serial = 'DSJ-X' WHERE id = {recording}", "device_serial is 'DSJ-X' in the row"),
        (
            "UPDATE case_links SET unlinked_at = CURRENT_TIMESTAMP, unlink_reason = 'x' WHERE id = {link}",
            "case_links {link}: unlinked is True in the row",
        ),
        ("UPDATE case_links SET reason = '另一个理由' WHERE id = {link}", "case_links {link}: reason is '另一个理由'"),
        (
            "UPDATE legal_holds SET lifted_at = CURRENT_TIMESTAMP, lift_reason = 'quietly' WHERE id = {hold}",
            "legal_holds {hold}: lifted is True in the row",
        ),
        ("DELETE FROM legal_holds WHERE id = {hold}", "legal_holds {hold}: missing from the database"),
        (
            "INSERT INTO disposal_approvals (request_id, user_id, approved_at) "
            "SELECT {disposal}, id, CURRENT_TIMESTAMP FROM users WHERE username = 'admin'",
            "disposal_requests {disposal}: approvers is",
        ),
    ],
    ids=[
        "digest",
        "size",
        "blake3",
        "sm3",
        "disposed",
        "unit",
        "officer",
        "device",
        "link-unlinked",
        "link-reason",
        "hold-lifted",
        "hold-deleted",
        "forged-approval",
    ],
)
def test_an_edited_row_is_named_with_its_field_and_the_entry_that_disagrees(site: Site, sql: str, named: str) -> None:
    ids = vars(site)
    edit(site.world, sql.format(**ids))
    out = audit_verify(site.world)
    assert out.exit_code == 3, out.output  # the log itself is intact: the rows differ from it
    assert "OK       audit log intact" in out.output and "ALTERED" in out.output
    assert named.format(**ids) in out.output
    assert "log entry" in out.output


def test_a_block_map_root_made_by_the_backfill_is_bound_to_its_entry(site: Site) -> None:
    """A recording stored before block maps gets its map from the backfill, which logs the root
    (``recording.block_map``); reads are then checked against that root, so an edited root is named."""
    from evidence_server.custody.blockmaps import backfill

    w = site.world
    assert site.recording in backfill(w.ctx).made
    assert audit_verify(w).exit_code == 0
    edit(w, f"UPDATE recordings SET block_map_root = '{'3' * 64}' WHERE id = {site.recording}")  # noqa: S608
    out = audit_verify(w)
    assert out.exit_code == 3, out.output
    assert f"recordings {site.recording}: block_map_root is '333" in out.output
    assert "(recording.block_map) recorded" in out.output


@pytest.mark.parametrize(
    "sql, named",
    [
        ("UPDATE recordings SET important = false WHERE id = {recording}", "important is False in the row"),
        (
            "UPDATE recordings SET important_reviewed_at = CURRENT_TIMESTAMP WHERE id = {recording}",
            "important_reviewed is True in the row",
        ),
    ],
    ids=["mark-cleared", "review-made-up"],
)
def test_an_important_mark_cleared_or_reviewed_in_the_database_is_named(site: Site, sql: str, named: str) -> None:
    """A marked recording is kept until its mark is reviewed: clearing the mark, or making up its review,
    in the database would let it be disposed of sooner. The mark's changes are in the log; so either is named."""
    w = site.world
    r = w.post("legal", f"/api/v1/recordings/{site.recording}/important", {"action": "set", "reason": "复议"})
    assert r.status_code == 200, r.text
    assert audit_verify(w).exit_code == 0
    edit(w, sql.format(recording=site.recording))
    out = audit_verify(w)
    assert out.exit_code == 3, out.output
    assert f"recordings {site.recording}: {named}" in out.output
    assert "(recording.important_set) recorded" in out.output


def test_a_ledger_entry_is_refused_by_the_database_and_named_once_its_guard_is_dropped(site: Site) -> None:
    w, entry = site.world, site.entry
    with pytest.raises(DBAPIError, match="append-only"):
        edit(w, f"UPDATE ledger_entries SET officer_no = '999999' WHERE id = {entry}")  # noqa: S608
    assert audit_verify(w).exit_code == 0
    edit(w, f"UPDATE ledger_entries SET officer_no = '999999' WHERE id = {entry}", drop_ledger_guard=True)  # noqa: S608
    out = audit_verify(w)
    assert out.exit_code == 3
    assert f"ledger_entries {entry}: officer_no is '999999' in the row, but log entry" in out.output
    assert "(ledger.checkout) recorded '102345'" in out.output


def test_a_recording_inserted_behind_the_log_is_named(site: Site) -> None:
    w = site.world
    with w.session() as s:
        rec = s.get(Recording, site.recording)
        assert rec is not None
        values = {c.key: getattr(rec, c.key) for c in Recording.__table__.columns if c.key != "id"}
        values["blake3"] = "blake3:" + "1" * 64
        forged = Recording(**values)
        s.add(forged)
        s.commit()
        forged_id = forged.id
    out = audit_verify(w)
    assert out.exit_code == 3 and f"recordings {forged_id}: not in the log" in out.output


def test_the_fixity_sweep_checks_against_the_log_not_a_forged_row(site: Site) -> None:
    """Issue 14: the sweep took a forged row for the truth, called the intact original damaged, and the
    content route then answered 409. Now the row's forgery is reported and the original stays ok."""
    w = site.world
    edit(w, f"UPDATE recordings SET sha256 = 'sha256:{'0' * 64}' WHERE id = {site.recording}")  # noqa: S608
    report = sweep(w.ctx, files=10)
    assert site.recording in report.checked and site.recording not in report.failed
    assert report.rows_differ == [site.recording]
    with w.session() as s:
        assert s.get(Recording, site.recording).fixity_state == "ok"  # type: ignore[union-attr]
    assert w.get("handler", f"/api/v1/recordings/{site.recording}/content").status_code == 200


def test_the_periodic_check_raises_one_incident_per_finding(site: Site) -> None:
    w = site.world
    assert check_rows_task(w.ctx)["findings"] == 0
    edit(w, f"UPDATE recordings SET size = 7 WHERE id = {site.recording}")  # noqa: S608
    assert check_rows_task(w.ctx)["findings"] == 1
    assert check_rows_task(w.ctx)["findings"] == 1  # a second run raises no second incident
    with w.session() as s:
        incidents = s.query(IntegrityIncident).filter(IntegrityIncident.kind == "row_differs_from_log").all()
        assert len(incidents) == 1 and incidents[0].recording_id == site.recording
        assert check_rows(s).findings[0].field == "size"


def test_a_lawful_change_made_while_the_check_reads_is_not_taken_for_tampering(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hold is lifted (through the API, logged) after the check read the holds and before it read their
    entries: for that moment the row says "held" and the log says "lifted". That is no finding, and no
    incident; an edit made behind the log before the check began still is."""
    from evidence_server.binding import service

    w = site.world
    real = service._entries_about
    lifted: list[int] = []

    def entries_about(session, b, rows):  # type: ignore[no-untyped-def]
        if b.table == "legal_holds" and not lifted:
            r = w.post("legal", f"/api/v1/retention/holds/{site.hold}/lift", {"reason": "复议结束"})
            assert r.status_code == 200, r.text
            lifted.append(site.hold)
        return real(session, b, rows)

    edit(w, f"UPDATE recordings SET size = 7 WHERE id = {site.recording}")  # noqa: S608  (before the check)
    monkeypatch.setattr(service, "_entries_about", entries_about)
    result = check_rows_task(w.ctx)
    assert lifted == [site.hold]
    assert result["findings"] == 1, result
    with w.session() as s:
        incidents = s.query(IntegrityIncident).filter(IntegrityIncident.kind == "row_differs_from_log").all()
        assert [(i.recording_id, i.details["field"]) for i in incidents] == [(site.recording, "size")]
        assert check_rows(s).ok is False
    monkeypatch.undo()
    edit(w, f"UPDATE recordings SET size = {len(b'evidence bytes ' * 100)} WHERE id = {site.recording}")  # noqa: S608
    with w.session() as s:
        assert check_rows(s).ok  # the lifted hold agrees with its log once both are read


def test_a_verified_entry_that_named_no_owners_says_nothing_of_them(site: Site) -> None:
    """A recording verified before the entry named its unit, recorder and officer: its owners have nothing to
    be bound to, so the check of an older site raises nothing false over them; its digests stay bound."""
    from evidence_server.audit.service import record

    w = site.world
    with w.session() as s:
        rec = s.get_one(Recording, site.recording)
        values = {c.key: getattr(rec, c.key) for c in Recording.__table__.columns if c.key != "id"}
        values["blake3"], values["sha256"] = "blake3:" + "4" * 64, "sha256:" + "4" * 64
        old = Recording(**values)
        s.add(old)
        s.flush()
        details = {"path": old.original_path, "blake3": old.blake3, "sha256": old.sha256, "size": old.size}
        record(s, "recording.verified", object_type="recording", object_id=old.id, details=details)
        s.commit()
        old_id = old.id
    moved = "officer_no = '7', device_serial = 'DSJ-Z', unit_id = (SELECT max(id) FROM units)"
    edit(w, f"UPDATE recordings SET {moved} WHERE id = {old_id}")  # noqa: S608
    with w.session() as s:
        assert check_rows(s).findings == []
    edit(w, f"UPDATE recordings SET size = 7 WHERE id = {old_id}")  # noqa: S608
    with w.session() as s:
        assert [(f.row_id, f.field) for f in check_rows(s).findings] == [(old_id, "size")]


def test_a_repair_by_another_recorder_does_not_rebind_whose_the_recording_is(site: Site) -> None:
    """``recording.repaired`` names the recorder that docked the bytes again, which can be another than the
    recording's: logged after the verification, it still does not make the recording that recorder's."""
    from evidence_server.audit.service import record

    w = site.world
    with w.session() as s:
        rec = s.get_one(Recording, site.recording)
        details = {"previous_state": "damaged", "device_serial": "DSJ-OTHER", "path": rec.original_path}
        details |= {"blake3": rec.blake3, "sha256": rec.sha256, "size": rec.size, "transfer_id": rec.transfer_id}
        record(s, "recording.repaired", object_type="recording", object_id=rec.id, details=details)
        s.commit()
        assert check_rows(s).findings == []
