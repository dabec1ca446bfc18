"""Files marked important (重要文件标记): the recorder's mark carried in from the station, and a person's.

A recorder marks a file important in its name, folder, container tags or through a vendor command
(``device_drivers.marks``); the station carries how it did in the manifest (``ManifestFile.important``)
and the transfer that first delivered the file sets the mark (``source`` "device"). Officers set and
clear the mark on their own recordings, case handlers on their unit's, legal affairs on any; case
handlers and legal affairs review it. Clearing a mark the device set needs a reason. Every change is
an audit entry (``recording.important_set``, ``..._cleared``, ``..._reviewed``).

A marked recording not yet reviewed is kept (retention basis ``important``): no disposal before
review (``evidence_server.retention.rules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from custodia_wire.documents import IMPORTANT_HOW, utc_iso
from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.db import utcnow
from evidence_server.recordings.models import Recording

DEVICE, PERSON = "device", "person"
ACTIONS = ("set", "clear", "review")
#: who may change a mark at all (the route's roles); ``may_change`` narrows it to their recordings
MARKERS = (Role.officer, Role.case_handler, Role.legal_affairs)
REVIEWERS = frozenset({Role.case_handler, Role.legal_affairs})
MAX_REASON = 1000


class MarkRefused(Exception):
    """A change of the mark refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Who:
    """The caller, as ``may_change`` needs them."""

    role: str
    unit_id: int
    officer_no: str | None


def may_change(who: Who, rec_unit_id: int, rec_officer_no: str | None, action: str) -> str | None:
    """Why ``who`` may not ``action`` the mark of a recording of this unit and officer; None: they may. Pure.

    Officers: their own recordings (their officer number, their unit), set and clear only. Case handlers:
    their unit's. Legal affairs: any unit's. Reviewing is for case handlers and legal affairs.
    """
    role = Role(who.role)
    if action not in ACTIONS:
        return f"unknown action {action!r}"
    if action == "review" and role not in REVIEWERS:
        return "only case handlers and legal affairs review a mark"
    if role == Role.legal_affairs:
        return None
    if rec_unit_id != who.unit_id:
        return "another unit's recording"
    if role == Role.case_handler:
        return None
    if role == Role.officer:
        if who.officer_no and rec_officer_no == who.officer_no:
            return None
        return "an officer marks their own recordings only"
    return f"a {role.value} does not mark recordings"


def available_actions(
    who: Who, rec_unit_id: int, rec_officer_no: str | None, important: bool, reviewed: bool
) -> list[str]:
    """The changes of the mark ``who`` may make now, in the order a page offers them. Pure."""
    applicable = {"set": not important, "clear": important, "review": important and not reviewed}
    return [a for a in ACTIONS if applicable[a] and may_change(who, rec_unit_id, rec_officer_no, a) is None]


def actions_for(user: User, rec: Recording) -> list[str]:
    return available_actions(
        Who(user.role, user.unit_id, user.officer_no),
        rec.unit_id,
        rec.officer_no,
        rec.important,
        rec.important_reviewed_at is not None,
    )


def kept_for_review(important: bool, reviewed: bool) -> bool:
    """Is a recording kept whatever its retention says, because it is marked and not yet reviewed? Pure."""
    return important and not reviewed


def mark_facts(rec: Recording) -> dict[str, Any]:
    """The mark as the audit log and the API give it."""
    return {
        "important": rec.important,
        "source": rec.important_source,
        "how": rec.important_how,
        "by_id": rec.important_by_id,
        "at": utc_iso(rec.important_at) if rec.important_at else None,
        "note": rec.important_note,
        "reviewed_at": utc_iso(rec.important_reviewed_at) if rec.important_reviewed_at else None,
        "reviewed_by_id": rec.important_reviewed_by_id,
    }


def mark_from_device(session: Session, rec: Recording, how: str, transfer_id: str, path: str) -> bool:
    """Set the recorder's mark on a recording this transfer delivered; True if it was set now.

    Only the transfer that first delivered the bytes marks them, and only once: a mark a person cleared
    is not set again by the same file docked again, nor by a repeated completion.
    """
    if how not in IMPORTANT_HOW or rec.transfer_id != transfer_id or rec.important or rec.important_at is not None:
        return False
    rec.important, rec.important_source, rec.important_how = True, DEVICE, how
    rec.important_by_id, rec.important_at, rec.important_note = None, utcnow(), None
    audit(
        session,
        "recording.important_set",
        object_type="recording",
        object_id=rec.id,
        details={"source": DEVICE, "how": how, "transfer_id": transfer_id, "path": path, "mark": mark_facts(rec)},
    )
    return True


def _reason(reason: str | None, required: bool) -> str | None:
    text = (reason or "").strip() or None
    if text is not None and len(text) > MAX_REASON:
        raise MarkRefused("reason_too_long", f"a reason has at most {MAX_REASON} characters", 422)
    if required and text is None:
        raise MarkRefused(
            "reason_required", "the recorder set this mark: clearing it needs a reason, kept in the audit log", 422
        )
    return text


def change_mark(
    session: Session, user: User, rec: Recording, action: str, reason: str | None, request: Request | None = None
) -> Recording:
    """Set, clear or review the mark as ``user``; each change is an audit entry. Raises :class:`MarkRefused`."""
    why = may_change(Who(user.role, user.unit_id, user.officer_no), rec.unit_id, rec.officer_no, action)
    if why is not None:
        raise MarkRefused("not_allowed", f"you may not {action} the important mark of this recording: {why}", 403)
    before = mark_facts(rec)
    now = utcnow()
    if action == "set":
        if rec.important:
            raise MarkRefused("already_marked", "this recording is marked important already")
        note = _reason(reason, False)
        rec.important, rec.important_source, rec.important_how = True, PERSON, None
        rec.important_by_id, rec.important_at, rec.important_note = user.id, now, note
        rec.important_reviewed_at = rec.important_reviewed_by_id = None
    elif action == "clear":
        if not rec.important:
            raise MarkRefused("not_marked", "this recording is not marked important")
        note = _reason(reason, rec.important_source == DEVICE)
        rec.important = False
        rec.important_reviewed_at = rec.important_reviewed_by_id = None
    else:
        if not rec.important:
            raise MarkRefused("not_marked", "this recording is not marked important")
        if rec.important_reviewed_at is not None:
            raise MarkRefused("already_reviewed", "this mark was reviewed already")
        note = _reason(reason, False)
        rec.important_reviewed_at, rec.important_reviewed_by_id = now, user.id
    audit(
        session,
        {
            "set": "recording.important_set",
            "clear": "recording.important_cleared",
            "review": "recording.important_reviewed",
        }[action],
        request=request,
        object_type="recording",
        object_id=rec.id,
        details={"source": PERSON, "reason": note, "from": before, "to": mark_facts(rec)},
    )
    return rec
