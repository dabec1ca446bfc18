"""Fresh, migrated databases for tests: SQLite files and PostgreSQL databases cloned from a template.

Migrations run once per session into a template; each test gets a copy (a file copy for SQLite,
``CREATE DATABASE … TEMPLATE`` for PostgreSQL), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from tests.support import services

PG_HOST = os.environ.get("CUSTODIA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CUSTODIA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CUSTODIA_TEST_PG_USER", "postgres")


def pg_url(dbname: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def _admin_conn():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True)


class SqliteTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.template: Path | None = None

    def fresh(self, dest_dir: Path) -> str:
        from evidence_server.dbadmin import upgrade

        if self.template is None:
            self.template = self.root / "template.sqlite3"
            upgrade(f"sqlite:///{self.template}")
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / "custodia.sqlite3"
        shutil.copyfile(self.template, dest)
        return f"sqlite:///{dest}"


class PostgresTemplates:
    def __init__(self) -> None:
        self.template: str | None = None
        self.created: list[str] = []

    def available(self) -> bool:
        return services.port_open(PG_HOST, PG_PORT)

    def fresh(self) -> str:
        from evidence_server.dbadmin import upgrade

        if not self.available():
            services.missing(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
        with _admin_conn() as conn:
            if self.template is None:
                name = f"custodia_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                conn.execute(f'CREATE DATABASE "{name}"')
                self.created.append(name)
                upgrade(pg_url(name))
                self.template = name
            name = f"custodia_t_{uuid.uuid4().hex[:12]}"
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
        return pg_url(name)

    def drop_all(self) -> None:
        if not self.created:
            return
        with _admin_conn() as conn:
            for name in reversed(self.created):
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.created.clear()
