"""Insiders' edits applied together to one site: each to its own row and field, so the rows check must name
each exactly once and nothing else (one world for all of them, not one each: a world costs more than a check)."""

from __future__ import annotations

from sqlalchemy import text

from tests.audit.test_rows_bound import audit_verify
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import World


def edit(w: World, sql: str, **params: object) -> None:
    """Run SQL as the database's owner would, behind the server's back."""
    with w.ctx.engine.begin() as conn:
        conn.execute(text(sql), params)


def each_named_once(w: World, edits: list[tuple[str, str]], ids: dict[str, object]) -> None:
    """Apply every ``(sql, named)`` edit (``:mine``: a value of the insider's own, different for each edit);
    the check names each once, by the start of its message, and nothing more; `custodia audit verify` exits 3
    naming each."""
    for i, (sql, _) in enumerate(edits):
        edit(w, sql, **ids, mine=f"{i:02x}" * 32)
    expected = [named.format(**ids) for _, named in edits]
    found = findings(w)
    assert len(found) == len(expected), found
    for named in expected:
        assert sum(f.startswith(named) for f in found) == 1, (named, found)
    out = audit_verify(w)
    assert out.exit_code == 3, out.output
    assert [named for named in expected if named not in out.output] == [], out.output
