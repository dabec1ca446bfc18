"""Background task: check every evidence-bearing row against the audit log (scheduled, idempotent)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from evidence_server.audit.service import record as audit
from evidence_server.background.registry import task
from evidence_server.binding.adopt import adopt_all
from evidence_server.binding.service import check_rows
from evidence_server.context import ServerContext
from evidence_server.uploads.models import IntegrityIncident

log = logging.getLogger(__name__)
INCIDENT = "row_differs_from_log"
REPORTED = 100  # findings named in the audit entry of one run (the count is always there)


@task("binding.check_rows", every=lambda s: s.binding_check_interval_s)
def check_rows_task(ctx: ServerContext) -> dict[str, Any]:
    """Adopt the users and stations into the log if that was never done (``adopt``); run the rows check;
    audit the run; raise one integrity incident per finding not reported before."""
    with ctx.sessionmaker() as session:
        adopt_all(session)
        session.commit()
    with ctx.sessionmaker() as session:
        report = check_rows(session)
    messages = [f.message() for f in report.findings]
    with ctx.sessionmaker() as session:
        known = {
            (i.details or {}).get("message")
            for i in session.scalars(select(IntegrityIncident).where(IntegrityIncident.kind == INCIDENT))
        }
        for finding, message in zip(report.findings, messages, strict=True):
            if message in known:
                continue
            session.add(
                IntegrityIncident(
                    kind=INCIDENT,
                    recording_id=finding.row_id
                    if finding.table == "recordings" and (finding.field or finding.seq is None)
                    else None,
                    details={
                        "message": message,
                        "table": finding.table,
                        "row_id": finding.row_id,
                        "field": finding.field,
                        "seq": finding.seq,
                    },
                )
            )
        audit(
            session,
            "audit.rows_checked",
            object_type="store",
            details={"rows": report.rows, "findings": len(messages), "first": messages[:REPORTED]},
        )
        session.commit()
    for message in messages[:REPORTED]:
        log.error("evidence row differs from the audit log: %s", message)
    return {"rows": report.rows, "findings": len(messages)}
