"""Who may see and do what with cases and recordings. Case handlers see their unit's cases and the
cases shared with them (and those cases' recordings); legal affairs, auditors and sysadmins read
everything; officers see their unit's cases only to pick one at the dock, and only their own
recordings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.cases.models import Case, CaseLink, CaseShare
from evidence_server.recordings.models import Recording

#: who reads cases (each scoped by ``cases_visible``)
READERS: tuple[Role, ...] = tuple(Role)
#: who opens, edits, closes and shares cases and links recordings by hand
MANAGERS: tuple[Role, ...] = (Role.case_handler, Role.sysadmin)
#: who exports a court package
EXPORTERS: tuple[Role, ...] = (Role.case_handler, Role.legal_affairs, Role.sysadmin)
#: who searches footage (each sees what ``recordings_visible`` lets them)
SEARCHERS: tuple[Role, ...] = tuple(Role)
#: who records a transfer's enforcement matter and case at the dock
TASK_SETTERS: tuple[Role, ...] = (Role.officer, Role.device_admin, Role.case_handler, Role.sysadmin)


def shared_case_ids(user: User) -> Select[int]:
    return select(CaseShare.case_id).where(
        CaseShare.revoked_at.is_(None), or_(CaseShare.user_id == user.id, CaseShare.unit_id == user.unit_id)
    )


def cases_visible(user: User) -> Select[Case]:
    q = select(Case)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.case_handler:
        return q.where(or_(Case.unit_id == user.unit_id, Case.id.in_(shared_case_ids(user))))
    return q.where(Case.unit_id == user.unit_id)


def recordings_shared_with(user: User) -> Select[int]:
    """Recordings of other units a case handler may see: those linked to their unit's cases or to
    cases shared with them."""
    cases = select(Case.id).where(or_(Case.unit_id == user.unit_id, Case.id.in_(shared_case_ids(user))))
    return select(CaseLink.recording_id).where(CaseLink.unlinked_at.is_(None), CaseLink.case_id.in_(cases))


def recording_shared_with(user: User, recording_id: Any) -> ColumnElement[bool]:
    """Is this recording (a correlated column) one of ``recordings_shared_with(user)``? As EXISTS, so
    that PostgreSQL looks up each candidate's links by index: ``id IN (recordings_shared_with)`` under
    an OR is a subplan over every link of every visible case (hundreds of thousands of rows, too many
    to hash in work_mem), scanned once per recording that is not of the user's unit."""
    cases = select(Case.id).where(or_(Case.unit_id == user.unit_id, Case.id.in_(shared_case_ids(user))))
    return (
        select(CaseLink.id)
        .where(CaseLink.recording_id == recording_id, CaseLink.unlinked_at.is_(None), CaseLink.case_id.in_(cases))
        .exists()
    )


def recordings_visible(user: User) -> Select[Recording]:
    """Recordings a user may see: officers their own, unit roles their unit (case handlers also those of
    cases shared with them), supervisors all."""
    q = select(Recording)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.officer:
        return q.where(Recording.unit_id == user.unit_id, Recording.officer_no == (user.officer_no or "\x00"))
    if Role(user.role) == Role.case_handler:  # and the recordings of cases shared with them
        return q.where(or_(Recording.unit_id == user.unit_id, recording_shared_with(user, Recording.id)))
    return q.where(Recording.unit_id == user.unit_id)


def sees_linked_recordings(user: User) -> bool:
    """Does ``user`` see every recording linked to each case ``cases_visible`` gives them? Those who see
    every unit, and case handlers: ``recordings_shared_with`` is the links of exactly those cases. (A
    search within one such case then needs no recording filter of its own.)"""
    return user.sees_all_units or Role(user.role) == Role.case_handler


def manages(user: User, case: Case) -> bool:
    """May ``user`` edit ``case`` and link to it? Sysadmins any; case handlers their unit's and shared ones."""
    if Role(user.role) == Role.sysadmin:
        return True
    return Role(user.role) == Role.case_handler


def case_open_to_unit(session: Session, case: Case, unit_id: int) -> bool:
    """Is ``case`` one that footage of ``unit_id`` may join without a person deciding: the unit's own
    case, or one shared with the unit?"""
    if case.unit_id == unit_id:
        return True
    share = select(CaseShare.id).where(
        CaseShare.case_id == case.id, CaseShare.unit_id == unit_id, CaseShare.revoked_at.is_(None)
    )
    return session.scalar(share.limit(1)) is not None


def may_link_recording(user: User | None, recording_unit_id: int) -> bool:
    """A recording of another unit is linked only by someone who sees every unit (or by the system)."""
    return user is None or user.sees_all_units or user.unit_id == recording_unit_id
