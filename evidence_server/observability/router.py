"""``GET /metrics`` for Prometheus, admitted with the monitoring token (``CUSTODIA_METRICS_TOKEN``)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from evidence_server.context import CtxDep
from evidence_server.security import ROLE_MARK, bearer_token

router = APIRouter(tags=["health"])


def require_monitoring(request: Request, ctx: CtxDep) -> None:
    """Admits the monitoring system by its bearer token; refuses everyone while no token is set."""
    expected = ctx.settings.metrics_token
    if not expected:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "metrics are off: set CUSTODIA_METRICS_TOKEN")
    given = bearer_token(request) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "monitoring token required", headers={"WWW-Authenticate": "Bearer"}
        )


setattr(require_monitoring, ROLE_MARK, frozenset({"monitoring"}))


@router.get("/metrics", dependencies=[Depends(require_monitoring)], include_in_schema=False)
async def metrics(ctx: CtxDep) -> Response:
    body = await run_in_threadpool(generate_latest, ctx.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
