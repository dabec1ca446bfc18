"""Login, logout, language switch and the landing redirect."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts import service as accounts
from evidence_server.accounts.login import LoginRefused, attempt_login, set_session_cookie
from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.security import (
    SESSION_COOKIE,
    bearer_token,
    public,
    public_credentials,
    require_roles,
    user_for_token,
)
from web_ui import csrf, i18n
from web_ui.nav import ALL_USERS, home_for
from web_ui.render import render
from web_ui.urls import safe_next

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[User, Depends(require_roles(*ALL_USERS))]
LANG_COOKIE_DAYS = 365
LOGIN_ERRORS = {401: "login.error_credentials", 423: "login.error_locked", 429: "login.error_throttled"}


def _login_page(
    request: Request,
    next_path: str,
    *,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
    fresh_token: bool = False,
) -> Response:
    values: dict[str, Any] = {"next_path": next_path, "error": error, "username": username}
    if fresh_token:
        values["csrf_token"] = csrf.new_token()
    return render(request, "login.html", status_code=status_code, **values)


@router.get("/login", dependencies=[Depends(public)])
def login_page(request: Request, session: SessionDep, next: str | None = None) -> Response:  # noqa: A002
    user = user_for_token(session, bearer_token(request))
    if user is not None:
        return RedirectResponse(safe_next(next, home_for(user.role)), status_code=303)
    return _login_page(request, safe_next(next, ""))


@router.post("/login", dependencies=[Depends(public_credentials)])
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:  # noqa: A002
    next_path = safe_next(next, "")
    if csrf.refused(request, session, None, csrf_token) is not None:
        return _login_page(
            request, next_path, error="login.error_expired", username=username[:64], status_code=403, fresh_token=True
        )
    try:
        user, token = attempt_login(
            request, session, username[:64], password[:256] if 0 < len(password) <= 256 else "", via="web"
        )
    except LoginRefused as exc:
        error = LOGIN_ERRORS.get(exc.status, "login.error_credentials")
        return _login_page(
            request,
            next_path,
            error=error,
            username=username[:64],
            status_code=200 if exc.status == 401 else exc.status,
        )
    response = RedirectResponse(next_path or home_for(user.role), status_code=303)
    set_session_cookie(response, request, token)
    response.delete_cookie(csrf.CSRF_COOKIE, path="/")  # a fresh token is issued with the next page
    return response


@router.post("/logout")
def logout(request: Request, user: SignedIn, session: SessionDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    refused = csrf.refused(request, session, user, csrf_token)
    if refused is not None:
        return refused
    token = bearer_token(request)
    if token:
        accounts.logout(session, token)
    audit(session, "auth.logout", request=request, object_type="user", object_id=user.id, details={"via": "web"})
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}", dependencies=[Depends(public)])
def switch_language(code: str, request: Request, ctx: CtxDep, next: str | None = None) -> Response:  # noqa: A002
    if code not in i18n.LANGUAGES:
        raise HTTPException(404, "no such language")
    response = RedirectResponse(safe_next(next, "/"), status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE,
        code,
        max_age=LANG_COOKIE_DAYS * 86400,
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return response


@router.get("/favicon.ico", dependencies=[Depends(public)])
def favicon() -> Response:
    """Browsers ask for it on their own; the icon is an SVG under /static."""
    return RedirectResponse("/static/favicon.svg", status_code=301)
