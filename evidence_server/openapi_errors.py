"""The error answers every API operation can give, written into /openapi.json.

FastAPI documents a route's success and its 422 only. The guards (security.py), the body limit
(limits.py), the database error handlers (app.py) and the routes' own HTTPExceptions answer 400,
401, 403, 404, 409, 413, 503 and more, all as ``{"detail": ...}``. This adds them by what each
route is (guarded, with path parameters, with a body), so clients and the schema-conformance tests
(tests/security/test_api_fuzz.py) see the whole contract. A route with a special answer of its own
declares it with ``responses=`` on the route, which wins over what is added here. It also makes a
405 name every method its path takes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from evidence_server.security import route_table

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "what went wrong: a message, or a list of field errors for a malformed request",
        }
    },
    "required": ["detail"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

DESCRIPTIONS = {
    400: "malformed request",
    401: "not authenticated",
    403: "your role (or unit) may not do this",
    404: "no such object, or not yours to see",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "invalid request",
    429: "too many requests; see Retry-After",
    503: "the database is unavailable for a moment; retry after Retry-After",
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Downloads named by their extension (exports, packages) answer their file type, not JSON.
FILE_TYPES = {
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def expected_errors(methods: set[str], path: str, roles: frozenset[str]) -> set[int]:
    """The error statuses a route may answer, from what it is. Pure."""
    # 503: the database is unavailable for a moment (app.py), retry after Retry-After; 429: a client over
    # its budget of anonymous requests and failed authentications (security.py), or a station's upload rate
    codes = {422, 429, 503}
    if "public" not in roles:
        # 404: something the request names (in its path, query or body) is not there; 409: not in this state
        codes |= {401, 403, 404, 409}
    if "{" in path:
        codes.add(404)
    if methods & UNSAFE:
        codes |= {400, 409, 413}
    return codes


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the error answers of every API operation, and 405 answers name
    every method the path takes (Starlette's name only those of the first route that matched)."""

    # Walking the routes is slow: do it on first need, not for every app built (tests build many).
    @cache
    def table() -> list[tuple[str, str, frozenset[str]]]:
        return route_table(app)

    @cache
    def methods_by_path() -> list[tuple[Any, set[str]]]:
        return [(compile_path(path)[0], set(methods.split(","))) for methods, path, _ in table()]

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: HTTPException) -> Response:
        allowed: set[str] = set()
        for regex, methods in methods_by_path():
            if regex.match(request.url.path):
                allowed |= methods
        return JSONResponse(
            {"detail": exc.detail},
            status_code=405,
            headers={"Allow": ", ".join(sorted(allowed)) or str((exc.headers or {}).get("Allow", ""))},
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            routes=app.routes,
            openapi_version=app.openapi_version,
            description=app.description,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        roles_of = {(path, method): roles for methods, path, roles in table() for method in methods.split(",")}
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                roles = roles_of.get((path, method.upper()), frozenset())
                _add_errors(op["responses"], expected_errors({method.upper()}, path, roles))
                _add_file_type(op["responses"], path)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_file_type(responses: dict[str, Any], path: str) -> None:
    media = next((t for ext, t in FILE_TYPES.items() if path.endswith(ext)), None)
    ok = responses.get("200")
    if media is not None and ok is not None:
        ok.setdefault("content", {}).setdefault(media, {"schema": {"type": "string", "format": "binary"}})


def _add_errors(responses: dict[str, Any], codes: set[int]) -> None:
    for code in sorted(codes):
        entry = responses.setdefault(str(code), {"description": DESCRIPTIONS.get(code, "error")})
        content = entry.setdefault("content", {})
        json_body = content.get("application/json")
        if json_body is None or code == 422:  # a route's 422 may carry a plain message too
            content["application/json"] = {"schema": ERROR_REF}
