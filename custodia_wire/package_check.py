"""Checking a court package offline, with two separate answers: is it *intact*, and is it *signed by a key
you trust*; and, for ``custodia.case-package/2``, is its custody proven in the audit log.

Each check that fails stands for an exit status (``Status``); the package's status is the first of
``PRECEDENCE`` that any finding stands for, so a forged package is named by what is wrong with it, and an
intact package from a key nobody vouched for is never called verified.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from cryptography import x509

from custodia_wire import auditlog, documents, extraction, keys, timestamps
from custodia_wire import package as pkg
from custodia_wire.auditlog import Checkpoint, LogError
from custodia_wire.fingerprint import Fingerprint
from custodia_wire.package import Finding


class Status(IntEnum):
    VERIFIED = 0  # intact, custody proven in the signed log, signed by a key you trust
    NOT_INTACT = 1  # a file or ledger entry differs from the manifest, was added or is missing; unreadable
    USAGE = 2  # the command was called wrongly (click's own)
    SIGNER_UNKNOWN = 3  # everything checks out, but you named no key you trust: nothing shows who made it
    NOT_AUTHENTIC = 4  # the manifest's signature does not verify, or a key you do not trust made it
    CUSTODY_MISMATCH = 5  # an original is not the bytes its custody entry recorded at ingest
    CHECKPOINT_INVALID = 6  # the checkpoint is altered, missing, by another key, or not consistent with yours
    CUSTODY_NOT_IN_LOG = 7  # a custody entry removed, added or altered, or not proven in the checkpoint
    STALE = 8  # older than the checkpoint you require it to cover: a replayed package
    TIMESTAMP_INVALID = 9  # a time-stamp is for other bytes, or not by an authority you trust


PRECEDENCE = (
    Status.CUSTODY_MISMATCH,
    Status.NOT_AUTHENTIC,
    Status.CHECKPOINT_INVALID,
    Status.CUSTODY_NOT_IN_LOG,
    Status.NOT_INTACT,
    Status.STALE,
    Status.TIMESTAMP_INVALID,
    Status.SIGNER_UNKNOWN,
)
#: the actions whose entries record an original's digests when it was verified on receipt
DIGEST_ACTIONS = ("recording.verified",)


@dataclass
class Options:
    """What the reader brings: the keys they trust, the TSA roots they trust, the newest checkpoint they hold."""

    trust: keys.Trust = field(default_factory=lambda: keys.Trust([], set()))
    tsa_roots: list[x509.Certificate] = field(default_factory=list)
    newer_checkpoint: str | None = None  # a signed note the package must be at least as new as
    consistency: dict[str, Any] | None = None  # custodia.audit-consistency/1 from the package's to the newer


def status_of(findings: list[Finding]) -> Status:
    codes = {f.code for f in findings}
    for status in PRECEDENCE:
        if status in codes:
            return status
    return Status.VERIFIED if findings else Status.NOT_INTACT


@dataclass
class _Run:
    reader: pkg.Reader
    present: set[str]
    options: Options
    echo: Callable[[Finding], object] | None
    findings: list[Finding] = field(default_factory=list)

    def note(self, ok: bool, subject: str, message: str, status: Status | None = None) -> None:
        f = Finding(ok, subject, message, None if status is None else int(status))
        self.findings.append(f)
        if self.echo is not None:
            self.echo(f)

    def read(self, name: str) -> bytes | None:
        if name not in self.present:
            return None
        data, _ = pkg._read_all(self.reader, name)
        return data


def verify(target: Path, options: Options, echo: Callable[[Finding], object] | None = None) -> list[Finding]:
    """Every check of a package (either format); every finding, in order."""
    try:
        reader = pkg.open_package(target)
    except documents.DocumentError as exc:
        f = Finding(False, str(target), str(exc))
        if echo is not None:
            echo(f)
        return [f]
    run = _Run(reader, set(reader.names()), options, echo)
    raw = run.read(pkg.MANIFEST_NAME)
    try:
        manifest = json.loads(raw.decode("utf-8")) if raw is not None else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        run.note(
            False, pkg.MANIFEST_NAME, "missing or not readable JSON: this is not a court package, or it was damaged"
        )
        return run.findings
    if manifest.get("format") == pkg.PACKAGE_FORMAT:
        _legacy(run, target, manifest)
    elif manifest.get("format") == pkg.PACKAGE_FORMAT_V2:
        assert raw is not None
        _v2(run, raw, manifest)
    else:
        run.note(False, pkg.MANIFEST_NAME, f"unknown package format {manifest.get('format')!r}")
    return run.findings


# --- custodia.case-package/1 ------------------------------------------------------------------------


def _legacy(run: _Run, target: Path, manifest: dict[str, Any]) -> None:
    """A package exported before explicit trust: signature inside the manifest, no checkpoint."""
    for f in pkg.verify(target):
        run.findings.append(f)
        if run.echo is not None:
            run.echo(f)
    try:
        signer = keys.load(str(manifest["server"]["public_key"]))
    except (KeyError, TypeError, keys.KeyProblem):
        return
    _trust(run, signer)
    run.note(
        True,
        pkg.MANIFEST_NAME,
        f"{pkg.PACKAGE_FORMAT} carries no log checkpoint: its custody entries are not proven in the signed log",
    )


# --- custodia.case-package/2 ------------------------------------------------------------------------


def _trust(run: _Run, signer: keys.PublicKey) -> bool:
    """The second answer: is the signer a key the reader trusts."""
    trust = run.options.trust
    if not trust.given:
        run.note(
            False,
            "signer",
            f"key {signer.fingerprint} is NOT CHECKED against any key you trust: compare it with the fingerprint "
            "printed on the paper form, then pass --key-fingerprint, --key or --trusted-keys",
            Status.SIGNER_UNKNOWN,
        )
        return False
    if trust.trusts(signer):
        run.note(True, "signer", f"signed by a key you trust ({signer.alg}, {signer.fingerprint})")
        return True
    run.note(
        False,
        "signer",
        f"signed by key {signer.fingerprint}, which is not a key you trust: a package made by someone else",
        Status.NOT_AUTHENTIC,
    )
    return False


def _signer(manifest: dict[str, Any]) -> keys.PublicKey:
    server = manifest.get("server") or {}
    key = keys.load(str(server.get("public_key_pem") or server.get("public_key")), server.get("alg"))
    if server.get("alg", keys.ED25519) != key.alg:
        raise keys.KeyProblem(f"the manifest names {server.get('alg')!r} but its key is {key.alg}")
    return key


def _v2(run: _Run, raw: bytes, manifest: dict[str, Any]) -> None:
    try:
        signer = _signer(manifest)
        items = [i for i in manifest["files"] if isinstance(i, dict)]
    except (KeyError, TypeError, keys.KeyProblem) as exc:
        run.note(False, pkg.MANIFEST_NAME, f"malformed manifest: {exc}", Status.NOT_AUTHENTIC)
        return
    signature = run.read(pkg.SIGNATURE_NAME)
    try:
        if signature is None:
            raise keys.KeyProblem(f"{pkg.SIGNATURE_NAME} is missing")
        signer.verify(signature, raw)
        run.note(True, pkg.MANIFEST_NAME, f"signature valid ({signer.alg}, key {signer.fingerprint})")
    except keys.KeyProblem as exc:
        run.note(False, pkg.MANIFEST_NAME, f"NOT AUTHENTIC: {exc}", Status.NOT_AUTHENTIC)
    trusted = _trust(run, signer)
    got: dict[str, Fingerprint] = {}
    for item in items:
        for f in pkg._check_file(run.reader, item, run.present):
            status = Status.CUSTODY_NOT_IN_LOG if item.get("role") == "custody" and ": entry " in f.subject else None
            run.note(f.ok, f.subject, f.message, status)
        if item.get("path") in run.present and item.get("role") == "original":
            got[str(item["path"])] = pkg._fingerprint(run.reader, str(item["path"]), sm3=bool(item.get("sm3")))[0]
    for name, algo in pkg.SUMS:
        for f in pkg._check_sums(run.reader, name, algo, items):
            run.note(f.ok, f.subject, f.message)
    for extra in sorted(run.present - {i.get("path") for i in items} - pkg.UNLISTED):
        run.note(False, extra, "is not in the manifest (added after export)")
    _lists(run, items, signer)
    checkpoint = _checkpoint(run, manifest, signer, trusted)
    if checkpoint is not None:
        _custody(run, items, got, checkpoint)
        _replay(run, checkpoint, signer)
    _stamps(run)


def _lists(run: _Run, items: list[dict[str, Any]], signer: keys.PublicKey) -> None:
    """The package's 电子数据提取清单: signed by the package's signer, its PDF the one it names, and every
    original of the package listed with the package's own size and digests (and its SM3 recomputed)."""
    originals = {str(i.get("path")): i for i in items if i.get("role") == "original"}
    for item in (i for i in items if i.get("role") == extraction.LIST_ROLE):
        path = str(item.get("path"))
        try:
            doc = json.loads((run.read(path) or b"").decode("utf-8"))
        except ValueError:
            run.note(False, path, "not readable JSON", Status.NOT_INTACT)
            continue
        pdf_item = next(
            (
                i
                for i in items
                if i.get("role") == extraction.LIST_PDF_ROLE and i.get("document") == item.get("document")
            ),
            None,
        )
        pdf = run.read(str(pdf_item.get("path"))) if pdf_item else None
        # a list that is not the package's own (another signer, another PDF) makes the package not intact: the
        # manifest and the checkpoint name who made the package, and their own checks rank before this one
        for f in extraction.check_document(doc, keys.Trust([signer], set()), pdf, label=path):
            subject = str(pdf_item.get("path")) if f.subject == "pdf" and pdf_item else path
            message = f.message
            if f.subject == "signer":
                message = "signed by the package's signer" if f.ok else "NOT signed by the package's signer"
            run.note(f.ok, subject, message, None if f.ok else Status.NOT_INTACT)
        if pdf_item is None:
            run.note(False, path, "its PDF is not in the package", Status.NOT_INTACT)
        _list_files(run, path, doc if isinstance(doc, dict) else {}, originals)


