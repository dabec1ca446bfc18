"""Schema migrations (Alembic) as an explicit step (``custodia db upgrade``), and what PostgreSQL's
administrator should hear about the database's upkeep (``maintenance_warnings``, logged at startup)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


#: tables whose rows churn (a queue row inserted and deleted per audited read) or whose statistics the
#: planner leans on (the flags after a scan): without vacuum they bloat, without ANALYZE they mislead
VACUUM_DEPENDENT = ("audit_pending", "compliance_flags", "recordings", "ledger_entries", "login_sessions")


def maintenance_warnings(engine: Engine) -> list[str]:
    """What the server's administrator should hear about PostgreSQL's upkeep, at startup: autovacuum off
    for the whole server or for one of ``VACUUM_DEPENDENT``. Nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    out = []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'track_counts')"))
        settings = {str(name): str(setting) for name, setting in rows}
        off = [name for name in ("autovacuum", "track_counts") if settings.get(name) == "off"]
        if off:
            out.append(
                f"PostgreSQL runs with {' and '.join(f'{n} = off' for n in off)}: the audit queue "
                "(audit_pending, a row in and out per audited read) bloats and the planner's statistics go "
                "stale; turn autovacuum on in postgresql.conf"
            )
        disabled = conn.scalars(
            text(
                "SELECT relname FROM pg_class WHERE relname = ANY(:names) AND relkind = 'r' "
                "AND reloptions @> ARRAY['autovacuum_enabled=false'] ORDER BY relname"
            ),
            {"names": list(VACUUM_DEPENDENT)},
        ).all()
        if disabled:
            out.append(
                f"autovacuum is disabled for {', '.join(disabled)}: ALTER TABLE … RESET (autovacuum_enabled) on each"
            )
    return out
