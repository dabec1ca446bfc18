"""Incremental scans are triggered by the changes they depend on, on both databases; on PostgreSQL
audit entries are queued by Core inserts (group commit) and never appear in ``session.new``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from evidence_server.accounts.models import User
from evidence_server.audit.service import group_commit
from evidence_server.audit.service import record as audit
from evidence_server.compliance import tasks
from tests.compliance.conftest import Site


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, name: str, *args: Any) -> None:
        self.sent.append((name, args))


def test_a_download_triggers_an_access_rescan_on_either_database(site: Site) -> None:
    sent = Recorder()
    ctx = SimpleNamespace(settings=SimpleNamespace(compliance_incremental=True), sessionmaker=site.sessionmaker)
    tasks.install(ctx, sent)  # type: ignore[arg-type]  (this test's own sessionmaker: gone with it)
    with site.session() as s:
        officer = site.users["officer1"]
        user = s.get(User, officer)
        audit(s, "recording.download", object_type="recording", object_id=1, actor=user)
        audit(s, "recording.view", object_type="recording", object_id=1, actor=user)  # not an access action
        s.commit()
        queued_on_pg = group_commit(s)
    assert ("compliance.scan_access", ([officer],)) in sent.sent
    assert len([n for n, _ in sent.sent if n == "compliance.scan_access"]) == 1
    # a rolled-back download triggers nothing
    sent.sent.clear()
    with site.session() as s:
        audit(s, "recording.download", object_type="recording", object_id=2, actor=s.get(User, officer))
        s.rollback()
    assert sent.sent == []
    assert queued_on_pg is (site.settings.database_url.startswith("postgresql"))
