"""What the case pages list: cases with their recording counts, a case's shares, the open cases to pick."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.cases import access, numbers, service
from evidence_server.cases.models import Case, CaseLink, CaseShare


def cases(session: Session, user: User, q: str = "", status: str = "", limit: int = 200) -> list[Case]:
    """The cases this user may see, newest first; ``q`` is the beginning of a number or part of a name."""
    query = access.cases_visible(user)
    if q.strip():
        query = query.where(
            Case.number.startswith(numbers.normalize(q), autoescape=True)
            | func.lower(Case.name).contains(q.strip().lower(), autoescape=True)
        )
    if status in service.STATUSES:
        query = query.where(Case.status == status)
    return list(session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)))


def recording_counts(session: Session, case_ids: list[int]) -> dict[int, int]:
    """How many recordings each case holds now."""
    if not case_ids:
        return {}
    q = (
        select(CaseLink.case_id, func.count())
        .where(CaseLink.unlinked_at.is_(None), CaseLink.case_id.in_(case_ids))
        .group_by(CaseLink.case_id)
    )
    return {case_id: n for case_id, n in session.execute(q)}


def shares_of(session: Session, case_id: int) -> list[CaseShare]:
    return list(session.scalars(select(CaseShare).where(CaseShare.case_id == case_id).order_by(CaseShare.id)))


def open_cases(session: Session, user: User, limit: int = 200) -> list[Case]:
    q = access.cases_visible(user).where(Case.status == "open").order_by(Case.created_at.desc()).limit(limit)
    return list(session.scalars(q))


def case_by_id(session: Session, case_id: int | None) -> Case | None:
    return session.get(Case, case_id) if case_id is not None else None
