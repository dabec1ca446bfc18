"""A case and its shares bound to the log. A case's unit decides who sees the footage linked to it, its state
and closing date how long that footage is kept, and a share opens it to another unit or person: an insider who
moves a case to another unit, reopens or re-dates it, or makes up a share in the database is named by
`custodia audit verify`. Entries written before record less, and bind only what they recorded. On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evidence_server.audit.service import record
from evidence_server.cases.models import Case, CaseShare
from tests.audit.edits import edit
from tests.audit.test_rows_bound import audit_verify
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import World, make_world

CASE = "杭西市监处罚〔2026〕51号"


@dataclass
class Site:
    world: World
    case: int
    kept: int  # a share in force (to unit U2)
    revoked: int  # a share revoked (to one person)


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    """A case opened, renamed and closed, shared with another unit and with a person, that person's share
    revoked: all through the API."""
    for w in make_world(tmp_path, database_url):
        case = w.open_case(CASE, officers=[{"officer_no": "102345", "name": "张三"}])
        r = w.patch("handler", f"/api/v1/cases/{case['id']}", {"name": "某超市销售过期食品案（已结）"})
        assert r.status_code == 200, r.text
        r = w.patch("handler", f"/api/v1/cases/{case['id']}", {"status": "closed", "closed_on": "2026-11-30"})
        assert r.status_code == 200, r.text
        kept = w.post("handler", f"/api/v1/cases/{case['id']}/shares", {"unit_id": w.units["U2"], "reason": "协查"})
        assert kept.status_code == 201, kept.text
        one = w.post("handler", f"/api/v1/cases/{case['id']}/shares", {"user_id": w.users["legal"], "reason": "复核"})
        assert one.status_code == 201, one.text
        r = w.post("handler", f"/api/v1/cases/{case['id']}/shares/{one.json()['id']}/revoke")
        assert r.status_code == 200, r.text
        yield Site(w, int(case["id"]), kept.json()["id"], one.json()["id"])


def test_a_case_and_its_shares_made_through_the_services_agree_with_the_log(site: Site) -> None:
    out = audit_verify(site.world)
    assert out.exit_code == 0, out.output
    assert "1 cases" in out.output and "2 case shares" in out.output, out.output


@pytest.mark.parametrize(
    "sql, named",
    [
        # moved to another unit: its footage leaves its own unit's sight and enters the other's
        ("UPDATE cases SET unit_id = :u2 WHERE id = :c", "cases {c}: unit_id is {u2} in the row"),
        # reopened, or its closing moved: the footage kept longer or shorter than the rule says
        ("UPDATE cases SET status = 'open' WHERE id = :c", "cases {c}: status is 'open' in the row"),
        ("UPDATE cases SET closed_on = '2020-01-01' WHERE id = :c", "cases {c}: closed_on is '2020-01-01' in the row"),
        ("UPDATE cases SET number = '杭西市监处罚〔2026〕99号' WHERE id = :c", "cases {c}: number is"),
        ("UPDATE cases SET name = '无' WHERE id = :c", "cases {c}: name is '无' in the row"),
        ("UPDATE cases SET enforcement_matter = '无' WHERE id = :c", "cases {c}: enforcement_matter is '无'"),
        ("UPDATE cases SET officers = '[]' WHERE id = :c", "cases {c}: officers is [] in the row"),
        # a revoked share in force again, a share moved to another unit
        ("UPDATE case_shares SET revoked_at = NULL WHERE id = :revoked", "case_shares {revoked}: revoked is False"),
        ("UPDATE case_shares SET unit_id = :u1 WHERE id = :kept", "case_shares {kept}: unit_id is {u1} in the row"),
        ("UPDATE case_shares SET user_id = :handler2 WHERE id = :revoked", "case_shares {revoked}: user_id is"),
    ],
)
def test_an_edited_case_or_share_is_named_with_its_field(site: Site, sql: str, named: str) -> None:
    w = site.world
    ids = {"c": site.case, "kept": site.kept, "revoked": site.revoked, "handler2": w.users["handler2"]}
    ids |= {"u1": w.units["U1"], "u2": w.units["U2"]}
    edit(w, sql, **{k: v for k, v in ids.items() if f":{k}" in sql})
    expected = named.format(**ids)
    found = findings(w)
    assert len(found) == 1 and found[0].startswith(expected), found
    out = audit_verify(w)
    assert out.exit_code != 0 and expected in out.output, out.output


def test_a_share_made_up_or_removed_in_the_database_is_named(site: Site) -> None:
    """A share inserted behind the log opens the case to another unit unseen; one deleted hides that it was."""
    w = site.world
    with w.session() as s:
        made_up = CaseShare(case_id=site.case, unit_id=w.units["U2"], reason="协查", shared_by_id=w.users["handler"])
        s.add(made_up)
        s.commit()
        made_up_id = made_up.id
    edit(w, "DELETE FROM case_shares WHERE id = :kept", kept=site.kept)
    found = findings(w)
    assert f"case_shares {made_up_id}: not in the log (no audit entry records it): inserted behind the log's back" in (
        found
    )
    assert [m for m in found if m.startswith(f"case_shares {site.kept}: missing from the database")], found
    assert len(found) == 2, found


def test_a_case_inserted_behind_the_log_is_named(site: Site) -> None:
    w = site.world
    with w.session() as s:
        ghost = Case(number="杭西市监处罚〔2026〕52号", name="x", unit_id=w.units["U2"])
        s.add(ghost)
        s.commit()
        ghost_id = ghost.id
    assert findings(w) == [
        f"cases {ghost_id}: not in the log (no audit entry records it): inserted behind the log's back"
    ]


def test_an_older_log_binds_what_it_recorded(tmp_path: Path, database_url: str) -> None:
    """A case created and changed before the whole case was recorded: its creation named the number, name and
    unit, which stay bound; a change named only what it changed from, so the log says nothing more of those
    fields, and their values in the row are not taken for tampering."""
    for w in make_world(tmp_path, database_url):
        with w.session() as s:
            case = Case(number="杭西市监处罚〔2025〕7号", name="旧案", unit_id=w.units["U1"], status="closed")
            s.add(case)
            s.flush()
            created = {"number": case.number, "name": "旧案（立案时）", "unit_id": case.unit_id, "via": "manual"}
            record(s, "case.create", object_type="case", object_id=case.id, details=created)
            changed = {"number": case.number, "changed_from": {"name": "旧案（立案时）", "status": "open"}}
            record(s, "case.update", object_type="case", object_id=case.id, details=changed)
            s.commit()
            case_id = case.id
        assert findings(w) == []  # the name and state changed, to what the log does not say
        edit(w, "UPDATE cases SET unit_id = :u2 WHERE id = :c", u2=w.units["U2"], c=case_id)
        assert [m.split(" in the row")[0] for m in findings(w)] == [f"cases {case_id}: unit_id is {w.units['U2']}"]


def test_a_case_changed_while_the_check_reads_is_not_taken_for_tampering(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case is reopened (through the API, logged) after the check read the cases and before it read their
    entries: for that moment the row says "closed" and the log "open". No finding, no incident. On
    PostgreSQL the first reading does see them disagree (read once without the second look); SQLite's
    reading is one snapshot, which never sees the change."""
    from evidence_server.binding import service
    from evidence_server.binding.tasks import check_rows_task

    w = site.world
    real = service._entries_about
    changed: list[int] = []

    def entries_about(session, b, rows):  # type: ignore[no-untyped-def]
        if b.table == "cases" and not changed:
            r = w.patch("handler", f"/api/v1/cases/{site.case}", {"status": "open", "closed_on": None})
            assert r.status_code == 200, r.text
            changed.append(site.case)
        return real(session, b, rows)

    monkeypatch.setattr(service, "_entries_about", entries_about)
    with w.session() as s:
        first = [f.message() for f in service._check_once(s).findings]
    assert changed == [site.case]
    if w.ctx.engine.dialect.name == "postgresql":
        assert any(m.startswith(f"cases {site.case}: status is 'closed' in the row") for m in first), first
    r = w.patch("handler", f"/api/v1/cases/{site.case}", {"status": "closed", "closed_on": "2026-11-30"})
    assert r.status_code == 200, r.text
    changed.clear()
    assert check_rows_task(w.ctx)["findings"] == 0
    assert changed == [site.case]
    out = audit_verify(w)
    assert out.exit_code == 0, out.output