def _list_files(run: _Run, path: str, doc: dict[str, Any], originals: dict[str, dict[str, Any]]) -> None:
    listed = {str(f.get("path")): f for f in doc.get("files") or [] if isinstance(f, dict)}
    problems = [f"{p} is in the package but not in the list" for p in sorted(originals.keys() - listed.keys())]
    problems += [f"{p} is listed but not in the package" for p in sorted(listed.keys() - originals.keys())]
    for p in sorted(listed.keys() & originals.keys()):
        f, o = listed[p], originals[p]
        wrong = [k for k in ("size", "sha256", "blake3") if f.get(k) != o.get(k)]
        if f.get("sm3") and o.get("sm3"):  # the manifest's SM3, checked against the bytes above
            wrong += ["sm3"] if f.get("sm3") != o.get("sm3") else []
        elif f.get("sm3") and extraction.sm3_available():  # a manifest without SM3: from the bytes
            with run.reader.open(p) as stream:
                wrong += ["sm3"] if extraction.check_values(stream).sm3 != f.get("sm3") else []
        if wrong:
            problems.append(f"{p}: the list's {', '.join(wrong)} differ from the package's")
    if problems:
        run.note(False, path, "does not list the package's files: " + "; ".join(problems), Status.NOT_INTACT)
    else:
        run.note(True, path, f"lists exactly the package's {len(originals)} originals with their check values")


