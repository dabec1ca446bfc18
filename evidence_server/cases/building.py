"""Building a case from what a case handler sees: many recordings at once, by what a person knows of
them (a file name, a case number), never by an internal record number."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, User
from evidence_server.cases.access import cases_visible, recordings_visible
from evidence_server.cases.models import Case
from evidence_server.cases.service import CaseError, find_by_number, link, recording_to_link
from evidence_server.recordings.models import Recording

#: at most this many recordings in one request (a page of a list, several times over)
MOST = 500


@dataclass
class Added:
    case: Case
    linked: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)


def by_file_name(session: Session, user: User, name: str) -> Recording:
    """The one recording ``user`` may see with this original file name (as the recorder wrote it)."""
    wanted = name.strip()
    found = list(session.scalars(recordings_visible(user).where(Recording.original_name == wanted).limit(2)))
    if not found:
        raise CaseError("unknown_recording", f"no recording named {wanted!r}, or not one you may see", 404)
    if len(found) > 1:
        raise CaseError(
            "ambiguous_name",
            f"several recordings are named {wanted!r}: choose them in the list or the search, where the device "
            "and time tell them apart",
            409,
        )
    return found[0]


def recording_named(session: Session, user: User, ref: str) -> Recording:
    """A recording given as a file name (what a person knows) or, from the API, its record number."""
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 19:
        try:
            return recording_to_link(session, user, int(ref))
        except CaseError:
            pass  # a file name made of digits
    return by_file_name(session, user, ref)


def add_to_case(
    session: Session,
    user: User,
    case_number: str,
    recording_ids: list[int],
    *,
    reason: str,
    pattern: str,
    request: Request | None = None,
) -> Added:
    """Link every chosen recording to the case with this number, all or none: each must be one the
    user may see and link. Recordings already in the case are counted, not linked twice."""
    if not recording_ids:
        raise CaseError("nothing_chosen", "choose at least one recording")
    if len(recording_ids) > MOST:
        raise CaseError("too_many", f"at most {MOST} recordings at once")
    case = find_by_number(session, user, case_number, pattern)
    wanted = sorted(set(recording_ids))
    visible = {r.id: r for r in session.scalars(recordings_visible(user).where(Recording.id.in_(wanted)))}
    missing = [i for i in wanted if i not in visible]
    if missing:
        raise CaseError("unknown_recording", f"no recording {missing[0]}, or not one you may see", 404)
    out = Added(case)
    for rid in wanted:
        _, created = link(session, user, case, visible[rid], origin="manual", reason=reason, request=request)
        (out.linked if created else out.already).append(rid)
    return out


def linkable_cases(session: Session, user: User, limit: int = 200) -> list[Case]:
    """Open cases the user could add recordings to, newest first (for the pickers)."""
    if Role(user.role) not in (Role.sysadmin, Role.case_handler):  # who may link (access.manages)
        return []
    return list(
        session.scalars(cases_visible(user).where(Case.status != "closed").order_by(Case.id.desc()).limit(limit))
    )
