"""Offline verification: files against fingerprints, manifests, signed receipts and court packages.
Trusts no server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from custodia_wire import documents, fingerprint, package
from custodia_wire.paths import UnsafePathError, check_device_path

Echo = Callable[[str], object]


def check_file(path: Path, expected: list[str], echo: Echo) -> bool:
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


def check_manifest_files(root: Path, files: list[dict[str, object]], echo: Echo) -> bool:
    ok = True
    for f in files:
        rel = str(f["path"])
        try:
            check_device_path(rel)
        except UnsafePathError as exc:
            echo(f"UNSAFE   {rel!r}: {exc}")
            ok = False
            continue
        path = root / rel
        if not path.is_file():
            echo(f"MISSING  {rel}")
            ok = False
            continue
        got = fingerprint.of_file(path)
        if got.size != f["size"] or got.blake3 != f["blake3"] or got.sha256 != f["sha256"]:
            echo(f"MISMATCH {rel}: size {got.size} {got.blake3} {got.sha256}")
            ok = False
        else:
            echo(f"OK       {rel}")
    return ok


def check_package(target: Path, key: str | None, echo: Echo) -> bool:
    """A court package (ZIP or unpacked folder): signature, every file, every entry; names what fails."""
    findings = package.verify(target, trusted_key=key, echo=lambda f: echo(f.line()))
    ok = package.passed(findings)
    failed = [f for f in findings if not f.ok]
    echo(f"package {target}: " + ("VERIFIED, nothing was changed since export" if ok else
                                  f"FAILED, {len(failed)} problem(s): " + ", ".join(f.subject for f in failed)))
    return ok


def run(target: Path, *, fingerprints: list[str], manifest: Path | None, receipt: Path | None,
        key: str | None, echo: Echo) -> bool:
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
        echo(f"{fingerprint.of_file(target).blake3}  {target}" if target.is_file() else "nothing to check")
        if target.is_file():
            echo(f"{fingerprint.of_file(target).sha256}  {target}")
    return ok
