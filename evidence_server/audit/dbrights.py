"""PostgreSQL rights for the application's own database role: it may append to the audit log, never rewrite it.

Run the migrations as the owner of the tables; run the server as a role granted only these rights.
Without ownership the app role can neither UPDATE/DELETE audit rows (no grant, and the triggers
refuse anyway) nor disable or drop the triggers.
"""

from __future__ import annotations

import re

APPEND_ONLY_TABLES = ("audit_events", "audit_checkpoints", "audit_tiles", "ledger_entries")


def app_role_grants(role: str, schema: str = "public") -> list[str]:
    """SQL granting ``role`` what the server needs, with no UPDATE/DELETE on the audit tables."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"not a plain role name: {role!r}")
    append_only = ", ".join(f"{schema}.{t}" for t in APPEND_ONLY_TABLES)
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {append_only} FROM {role}",
        f"REVOKE DELETE, TRUNCATE ON {schema}.audit_log_head FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]