def _checkpoint(run: _Run, manifest: dict[str, Any], signer: keys.PublicKey, trusted: bool) -> Checkpoint | None:
    """The log's checkpoint, signed by the signer (and by a key you trust, when you named one)."""
    note = run.read(pkg.CHECKPOINT_NAME)
    if note is None:
        run.note(False, pkg.CHECKPOINT_NAME, "missing: custody cannot be proven in the log", Status.CHECKPOINT_INVALID)
        return None
    candidates = run.options.trust.keys_for(signer) if run.options.trust.given else [signer]
    problems = []
    for key in candidates:
        try:
            cp = auditlog.verify_note(note.decode("utf-8"), key)
            break
        except (LogError, UnicodeDecodeError, keys.KeyProblem) as exc:
            problems.append(str(exc))
    else:
        run.note(
            False,
            pkg.CHECKPOINT_NAME,
            f"ALTERED or not signed by {'a key you trust' if run.options.trust.given else 'the package signer'}: "
            + "; ".join(problems),
            Status.CHECKPOINT_INVALID,
        )
        return None
    said = manifest.get("checkpoint") or {}
    if (said.get("tree_size"), said.get("root_hash")) != (cp.tree_size, cp.root_hash.hex()):
        run.note(False, pkg.CHECKPOINT_NAME, "is not the checkpoint the manifest names", Status.CHECKPOINT_INVALID)
        return None
    run.note(
        True,
        pkg.CHECKPOINT_NAME,
        f"log {cp.origin!r} at {cp.tree_size} entries, issued {cp.issued_at}, root {cp.root_hash.hex()[:16]}…, "
        f"signature valid{'' if trusted else ' (by the package signer, not checked against a key you trust)'}",
    )
    return cp


