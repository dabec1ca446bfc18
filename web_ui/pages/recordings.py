"""The recordings list and a recording's detail page, scoped by ``cases.access.recordings_visible``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from evidence_server.accounts.models import Role, Unit, User
from evidence_server.accounts.service import users_by_id
from evidence_server.audit.service import record as audit
from evidence_server.cases import building, search
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.segments import segments_of
from evidence_server.context import context_of
from evidence_server.db import SessionDep
from evidence_server.push import tracks
from evidence_server.push import views as push_views
from evidence_server.recordings import important as marks
from evidence_server.recordings.models import Recording
from evidence_server.retention import service as retention
from evidence_server.security import require_roles
from evidence_server.stations.models import Station
from web_ui import csrf
from web_ui.nav import RECORDING_READERS
from web_ui.pages import cases as cases_pages
from web_ui.render import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(require_roles(*RECORDING_READERS))]
Marker = Annotated[User, Depends(require_roles(*marks.MARKERS))]
Text = Annotated[str, Form()]
IMPORTANT_FILTER = {"1": True, "0": False}
PAGE_SIZE = 50
AUDIO = {"wav", "mp3", "aac", "m4a", "amr"}
IMAGES = {"jpg", "jpeg", "png"}


def media_kind(name: str) -> str:
    """Which HTML element plays a file: ``video``, ``audio`` or ``img``. Pure."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return "audio" if suffix in AUDIO else "img" if suffix in IMAGES else "video"


MARK_ERRORS = frozenset(
    {"not_allowed", "already_marked", "not_marked", "already_reviewed", "reason_required", "reason_too_long"}
)


def _filter(value: str | None) -> str:
    return (value or "").strip()[:64]


@router.get("/recordings")
def recordings_page(
    request: Request,
    user: Reader,
    session: SessionDep,
    device_serial: str | None = None,
    officer: str | None = None,
    officer_no: str | None = None,  # older links
    file_name: str | None = None,
    started_from: str | None = None,
    started_to: str | None = None,
    important: str | None = None,
    sort: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = {
        "important": _filter(important) if _filter(important) in IMPORTANT_FILTER else "",
        "device_serial": _filter(device_serial),
        "officer": _filter(officer or officer_no),
        "file_name": _filter(file_name),
        "started_from": _filter(started_from),
        "started_to": _filter(started_to),
    }
    tz = cases_pages.tz_of(request)
    wanted = search.Filters(
        officer=filters["officer"] or None,
        device_serial=filters["device_serial"] or None,
        started_from=cases_pages.local_time(filters["started_from"], tz),
        started_to=cases_pages.local_time(filters["started_to"], tz),
        file_name=filters["file_name"] or None,
        important=IMPORTANT_FILTER.get(filters["important"]),
    )
    sort_by, descending = search.parse_sort(sort)
    sort_key = ("-" if descending else "") + sort_by
    found = search.search(
        session,
        user,
        wanted,
        cases_pages.pattern(request),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        sort=sort_key,
    )
    ids = [r.id for r in found.recordings]
    cases_pages.backfill(request, session, ids)
    kept = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "recordings.html",
        user=user,
        recordings=found.recordings,
        rec_cases=found.cases,
        thumbs=cases_pages.thumbnails(session, ids),
        total=found.total,
        more=found.more,
        page=page,
        pages=cases_pages.pages_of(found, PAGE_SIZE),
        filters=filters,
        sort=sort_key,
        sort_by=sort_by,
        descending=descending,
        filter_query=urlencode(kept),
        page_query=urlencode({**kept, "sort": sort_key}),
        cases_to_add=building.linkable_cases(session, user),
        title_key="recordings.my_title" if user.role == Role.officer else "recordings.title",
    )


@router.get("/recordings/{recording_id}")
def recording_page(
    recording_id: int, request: Request, user: Reader, session: SessionDep, mark_error: str | None = None
) -> Response:
    mark_error = mark_error if mark_error in MARK_ERRORS else None
    rec = session.scalar(recordings_visible(user).where(Recording.id == recording_id))
    if rec is None:
        return render(request, "error.html", user=user, status_code=404, message="error.no_recording")
    audit(session, "recording.view", request=request, object_type="recording", object_id=rec.id, details={"via": "web"})
    track = push_views.track_of(session, rec.id)
    if track is not None:  # positions are personal data: each view audited
        audit(
            session,
            "recording.track_viewed",
            request=request,
            object_type="recording",
            object_id=rec.id,
            details={"track_id": track["id"], "points": len(track["points"]), "format": "page"},
        )
    session.commit()
    return render(
        request,
        "recording.html",
        user=user,
        rec=rec,
        media=media_kind(rec.original_name),
        station=session.get(Station, rec.station_id),
        unit=session.get(Unit, rec.unit_id),
        segments=segments_of(session, user, rec),
        track=track,
        track_svg=Markup(tracks.svg(track["points"])) if track else None,  # noqa: S704  (escaped by tracks.svg)
        pushed=push_views.pushed_clip(session, rec.id),
        cases_to_add=building.linkable_cases(session, user),
        mark_actions=marks.actions_for(user, rec),
        mark_people=users_by_id(session, (rec.important_by_id, rec.important_reviewed_by_id)),
        mark_error=mark_error,
        **cases_pages.recording_extras(request, session, user, rec),
    )


@router.post("/recordings/{recording_id}/important")
def important_submit(
    recording_id: int,
    request: Request,
    user: Marker,
    session: SessionDep,
    action: Text = "",
    reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    """Set, clear or review the important mark from the recording's page (the API's rules and audit)."""
    bad = csrf.refused(request, session, user, csrf_token)
    if bad:
        return bad
    rec = session.scalar(recordings_visible(user).where(Recording.id == recording_id))
    if rec is None:
        return render(request, "error.html", user=user, status_code=404, message="error.no_recording")
    refused = retention.change_mark(session, context_of(request), user, rec, action, reason, request, via="web")
    if refused is not None:
        return RedirectResponse(f"/recordings/{rec.id}?mark_error={refused.code}", status_code=303)
    session.commit()
    return RedirectResponse(f"/recordings/{rec.id}?marked=1", status_code=303)
