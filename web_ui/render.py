"""Rendering pages: the Jinja2 environment, display filters and the common page context."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from evidence_server.accounts.models import User
from evidence_server.accounts.names import officer_names
from evidence_server.context import context_of
from web_ui import csrf, i18n
from web_ui.nav import current_path, nav_for
from web_ui.urls import here, with_next

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_VERSION = "4"  # bump when static assets change, so browsers fetch them again

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def filesize(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def short_hash(value: str | None, keep: int = 12) -> str:
    if not value:
        return "—"
    digest = value.split(":", 1)[-1]
    return digest[:keep] + "…" if len(digest) > keep else digest


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """``2026-11-21 18:00:05 UTC+08:00``: local wall time with its zone offset visible."""
    if value is None:
        return "—"
    local = value.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


@pass_context
def _localtime(ctx: Context, value: datetime | None) -> str:
    tz: ZoneInfo = ctx["tz"]
    return local_time(value, tz)


@pass_context
def _age(ctx: Context, value: datetime | None) -> str:
    """How long ago, coarsely (for "last seen")."""
    t: i18n.Translator = ctx["t"]
    if value is None:
        return t("time.never")
    seconds = max(0, int((ctx["now"] - value).total_seconds()))
    if seconds < 120:
        return t("time.seconds_ago", n=seconds)
    if seconds < 7200:
        return t("time.minutes_ago", n=seconds // 60)
    if seconds < 172800:
        return t("time.hours_ago", n=seconds // 3600)
    return t("time.days_ago", n=seconds // 86400)


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


@cache
def driver_families() -> list[tuple[str, str]]:
    """The recorder families the station software reads, for the device register's choice."""
    from device_drivers.registry import known_families

    return known_families()


class OfficerNames:
    """``officer_no|officer`` in templates: "102345 张三", loaded once per page and only if used."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._names: dict[str, str] | None = None

    def label(self, officer_no: str | None, name: str | None = None) -> str:
        if not officer_no:
            return name or "—"
        if name is None:
            if self._names is None:
                with context_of(self._request).sessionmaker() as session:
                    self._names = officer_names(session)
            name = self._names.get(officer_no)
        return f"{officer_no} {name}" if name else officer_no


@pass_context
def _officer(ctx: Context, officer_no: str | None, name: str | None = None) -> str:
    names: OfficerNames = ctx["officer_names"]
    return names.label(officer_no, name)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["driver_families"] = driver_families
    env.filters.update(
        officer=_officer,
        localtime=_localtime,
        age=_age,
        iso=_iso,
        filesize=filesize,
        duration=duration,
        short_hash=short_hash,
    )
    return env


ENV = make_environment()


def page_context(request: Request, user: User | None) -> dict[str, Any]:
    ctx = context_of(request)
    lang = i18n.request_lang(request)
    t = i18n.Translator(lang)
    settings = ctx.settings
    current = here(request)
    nav = nav_for(user.role) if user is not None else []
    return {
        "request": request,
        "t": t,
        "lang": lang,
        "user": user,
        "here": current,
        "nav": nav,
        "nav_current": current_path(nav, current),
        "languages": [(code, with_next(f"/lang/{code}", current)) for code in i18n.LANGUAGES],
        "csrf_field": csrf.CSRF_FIELD,
        "csrf_token": csrf.token_for(request, user),
        "tz": ZoneInfo(settings.default_timezone),
        "tz_name": settings.default_timezone,
        "now": datetime.now(UTC),
        "static_version": STATIC_VERSION,
        "officer_names": OfficerNames(request),
    }


def render(
    request: Request, template: str, *, user: User | None = None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """Render a page (or fragment) with the common context; keeps the CSRF cookie in step."""
    context = page_context(request, user) | values
    response = HTMLResponse(ENV.get_template(template).render(context), status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    csrf.set_cookie(response, request, context["csrf_token"], user)
    return response
