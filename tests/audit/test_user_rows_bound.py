"""Users bound to the log. A user's role and unit decide what they see, and whether they may log in at all:
an insider who makes themselves a sysadmin, moves to another unit to see its footage, enables a disabled
account or makes up a user in the database is named by `custodia audit verify`.

A site that started before every user's creation was recorded has users no entry records; they are adopted
into the log once (``evidence_server.binding.adopt``), and until then users are left unbound rather than
every one of them named. The worlds here start that way: their users are seeded straight into the database,
as an older site's first administrator and officer were. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from evidence_server.audit.models import AuditEvent
from evidence_server.audit.service import record
from evidence_server.binding.adopt import ADOPTED, adopt_users
from evidence_server.binding.service import check_rows
from evidence_server.binding.tasks import check_rows_task
from tests.audit.edits import each_named_once, edit
from tests.audit.test_rows_bound import audit_verify, custodia
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import PEOPLE, World, make_world


@dataclass
class Site:
    world: World
    newbie: int  # made by an administrator in U2 as an officer, then made a case handler


def adopt(w: World) -> None:
    """What the first scheduled rows check after the upgrade does."""
    check_rows_task(w.ctx)


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    """The seeded users adopted; then a user created and promoted, and another disabled, through the API."""
    for w in make_world(tmp_path, database_url):
        adopt(w)
        made = w.post(
            "admin",
            "/api/v1/admin/users",
            {"username": "newbie", "role": "officer", "unit_id": w.units["U2"], "officer_no": "202001"},
        )
        assert made.status_code == 201, made.text
        newbie = made.json()["id"]
        r = w.patch("admin", f"/api/v1/admin/users/{newbie}", {"role": "case_handler"})
        assert r.status_code == 200, r.text
        r = w.patch("admin", f"/api/v1/admin/users/{w.users['officer2']}", {"active": False})
        assert r.status_code == 200, r.text
        r = w.post("admin", f"/api/v1/admin/users/{w.users['handler']}/password")
        assert r.status_code == 200, r.text
        yield Site(w, newbie)


@pytest.fixture
def upgraded(tmp_path: Path, database_url: str) -> Iterator[World]:
    """A site just upgraded: its users in the database, none of them in the log."""
    yield from make_world(tmp_path, database_url)


def insert_user(w: World, username: str, role: str) -> int:
    """A user inserted straight into the database (the admin's password hash, unit and all)."""
    edit(
        w,
        "INSERT INTO users (username, display_name, password_hash, role, unit_id, active, created_at, failed_logins)"
        " SELECT :name, :name, password_hash, :role, unit_id, :yes, CURRENT_TIMESTAMP, 0 FROM users WHERE id = :admin",
        name=username,
        role=role,
        admin=w.users["admin"],
        yes=True,
    )
    with w.session() as s:
        return int(s.scalar(text("SELECT id FROM users WHERE username = :name"), {"name": username}))


def logged(w: World, action: str) -> list[AuditEvent]:
    with w.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_users_adopted_made_and_changed_through_the_services_agree_with_the_log(site: Site) -> None:
    w = site.world
    out = audit_verify(w)
    assert out.exit_code == 0, out.output
    assert f"{len(PEOPLE) + 1} users" in out.output, out.output
    # every seeded user adopted, by name, and the mark made once
    adopted = logged(w, "user.adopted")
    assert sorted(e.details["username"] for e in adopted) == sorted(p[0] for p in PEOPLE)
    (mark,) = logged(w, ADOPTED)
    assert mark.details["adopted"] == sorted(w.users[p[0]] for p in PEOPLE)
    # a second run adopts nobody
    adopt(w)
    assert len(logged(w, ADOPTED)) == 1 and len(logged(w, "user.adopted")) == len(PEOPLE)


EDITS = [
    # made a sysadmin: every unit's footage, and every user's rights
    ("UPDATE users SET role = 'sysadmin' WHERE id = :officer1", "users {officer1}: role is 'sysadmin' in the row"),
    # moved to another unit: its footage in sight, their own unit's out of it
    ("UPDATE users SET unit_id = :u2 WHERE id = :officer1", "users {officer1}: unit_id is {u2} in the row"),
    # a disabled account able to log in again
    ("UPDATE users SET active = :yes WHERE id = :officer2", "users {officer2}: active is True in the row"),
    # a promotion the log records, undone in the database
    ("UPDATE users SET role = 'officer' WHERE id = :newbie", "users {newbie}: role is 'officer' in the row"),
    # another officer's number: their footage filed as this user's
    ("UPDATE users SET officer_no = '999999' WHERE id = :officer1", "users {officer1}: officer_no is '999999'"),
    ("UPDATE users SET username = 'root' WHERE id = :admin", "users {admin}: username is 'root' in the row"),
]


def test_an_insiders_edits_of_users_are_each_named(site: Site) -> None:
    """Every edit of EDITS, all on one site: each named once, with its field and the entry that disagrees."""
    w = site.world
    ids: dict[str, object] = {**w.users, "newbie": site.newbie, "u2": w.units["U2"], "yes": True}
    each_named_once(w, EDITS, ids)


def test_a_user_made_up_in_the_database_after_the_adoption_is_named_and_never_adopted(site: Site) -> None:
    w = site.world
    ghost = insert_user(w, "ghost", "sysadmin")
    named = f"users {ghost}: not in the log (no audit entry records it)"
    assert any(f.startswith(named) for f in findings(w)), findings(w)
    adopt(w)  # the next scheduled run: the adoption happened once, and does not happen again
    assert any(f.startswith(named) for f in findings(w))
    assert [e.object_id for e in logged(w, "user.adopted") if e.object_id == str(ghost)] == []


def test_before_the_adoption_users_are_left_unbound_and_said_to_be(upgraded: World) -> None:
    """An upgraded site's users have no creation entry: none of them is taken for an insertion, and the
    check says users are not bound yet, until the first scheduled run adopts them."""
    w = upgraded
    with w.session() as s:
        report = check_rows(s)
    assert report.ok and report.unbound == ["users", "stations"] and "users" not in report.rows
    out = audit_verify(w)
    assert out.exit_code == 0 and "NOTE     users not bound yet" in out.output, out.output
    case = w.open_case()  # a finding elsewhere: the check reads again, and still says what it left unbound
    edit(w, "UPDATE cases SET name = 'x' WHERE id = :c", c=case["id"])
    with w.session() as s:
        report = check_rows(s)
    assert not report.ok and report.unbound == ["users", "stations"], report
    out = audit_verify(w)
    assert out.exit_code == 3 and "NOTE     users not bound yet" in out.output, out.output
    edit(w, "UPDATE cases SET name = :n WHERE id = :c", c=case["id"], n=case["name"])
    adopt(w)
    with w.session() as s:
        report = check_rows(s)
    assert report.ok and report.unbound == [] and report.rows["users"] == len(PEOPLE), report


def test_entries_written_before_users_were_recorded_whole_bind_what_they_said(upgraded: World) -> None:
    """A user created through the old accounts route (role and unit recorded, nothing else) and promoted by
    an entry that recorded only from and to: role, unit and active are bound, the username is not."""
    w = upgraded
    adopt(w)
    vet = insert_user(w, "veteran", "officer")
    with w.session() as s:
        record(
            s,
            "user.created",
            object_type="user",
            object_id=vet,
            details={"role": "officer", "unit_id": w.units["U1"]},
        )
        record(s, "user.role_changed", object_type="user", object_id=vet, details={"from": "officer", "to": "auditor"})
        s.commit()
    edit(w, "UPDATE users SET role = 'auditor', unit_id = :u1 WHERE id = :vet", u1=w.units["U1"], vet=vet)
    assert findings(w) == []
    edit(w, "UPDATE users SET username = 'renamed' WHERE id = :vet", vet=vet)
    assert findings(w) == []  # never said: unsaid
    edit(w, "UPDATE users SET role = 'sysadmin' WHERE id = :vet", vet=vet)
    assert any(f.startswith(f"users {vet}: role is 'sysadmin' in the row, but log entry") for f in findings(w))
    edit(w, "UPDATE users SET role = 'auditor', active = :no WHERE id = :vet", vet=vet, no=False)
    assert any(f.startswith(f"users {vet}: active is False in the row") for f in findings(w)), findings(w)


def test_two_adoptions_at_once_both_leave_every_user_bound(upgraded: World) -> None:
    """Two processes' first rows checks at the same moment (two API hosts, a worker). On PostgreSQL they
    adopt once (the second waits for the first and finds the mark); on SQLite two adoptions at once may both
    record, which binds the same (they say the same of each user)."""
    w = upgraded
    results: list[object] = []
    start = threading.Barrier(2)

    def one() -> None:
        with w.session() as s:
            start.wait()
            results.append(adopt_users(s))
            s.commit()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with w.session() as s:
        report = check_rows(s)
        marks = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == ADOPTED))
    assert report.ok and report.rows["users"] == len(PEOPLE), report
    if w.ctx.engine.dialect.name == "postgresql":
        assert marks == 1 and None in results, results


def test_the_adoption_on_demand_adopts_once(upgraded: World) -> None:
    """`custodia audit adopt`: for a site that runs no scheduled rows check."""
    w = upgraded
    first, second = custodia(w, "audit", "adopt"), custodia(w, "audit", "adopt")
    assert first.exit_code == 0 and f"{len(PEOPLE)} user(s) adopted into the log" in first.output, first.output
    assert "1 station(s) adopted into the log" in first.output, first.output
    assert second.exit_code == 0 and "users were adopted before: nothing to do" in second.output, second.output
    assert "stations were adopted before" in second.output, second.output
    out = audit_verify(w)
    assert out.exit_code == 0 and f"{len(PEOPLE)} users" in out.output and "NOTE" not in out.output, out.output
