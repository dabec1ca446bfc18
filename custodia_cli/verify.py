"""Offline verification: files against fingerprints, manifests, signed receipts and court packages.
Trusts no server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from custodia_wire import fingerprint
from custodia_wire.paths import UnsafePathError, check_device_path

Echo = Callable[[str], object]


def check_file(path: Path, expected: list[str], echo: Echo) -> bool:
    algos = {fingerprint.parse(notation)[0] for notation in expected}
    if algos == {"blake3"}:  # no SHA-256 asked for: do not compute it
        got = fingerprint.Fingerprint(fingerprint.blake3_of_file(path)[0], "", 0)
    else:
        got = fingerprint.of_file(path)
    ok = True
    for notation in expected:
        algo, _ = fingerprint.parse(notation)
        actual = got.blake3 if algo == "blake3" else got.sha256
        if actual == notation:
            echo(f"OK       {path}  {notation}")
        else:
            echo(f"MISMATCH {path}  expected {notation}, got {actual}")
            ok = False
    return ok


def _locate(root: Path, rel: str, echo: Echo) -> Path | None:
    """The file a listed path names under ``root``; None (said why) if unsafe or missing."""
    try:
        check_device_path(rel)
    except UnsafePathError as exc:
        echo(f"UNSAFE   {rel!r}: {exc}")
        return None
    path = root / rel
    if not path.is_file():
        echo(f"MISSING  {rel}")
        return None
    return path


def check_manifest_files(root: Path, files: list[dict[str, object]], echo: Echo) -> bool:
    ok = True
    for f in files:
        rel = str(f["path"])
        path = _locate(root, rel, echo)
        if path is None:
            ok = False
            continue
        got = fingerprint.of_file(path)
        if got.size != f["size"] or got.blake3 != f["blake3"] or got.sha256 != f["sha256"]:
            echo(f"MISMATCH {rel}: size {got.size} {got.blake3} {got.sha256}")
            ok = False
        else:
            echo(f"OK       {rel}")
    return ok


def list_blake3(root: Path, echo: Echo) -> bool:
    """``b3sum``'s output for every file under ``root`` (paths relative to it, sorted)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for path in files:
        echo(f"{fingerprint.blake3_of_file(path)[0].split(':', 1)[1]}  {path.relative_to(root).as_posix()}")
    return True


def check_sums(sums: Path, root: Path | None, echo: Echo) -> bool:
    """Check files against a ``b3sum`` listing (``<64 hex>  <path>`` per line), BLAKE3 only.

    Paths are taken relative to ``root`` (default: the listing's folder); absolute paths and
    ``..`` are refused, so a listing cannot send the check outside the folder it is about.
    """
    base = root if root is not None else sums.parent
    ok, checked = True, 0
    for no, line in enumerate(sums.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            echo(f"BAD LINE {sums}:{no}: expected '<64 hex>  <path>' as b3sum prints")
            ok = False
            continue
        path = _locate(base, rel, echo)
        if path is None:
            ok = False
            continue
        got = fingerprint.blake3_of_file(path)[0]
        checked += 1
        if got == "blake3:" + digest:
            echo(f"OK       {rel}")
        else:
            echo(f"MISMATCH {rel}: expected blake3:{digest}, got {got}")
            ok = False
    if checked == 0 and ok:
        echo(f"nothing to check in {sums}")
        return False
    return ok


def check_package(target: Path, key: str | None, echo: Echo) -> bool:
    """A court package (ZIP or unpacked folder): signature, every file, every entry; names what fails."""
    from custodia_wire import package

    findings = package.verify(target, trusted_key=key, echo=lambda f: echo(f.line()))
    ok = package.passed(findings)
    failed = [f for f in findings if not f.ok]
    echo(
        f"package {target}: "
        + (
            "VERIFIED, nothing was changed since export"
            if ok
            else f"FAILED, {len(failed)} problem(s): " + ", ".join(f.subject for f in failed)
        )
    )
    return ok


def run(
    target: Path, *, fingerprints: list[str], manifest: Path | None, receipt: Path | None, key: str | None, echo: Echo
) -> bool:
    from custodia_wire import documents, package

    if not (fingerprints or manifest or receipt) and package.is_package(target):
        return check_package(target, key, echo)
    ok = True
    if fingerprints:
        if not target.is_file():
            echo(f"{target} is not a file")
            return False
        ok &= check_file(target, fingerprints, echo)
    if manifest is not None:
        try:
            m = documents.Manifest.from_dict(json.loads(manifest.read_text("utf-8")))
        except (ValueError, documents.DocumentError) as exc:
            echo(f"BAD MANIFEST {manifest}: {exc}")
            return False
        ok &= check_manifest_files(target, [f.__dict__ for f in m.files], echo)
    if receipt is not None:
        if not key:
            echo("--receipt needs --key (the server's public key, base64)")
            return False
        try:
            doc = json.loads(receipt.read_text("utf-8"))
            files = documents.confirmed_files(doc, documents.load_public_key_b64(key))
            echo(f"OK       receipt {receipt}: signature valid, {len(files)} files")
        except (ValueError, documents.DocumentError) as exc:
            echo(f"BAD RECEIPT {receipt}: {exc}")
            return False
        if target.is_dir():
            ok &= check_manifest_files(target, list(files.values()), echo)
    if not (fingerprints or manifest or receipt):
        if target.is_dir():
            return list_blake3(target, echo)
        got = fingerprint.of_file(target)  # one read for both lines
        echo(f"{got.blake3}  {target}")
        echo(f"{got.sha256}  {target}")
    return ok