def _custody_entries(run: _Run, items: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in items:
        if item.get("role") != "custody":
            continue
        data = run.read(str(item.get("path")))
        try:
            doc = json.loads((data or b"").decode("utf-8"))
            entries = doc["entries"]
        except (ValueError, KeyError, TypeError):
            continue  # named already as not intact
        for entry in entries:
            if isinstance(entry, dict):
                yield str(item["path"]), entry


def _custody(run: _Run, items: list[dict[str, Any]], got: dict[str, Fingerprint], cp: Checkpoint) -> None:
    """Every custody entry proven in the checkpoint; every original the bytes its ingest entry recorded."""
    proven: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for path, entry in _custody_entries(run, items):
        proof = entry.get("inclusion") or {}
        doc = {
            "format": auditlog.INCLUSION_FORMAT,
            "leaf_index": proof.get("leaf_index"),
            "tree_size": proof.get("tree_size"),
            "audit_path": proof.get("audit_path", []),
            "entry": {k: entry.get(k) for k in auditlog.LEAF_FIELDS},
        }
        try:
            auditlog.verify_inclusion_document(doc, cp)
        except (LogError, TypeError, AttributeError) as exc:
            run.note(
                False, f"{path}: entry seq {entry.get('seq')}", f"NOT IN THE LOG: {exc}", Status.CUSTODY_NOT_IN_LOG
            )
            continue
        count += 1
        obj = entry.get("object") or {}
        if entry.get("action") in DIGEST_ACTIONS and obj.get("type") == "recording":
            proven.setdefault(str(obj.get("id")), []).append(entry)
    if count:
        run.note(True, "custody", f"{count} custody entries are in the signed log of {cp.tree_size} entries")
    for item in items:
        if item.get("role") != "original":
            continue
        path, rid = str(item.get("path")), str((item.get("recording") or {}).get("id"))
        fp = got.get(path)
        if fp is None:
            continue  # missing: named already
        ingest = proven.get(rid, [])
        if not ingest:
            run.note(
                False,
                path,
                f"no custody entry in the signed log records recording {rid}'s digests at ingest",
                Status.CUSTODY_MISMATCH,
            )
            continue
        d = ingest[0].get("details") or {}
        sm3_differs = fp.sm3 is not None and d.get("sm3") is not None and fp.sm3 != d.get("sm3")
        if sm3_differs or (fp.size, fp.blake3, fp.sha256) != (d.get("size"), d.get("blake3"), d.get("sha256")):
            run.note(
                False,
                path,
                f"NOT THE ORIGINAL: its bytes are {fp.blake3}, {fp.size} bytes; custody entry seq "
                f"{ingest[0].get('seq')} recorded {d.get('blake3')}, {d.get('size')} bytes at ingest",
                Status.CUSTODY_MISMATCH,
            )
        else:
            run.note(True, path, f"the bytes recorded at ingest (custody entry seq {ingest[0].get('seq')})")


def _replay(run: _Run, cp: Checkpoint, signer: keys.PublicKey) -> None:
    """Against a newer checkpoint the reader holds: a package must cover at least that much of the log."""
    if run.options.newer_checkpoint is None:
        return
    subject = "replay"
    candidates = run.options.trust.keys_for(signer) if run.options.trust.given else []
    newer = None
    for key in candidates:
        try:
            newer = auditlog.verify_note(run.options.newer_checkpoint, key)
            break
        except (LogError, keys.KeyProblem):
            continue
    if newer is None:
        run.note(
            False,
            subject,
            "the checkpoint you gave is not signed by a key you trust: nothing can be said about replay",
            Status.CHECKPOINT_INVALID,
        )
        return
    if run.options.consistency is not None:
        old, new = (cp, newer) if cp.tree_size <= newer.tree_size else (newer, cp)
        try:
            auditlog.verify_consistency_document(run.options.consistency, old, new)
            run.note(True, subject, f"the log of {new.tree_size} entries extends the log of {old.tree_size} unchanged")
        except LogError as exc:
            run.note(
                False, subject, f"the two logs disagree (a rewritten or forked log): {exc}", Status.CHECKPOINT_INVALID
            )
            return
    elif cp.tree_size == newer.tree_size and cp.root_hash != newer.root_hash:
        run.note(
            False, subject, "same size as your checkpoint but another root: a forked log", Status.CHECKPOINT_INVALID
        )
        return
    if cp.tree_size < newer.tree_size:
        run.note(
            False,
            subject,
            f"STALE: the package covers the log up to {cp.tree_size} entries ({cp.issued_at}); your checkpoint "
            f"has {newer.tree_size} ({newer.issued_at}). Custody events after the export (an unlink, a damaged "
            "copy, a disposal) are not in it: ask for a fresh export",
            Status.STALE,
        )
    else:
        run.note(True, subject, f"the package covers your checkpoint of {newer.tree_size} entries")


def _stamps(run: _Run) -> None:
    for token_name, data_name in (
        (pkg.MANIFEST_TST_NAME, pkg.MANIFEST_NAME),
        (pkg.CHECKPOINT_TST_NAME, pkg.CHECKPOINT_NAME),
    ):
        token, data = run.read(token_name), run.read(data_name)
        if token is None or data is None:
            continue
        try:
            if run.options.tsa_roots:
                stamp = timestamps.verify(token, data, run.options.tsa_roots)
                run.note(True, token_name, f"{data_name} existed at {stamp.time.isoformat()} ({stamp.authority})")
            else:
                stamp = timestamps.stamped(token, data)
                run.note(
                    True,
                    token_name,
                    f"stamps {data_name} at {stamp.time.isoformat()} by {stamp.authority}; the authority is not "
                    "checked (pass --tsa-ca with its CA certificate)",
                )
        except timestamps.TimestampProblem as exc:
            run.note(False, token_name, str(exc), Status.TIMESTAMP_INVALID)
