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
        got = fingerprint.of_file(path, sm3="sm3" in algos)
    ok = True
    for notation in expected:
        algo, _ = fingerprint.parse(notation)
        actual = {"blake3": got.blake3, "sha256": got.sha256, "sm3": got.sm3}[algo]
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
        got = fingerprint.of_file(path, sm3=bool(f.get("sm3")))
        if (
            got.size != f["size"]
            or got.blake3 != f["blake3"]
            or got.sha256 != f["sha256"]
            or (f.get("sm3") and got.sm3 != f["sm3"])
        ):
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


def is_package(target: Path) -> bool:
    from custodia_wire import package

    return package.is_package(target)


def check_package(
    target: Path,
    *,
    key: str | None,
    trusted_keys: list[Path],
    key_fingerprints: list[str],
    tsa_ca: Path | None,
    checkpoint: Path | None,
    consistency: Path | None,
    echo: Echo,
) -> int:
    """A court package (ZIP or unpacked folder): intact? signed by a key you trust? custody in the log?
    Names what fails; returns the exit status (custodia_wire.package_check.Status)."""
    from custodia_wire import keys, package_check, timestamps

    try:
        given = [Path(key).read_text("utf-8") if key and Path(key).is_file() else key] if key else []
        options = package_check.Options(
            trust=keys.trust_from([k for k in given if k], trusted_keys, key_fingerprints),
            tsa_roots=timestamps.load_roots(tsa_ca) if tsa_ca else [],
            newer_checkpoint=checkpoint.read_text("utf-8") if checkpoint else None,
            consistency=json.loads(consistency.read_text("utf-8")) if consistency else None,
        )
    except (OSError, ValueError) as exc:
        echo(f"BAD ARGUMENT {exc}")
        return int(package_check.Status.USAGE)
    findings = package_check.verify(target, options, echo=lambda f: echo(f.line()))
    status = package_check.status_of(findings)
    failed = [f for f in findings if not f.ok]
    intact = not any(f.code in (1, 5, 7) for f in failed)
    signer = next((f for f in findings if f.subject == "signer"), None)
    echo("")
    echo(f"intact:  {'YES, every file matches the manifest' if intact else 'NO'}")
    if signer is None or signer.code == 4:
        echo("signer:  NOT AUTHENTIC" + (f" ({signer.message})" if signer else ""))
    elif signer.ok:
        echo("signer:  a key you trust")
    else:
        echo("signer:  UNKNOWN: you named no key you trust; compare the fingerprint above with the paper form")
    headline = {
        0: "VERIFIED: intact, custody in the signed log, signed by a key you trust",
        3: "SIGNER UNKNOWN: intact, but nothing shows who made it",
    }.get(
        int(status),
        f"FAILED, {len([f for f in failed if f.code != 3])} problem(s): "
        + ", ".join(dict.fromkeys(f.subject for f in failed if f.code != 3)),
    )
    echo(f"package {target}: {headline} (exit {int(status)} {status.name})")
    return int(status)


def run(
    target: Path, *, fingerprints: list[str], manifest: Path | None, receipt: Path | None, key: str | None, echo: Echo
) -> bool:
    from custodia_wire import documents

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
        got = fingerprint.of_file(target, sm3=True)  # one read for every line
        echo(f"{got.blake3}  {target}")
        echo(f"{got.sha256}  {target}")
        echo(f"{got.sm3}  {target}")
    return ok


def check_document(
    document: Path,
    *,
    pdf: Path | None,
    target: Path | None,
    key: str | None,
    trusted_keys: list[Path],
    key_fingerprints: list[str],
    echo: Echo,
    tst: Path | None = None,
    tsa_ca: Path | None = None,
) -> int:
    """An extraction list or a handover receipt (custodia_wire.extraction): its signature, its signer against
    the keys you trust, its PDF twin, and (with TARGET, a folder or a court package) each listed file's size,
    SHA-256, SM3 and BLAKE3; with ``tst``, the RFC 3161 token over the JSON file's bytes.
    Exit 0 verified; 1 not intact (or the time-stamp fails); 3 signer unknown; 4 not authentic."""
    from custodia_wire import extraction, keys, timestamps
    from custodia_wire import package as pkg

    try:
        given = [Path(key).read_text("utf-8") if Path(key).is_file() else key] if key else []
        trust = keys.trust_from(given, trusted_keys, key_fingerprints)
        doc = extraction.load(document)
        pdf_bytes = pdf.read_bytes() if pdf is not None else None
        token = tst.read_bytes() if tst is not None else None
        roots = timestamps.load_roots(tsa_ca) if tsa_ca is not None else []
    except (OSError, ValueError) as exc:
        echo(f"BAD ARGUMENT {exc}")
        return 2
    findings = extraction.check_document(doc, trust, pdf_bytes, label=str(document))
    if token is not None:
        findings.append(extraction.check_stamp(token, document.read_bytes(), roots, label=str(tst)))
    if target is not None and isinstance(doc, dict) and all(f.code != 4 for f in findings):
        if target.is_dir():
            opener = extraction.folder_opener(target)
        else:
            reader = pkg.open_package(target)
            names = set(reader.names())
            opener = lambda p: reader.open(p) if p in names else None  # noqa: E731
        findings += list(extraction.check_files(doc, opener))
    elif target is None and isinstance(doc, dict) and doc.get("files"):
        echo(f"NOTE     give the folder or package holding the files to check their {len(doc['files'])} check values")
    if pdf is None:
        echo("NOTE     no --pdf given: the paper form was not compared with its signed twin")
    for f in findings:
        echo(f.line())
    codes = {f.code for f in findings}
    status = next((c for c in (4, 1, 3) if c in codes), 0)
    headline = {
        0: "VERIFIED: signed by a key you trust, and everything checked matches",
        1: "FAILED: not intact",
        3: "SIGNER UNKNOWN: intact, but you named no key you trust",
        4: "NOT AUTHENTIC",
    }[status]
    echo(f"{document}: {headline} (exit {status})")
    return status
