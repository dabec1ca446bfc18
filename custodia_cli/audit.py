"""``custodia audit …``: check the whole audit log against its checkpoints, sign one, run a fixity sweep."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from evidence_server.audit.fullcheck import Verified
    from evidence_server.context import ServerContext


def _context() -> ServerContext:
    from evidence_server.config import get_settings
    from evidence_server.context import ServerContext

    return ServerContext(get_settings())


@click.group("audit")
def audit() -> None:
    """The audit log: full check, signed checkpoints, fixity."""


def _read_state(path: Path, key_id: str) -> Verified | None:
    """What the last check verified, if it was made with this key; anything unreadable starts afresh."""
    from evidence_server.audit.fullcheck import Verified

    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("key") != key_id:
            return None
        return Verified(int(doc["size"]), bytes.fromhex(doc["root"]), tuple(bytes.fromhex(h) for h in doc["subtrees"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_state(path: Path, key_id: str, verified: Verified) -> None:
    from datetime import UTC, datetime

    doc = {
        "key": key_id,
        "size": verified.size,
        "root": verified.root.hex(),
        "subtrees": [h.hex() for h in verified.subtrees],
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), "utf-8")
    tmp.replace(path)


@audit.command("verify")
@click.option(
    "--key",
    default=None,
    help="The server's public key (base64) as known out of band; default: this server's key file.",
)
@click.option("--full", is_flag=True, help="Read the whole log again, not only what came after the last check.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the last verified checkpoint is kept (default: DATA_DIR/audit/verified.json).",
)
def audit_verify(key: str | None, full: bool, state: Path | None) -> None:
    """Check the audit log against its signed checkpoints; then check every evidence-bearing row against
    the entries that recorded it.

    Incremental by default: entries up to the checkpoint the last check verified are not read again; the
    tree is extended from that checkpoint's signed state, so every later signed root it reaches proves
    the log grew without a change to what came before. --full recomputes everything from entry 0.

    Exit status: 0 all agree; 1 the log does not match what was signed; 3 the log is intact but rows differ
    from it (edited, inserted or deleted behind its back).
    """
    import hashlib

    from custodia_wire import documents, keys
    from evidence_server.audit.fullcheck import verify_log
    from evidence_server.binding.service import check_rows

    ctx = _context()
    if key:
        public_keys = [keys.public_of(documents.load_public_key_b64(key))]
    else:
        assert ctx.settings.signing_key_file is not None
        if not ctx.settings.signing_key_file.exists():
            raise click.ClickException(f"no server key at {ctx.settings.signing_key_file}; pass --key")
        public_keys = ctx.note_keys  # Ed25519, and SM2 if the server was ever configured for it
    key_id = hashlib.sha256(b"".join(k.raw() for k in public_keys)).hexdigest()
    state = state or ctx.settings.data_dir / "audit" / "verified.json"
    since = None if full else _read_state(state, key_id)
    with ctx.sessionmaker() as session:
        report = verify_log(session, public_keys, since=since)
    with ctx.sessionmaker() as session:
        rows = check_rows(session)
    ctx.close()
    if report.ok:
        read = f"{report.entries - report.since} read now, " if report.since else ""
        click.echo(
            f"OK       audit log intact: {report.entries} entries, {report.checkpoints} signed checkpoints match"
            + (
                f" ({read}entries 0..{report.since - 1} verified by an earlier check; --full reads them again)"
                if report.since
                else ""
            )
        )
        if report.verified is not None:
            _write_state(state, key_id, report.verified)
    else:
        click.echo("TAMPERED the audit log does not match what was signed:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
        click.echo(f"first bad entry: {report.describe_first_bad()}")
        if report.since:
            click.echo(f"(entries before {report.since} were verified by an earlier check; --full reads them again)")
    counted = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in rows.rows.items())
    for table in rows.unbound:  # users or stations, on a site that never adopted them into the log
        click.echo(
            f"NOTE     {table} not bound yet: `custodia audit adopt` (or the next scheduled rows check) adopts them"
        )
    if rows.ok:
        click.echo(f"OK       evidence rows agree with the log: {counted}")
    else:
        click.echo(f"ALTERED  {len(rows.findings)} evidence row field(s) differ from the log ({counted} checked):")
        for finding in rows.findings:
            click.echo(f"  - {finding.message()}")
    sys.exit(0 if report.ok and rows.ok else 1 if not report.ok else 3)


@audit.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the signed note here (and the RFC 3161 token next to it as .tst).",
)
def audit_checkpoint(out: Path | None) -> None:
    """Sign a checkpoint of the log now (time-stamped when CUSTODIA_AUDIT_TSA_URL is set); print it."""
    from evidence_server.audit.log import issue_checkpoint

    ctx = _context()
    with ctx.sessionmaker() as session:
        cp, created = issue_checkpoint(ctx, session)
    ctx.close()
    click.echo(cp.note, nl=False)
    if out is not None:
        out.write_text(cp.note, "utf-8")
        if cp.tsa_token:
            out.with_suffix(".tst").write_bytes(cp.tsa_token)
    click.echo(
        f"{'new' if created else 'unchanged since the latest'} checkpoint at size {cp.tree_size}"
        f"{', time-stamped' if cp.tsa_token else ''}",
        err=True,
    )


@audit.command("fixity")
@click.option("--files", type=int, default=None, help="How many recordings to re-read (default: the setting).")
def audit_fixity(files: int | None) -> None:
    """Run one fixity sweep now and print its report."""
    from evidence_server.fixity.service import sweep

    ctx = _context()
    report = sweep(ctx, files=files)
    ctx.close()
    click.echo(json.dumps(asdict(report), indent=2))
    sys.exit(1 if report.failed or report.missing else 0)


@audit.command("adopt")
def audit_adopt() -> None:
    """Adopt the users and stations no entry records into the log, once (the scheduled rows check does it
    too); print which. From then on the rows check binds them, and names one no entry records."""
    from evidence_server.binding.adopt import adopt_all

    ctx = _context()
    with ctx.sessionmaker() as session:
        done = adopt_all(session)
        session.commit()
    ctx.close()
    for kind, adopted in done.items():
        if adopted is None:
            click.echo(f"{kind}s were adopted before: nothing to do")
        else:
            click.echo(f"{len(adopted)} {kind}(s) adopted into the log: {adopted}; {kind}s are bound from now on")


@audit.command("grants")
@click.argument("role")
def audit_grants(role: str) -> None:
    """Print the PostgreSQL grants for the server's role: append to the audit log, never rewrite it."""
    from evidence_server.audit.dbrights import app_role_grants

    for stmt in app_role_grants(role):
        click.echo(stmt + ";")
