"""The court package: a case's original files with a signed manifest, checkable offline by anyone.

A package is a ZIP (or the folder it unpacks to) holding::

    manifest.json                  custodia.case-package/1, signed with the server's Ed25519 key
    README.txt                     how to check the package (b3sum, sha256sum, custodia verify)
    B3SUMS, SHA256SUMS             the checksums of every file but these and the manifest
    recordings/<id>-<name>         the original files, byte for byte as they left the device
    custody/recording-<id>.json    the custody events of each file (audit-log entries with leaf hashes)
    ledger/device-<serial>.json    the checkout-ledger entries of every device involved

The manifest names every other file with its size, BLAKE3 and SHA-256, and for the JSON files the
digest of each entry in them, so a check can say which file, and which entry, was changed. The
signature covers the canonical JSON of the manifest (``documents.canonical_json``), so it covers
every byte of the package through the digests. Imports none of the rooms.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

import blake3

from custodia_wire import documents, fingerprint
from custodia_wire.auditlog import LogError, entry_leaf_hash

PACKAGE_FORMAT = "custodia.case-package/1"
CUSTODY_FORMAT = "custodia.custody/1"
#: packages with explicit trust: a detached signature over the manifest's RFC 8785 bytes, the audit log's
#: signed checkpoint, an inclusion proof for every custody entry, optional RFC 3161 time-stamps
PACKAGE_FORMAT_V2 = "custodia.case-package/2"
CUSTODY_FORMAT_V2 = "custodia.custody/2"
SIGNATURE_NAME = "manifest.sig"  # the raw signature over manifest.json, exactly as its bytes are
MANIFEST_TST_NAME = "manifest.tst"  # RFC 3161 TimeStampToken over manifest.json
KEY_NAME = "signing-key.pem"  # the signer's public key: trust it only by its fingerprint
CHECKPOINT_NAME = "log/checkpoint.txt"  # the audit log's signed checkpoint (C2SP signed note) at export
CHECKPOINT_TST_NAME = "log/checkpoint.tst"  # RFC 3161 TimeStampToken over log/checkpoint.txt
LEDGER_FORMAT = "custodia.ledger-extract/1"
MANIFEST_NAME = "manifest.json"
README_NAME = "README.txt"
B3SUMS_NAME = "B3SUMS"
SHA256SUMS_NAME = "SHA256SUMS"
#: ``<sm3 hex>  <path>`` lines (the form of ``openssl dgst -sm3 -r``, ``*`` aside) of every listed file that
#: has an SM3 in the manifest: an original stored before SM3 was computed has none until its backfill
SM3SUMS_NAME = "SM3SUMS"
SUMS = ((B3SUMS_NAME, "blake3"), (SHA256SUMS_NAME, "sha256"), (SM3SUMS_NAME, "sm3"))
SUMS_NAMES = frozenset(name for name, _ in SUMS)
#: made over (or after) the manifest, so not listed in it
UNLISTED = frozenset({MANIFEST_NAME, SIGNATURE_NAME, MANIFEST_TST_NAME})
#: how the digest of one entry of a JSON file is made
AUDIT_LEAF = "audit-leaf"  # the audit log's leaf hash (hex SHA-256 of 0x00 || canonical entry)
CANONICAL_BLAKE3 = "blake3-canonical"  # BLAKE3 of the entry's canonical JSON

_UNSAFE = re.compile(r"[^0-9A-Za-z._\-\u4e00-\u9fa5]+")


def safe_name(name: str, limit: int = 120) -> str:
    """A file name that every unzip and every shell takes as it is: letters, digits, CJK, ``._-``."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "file"
    return cleaned[-limit:]


def json_bytes(document: Any) -> bytes:
    """How the package writes its JSON files: readable, UTF-8, keys sorted, one trailing newline."""
    return (json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def entry_digest(method: str, entry: dict[str, Any]) -> str:
    if method == AUDIT_LEAF:
        return entry_leaf_hash(entry).hex()
    if method == CANONICAL_BLAKE3:
        return "blake3:" + blake3.blake3(documents.canonical_json(entry)).hexdigest()
    raise documents.DocumentError(f"unknown entry digest {method!r}")


def entry_key(method: str, entry: dict[str, Any]) -> str:
    """How an entry is named in a report: its log position for audit entries, else its id."""
    return f"seq {entry.get('seq')}" if method == AUDIT_LEAF else f"id {entry.get('id')}"


def file_item(path: str, data_or_fp: bytes | fingerprint.Fingerprint, role: str, **extra: Any) -> dict[str, Any]:
    """A file's manifest item: its size, BLAKE3, SHA-256 and (where known: always for bytes given here) SM3."""
    fp = fingerprint.of_bytes(data_or_fp, sm3=True) if isinstance(data_or_fp, bytes) else data_or_fp
    item = {"path": path, "role": role, "size": fp.size, "blake3": fp.blake3, "sha256": fp.sha256}
    if fp.sm3 is not None:
        item["sm3"] = fp.sm3
    return {**item, **extra}


def entries_item(
    path: str, data: bytes, role: str, method: str, entries: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A JSON file's manifest item, with the digest of each of its entries."""
    digests = [{"key": entry_key(method, e), "digest": entry_digest(method, e)} for e in entries]
    return file_item(path, data, role, entry_digest=method, entries=digests, **extra)


def sums_file(items: list[dict[str, Any]], algo: str) -> bytes:
    """``b3sum`` / ``sha256sum`` check-file lines: ``<hex>  <path>`` (for ``sm3``, of the items that have one)."""
    return "".join(
        f"{fingerprint.parse(i[algo], algo)[1]}  {i['path']}\n" for i in items if algo != "sm3" or i.get("sm3")
    ).encode("utf-8")


def readme(case: dict[str, Any], key_id: str, public_key: str, files: int) -> bytes:
    """The README of a package, in Chinese and English."""
    number, name = case.get("number", ""), case.get("name", "")
    text = f"""案件证据包 / Case evidence package
==================================

案件编号 Case number: {number}
案件名称 Case name:   {name}
文件数 Files:          {files}
签名密钥 Signing key:  Ed25519, key id {key_id}
公钥 Public key:       {public_key}

本包内容
--------
recordings/   执法记录仪原始文件，与离开设备时逐字节相同，未经任何转码或修改。
custody/      每个文件的保管记录（审计日志条目，含默克尔叶哈希）。
ledger/       所涉设备的交接登记台账条目。
manifest.json 清单：每个文件的大小、BLAKE3 和 SHA-256 指纹，以及 JSON 文件中每个条目的摘要；
              由管理平台的 Ed25519 密钥对清单的规范 JSON 签名。
B3SUMS, SHA256SUMS  除清单和这两个文件外所有文件的校验和。

如何核验
--------
1. 解压:                  unzip 本包.zip -d 证据包 && cd 证据包
2. 用 BLAKE3 核对每个文件: b3sum -c B3SUMS
3. 用 SHA-256 核对:        sha256sum -c SHA256SUMS
4. 核对签名、清单和每个条目（离线，无需联网）:
                          custodia verify 本包.zip      （或: custodia verify 证据包）
   加 --key <公钥> 可指定信任的公钥；请将上面的公钥与本局公布的管理平台公钥比对。
校验和只能证明文件与校验和文件一致；证明本包由管理平台导出且未被改动的是清单上的签名（第 4 步）。
任何一个字节被改动，第 4 步都会指出被改动的文件或条目。

Contents
--------
recordings/   the original files from the body-worn recorders, byte for byte as they left the
              device: never transcoded, never modified.
custody/      the custody events of each file (audit-log entries with their Merkle leaf hashes).
ledger/       the checkout-ledger entries of every device involved.
manifest.json every file's size, BLAKE3 and SHA-256, and the digest of each entry of the JSON files,
              signed with the evidence server's Ed25519 key over the manifest's canonical JSON.
B3SUMS, SHA256SUMS  checksums of every file except the manifest and these two.

How to check it
---------------
1. unpack:                      unzip package.zip -d package && cd package
2. every file against BLAKE3:   b3sum -c B3SUMS
3. every file against SHA-256:  sha256sum -c SHA256SUMS
4. signature, manifest and each entry, offline:
                                custodia verify package.zip     (or: custodia verify package)
   Add --key <public key> to pin the key you trust; compare the key above with the evidence
   server's key as published by the bureau.
Checksums only show that the files agree with the checksum files; the manifest's signature (step 4)
shows that the server exported the package and nothing changed since. Step 4 names the file or the
entry that was changed, down to a single byte.
"""
    return text.encode("utf-8")


def build_manifest(
    *,
    case: dict[str, Any],
    exported_at: str,
    exported_by: dict[str, Any],
    server: dict[str, Any],
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The unsigned manifest (``documents.sign`` adds the signature)."""
    return {
        "format": PACKAGE_FORMAT,
        "case": case,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "server": server,
        "files": files,
    }


def build_manifest_v2(
    *,
    case: dict[str, Any],
    exported_at: str,
    exported_by: dict[str, Any],
    server: dict[str, Any],
    checkpoint: dict[str, Any],
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of a ``custodia.case-package/2``: written as its RFC 8785 bytes and signed as they are."""
    return {
        "format": PACKAGE_FORMAT_V2,
        "canonical_json": "RFC8785",
        "case": case,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "server": server,
        "checkpoint": checkpoint,
        "files": files,
    }


def readme_v2(case: dict[str, Any], fingerprint_: str, files: int, *, timestamped: bool, alg: str = "Ed25519") -> bytes:
    """The README of a ``custodia.case-package/2``, in Chinese and English: the checks with public tools."""
    number, name = case.get("number", ""), case.get("name", "")
    tst = (
        "\n6. 时间戳 / time-stamps (CA certificate of the time-stamping authority: tsa-ca.pem):\n"
        "   openssl ts -verify -data manifest.json -in manifest.tst -token_in -CAfile tsa-ca.pem\n"
        "   openssl ts -verify -data log/checkpoint.txt -in log/checkpoint.tst -token_in -CAfile tsa-ca.pem\n"
        if timestamped
        else ""
    )
    verify_cmd = "openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin -in manifest.json -sigfile manifest.sig"
    if alg == "SM2":
        verify_cmd += " \\\n     -digest sm3 -pkeyopt distid:1234567812345678"
    text = f"""案件证据包 / Case evidence package ({PACKAGE_FORMAT_V2})
==================================

案件编号 Case number: {number}
案件名称 Case name:   {name}
原始文件 Originals:    {files}
签名公钥指纹 Signing key fingerprint:
  {fingerprint_}
请将此指纹与纸质表单上打印的指纹逐字比对；不一致则本包不可信。
Compare this fingerprint with the one printed on the paper form; if they differ, do not trust this package.

内容 Contents
-------------
manifest.json       清单（RFC 8785 规范 JSON），列出其余每个文件的大小、BLAKE3、SHA-256、SM3
                    the manifest (RFC 8785 canonical JSON): size, BLAKE3, SHA-256, SM3 of every other file
manifest.sig        管理平台对 manifest.json 原样字节的签名（{alg}）/ {alg} signature over manifest.json
signing-key.pem     签名公钥 / the signer's public key (trust it only by its fingerprint)
log/checkpoint.txt  导出时审计日志的签名检查点 / the audit log's signed checkpoint at export
custody/            每个原始文件的保管记录及其在日志中的包含证明 / custody entries with inclusion proofs
ledger/             所涉设备的交接登记台账 / the checkout ledger of every device involved
recordings/         原始文件，与离开设备时逐字节相同 / the originals, byte for byte as they left the device
extraction-list.pdf 电子数据提取清单（每个原始文件的类别、格式、大小、SHA-256、SM3、BLAKE3；提取人、见证人签名栏）
                    the extraction list: category, format, size and check values of every original
extraction-list.json 清单的签名 JSON，载明上述 PDF 的摘要及对其的签名 / its signed JSON twin, naming the PDF
B3SUMS, SHA256SUMS, SM3SUMS  校验和 / checksums

用公开工具核验 Checking with public tools
----------------------------------------
1. unzip package.zip -d package && cd package
2. b3sum -c B3SUMS && sha256sum -c SHA256SUMS
   SM3 (GB/T 32905), with OpenSSL alone / 仅用 OpenSSL 核对 SM3:
   openssl dgst -sm3 -r $(cut -c67- SM3SUMS) | sed 's/ \\*/  /' | diff - SM3SUMS && echo SM3 OK
3. openssl pkey -pubin -in signing-key.pem -outform DER | sha256sum
   (= the fingerprint above without "SHA256:", and = the one on the paper form)
4. {verify_cmd}
5. grep -o '"blake3":"blake3:[0-9a-f]*","path":"B3SUMS"' manifest.json ; b3sum B3SUMS
   (the signed manifest names the digest of B3SUMS, so step 2 is bound to the signature){tst}
全部核验（含保管记录与日志检查点）/ every check, custody and checkpoint included:
   custodia verify package.zip --key-fingerprint {fingerprint_}
"""
    return text.encode("utf-8")


# --- offline verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str  # the file, or "file: entry seq N"
    message: str
    status: int | None = None  # the exit status this finding stands for (default: 0 if ok, else 1)

    @property
    def code(self) -> int:
        return self.status if self.status is not None else (0 if self.ok else 1)

    def line(self) -> str:
        label = "OK      " if self.ok else ("WARNING " if self.code == 3 else "FAILED  ")
        return f"{label}{self.subject}: {self.message}"


class Reader(Protocol):
    label: str

    def names(self) -> list[str]: ...

    def open(self, name: str) -> IO[bytes]: ...


class ZipReader:
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self.zf = zipfile.ZipFile(path)

    def names(self) -> list[str]:
        return [i.filename for i in self.zf.infolist() if not i.is_dir()]

    def open(self, name: str) -> IO[bytes]:
        return self.zf.open(name)


class DirReader:
    def __init__(self, root: Path) -> None:
        self.label = str(root)
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")


def open_package(target: Path) -> Reader:
    if target.is_dir():
        return DirReader(target)
    try:
        return ZipReader(target)
    except (zipfile.BadZipFile, OSError) as exc:
        raise documents.DocumentError(
            f"{target} is not a readable ZIP archive ({exc}): the archive's structure was damaged"
        ) from exc


def is_package(target: Path) -> bool:
    """Whether ``target`` looks like a court package (a ZIP or a folder with its manifest)."""
    if target.is_dir():
        return (target / MANIFEST_NAME).is_file()
    return target.is_file() and (target.suffix.lower() == ".zip" or zipfile.is_zipfile(target))


def _safe(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path and path == p.as_posix()


def _read_all(reader: Reader, name: str) -> tuple[bytes | None, str | None]:
    try:
        with reader.open(name) as f:
            return f.read(), None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return None, str(exc)


def _fingerprint(reader: Reader, name: str, sm3: bool = False) -> tuple[fingerprint.Fingerprint, str | None]:
    """The digests of a member (SM3 too if asked); a damaged ZIP member (bad CRC, bad header) is reported."""
    hasher = fingerprint.Hasher(sm3)
    try:
        with reader.open(name) as f:
            for block in iter(lambda: f.read(fingerprint.BLOCK_SIZE), b""):
                hasher.update(block)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return hasher.result(), str(exc)
    return hasher.result(), None


def _entry_findings(path: str, item: dict[str, Any], data: bytes | None) -> Iterator[Finding]:
    """Name the entries of a JSON file that differ from the ones exported."""
    method = item.get("entry_digest")
    expected = {e["key"]: e["digest"] for e in item.get("entries", [])}
    if not method or data is None:
        return
    try:
        entries = json.loads(data.decode("utf-8"))["entries"]
        assert isinstance(entries, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        yield Finding(False, path, "no longer readable JSON with its entries")
        return
    seen: set[str] = set()
    for entry in entries:
        try:
            key = entry_key(method, entry)
            digest = entry_digest(method, entry)
        except (LogError, documents.DocumentError, AttributeError, TypeError, ValueError) as exc:
            yield Finding(False, path, f"an entry is malformed: {exc}")
            continue
        seen.add(key)
        if key not in expected:
            yield Finding(False, f"{path}: entry {key}", "was not in the exported package (added)")
        elif expected[key] != digest:
            yield Finding(False, f"{path}: entry {key}", "differs from the exported entry (modified)")
        elif method == AUDIT_LEAF and entry.get("leaf_hash") not in (None, digest):
            yield Finding(False, f"{path}: entry {key}", "its leaf_hash does not match its content")
    for key in expected.keys() - seen:
        yield Finding(False, f"{path}: entry {key}", "is missing (removed)")


def _check_file(reader: Reader, item: dict[str, Any], present: set[str]) -> Iterator[Finding]:
    path = str(item.get("path", ""))
    if not _safe(path):
        yield Finding(False, path or "(empty path)", "unsafe path in the manifest")
        return
    if path not in present:
        yield Finding(False, path, "missing from the package")
        return
    want_sm3 = item.get("sm3")
    got, damage = _fingerprint(reader, path, sm3=want_sm3 is not None)
    expected = (item.get("size"), item.get("blake3"), item.get("sha256"), want_sm3)
    if damage is None and (got.size, got.blake3, got.sha256, got.sm3) == expected:
        if item.get("entry_digest"):
            data, _ = _read_all(reader, path)
            problems = list(_entry_findings(path, item, data))
            yield from problems
            if problems:
                return
        yield Finding(True, path, f"{got.size} bytes, {got.blake3}" + (", SM3 matches" if want_sm3 else ""))
        return
    reasons = []
    if damage is not None:
        reasons.append(f"the archive member is damaged ({damage})")
    if got.size != item.get("size"):
        reasons.append(f"size {got.size}, expected {item.get('size')}")
    if got.blake3 != item.get("blake3"):
        reasons.append(f"BLAKE3 {got.blake3}, expected {item.get('blake3')}")
    if got.sha256 != item.get("sha256"):
        reasons.append(f"SHA-256 {got.sha256}, expected {item.get('sha256')}")
    if got.sm3 != want_sm3:
        reasons.append(f"SM3 {got.sm3}, expected {want_sm3}")
    yield Finding(False, path, "MODIFIED: " + "; ".join(reasons))
    if item.get("entry_digest"):
        data, _ = _read_all(reader, path)
        yield from _entry_findings(path, item, data)


def _check_sums(reader: Reader, name: str, algo: str, items: list[dict[str, Any]]) -> Iterator[Finding]:
    data, _ = _read_all(reader, name)
    if data is None:
        return
    listed = {i["path"] for i in items if i["path"] not in SUMS_NAMES}
    want = sums_file([i for i in items if i["path"] in listed], algo)
    if sorted(data.splitlines()) != sorted(want.splitlines()):
        yield Finding(False, name, f"does not agree with the {algo} digests of the signed manifest")


def verify(
    target: Path, *, trusted_key: str | None = None, echo: Callable[[Finding], object] | None = None
) -> list[Finding]:
    """Check a package offline: signature, every file, every entry, nothing added. Every finding."""
    findings: list[Finding] = []

    def note(f: Finding) -> None:
        findings.append(f)
        if echo is not None:
            echo(f)

    try:
        reader = open_package(target)
    except documents.DocumentError as exc:
        note(Finding(False, str(target), str(exc)))
        return findings
    present = set(reader.names())
    raw, damage = _read_all(reader, MANIFEST_NAME) if MANIFEST_NAME in present else (None, "missing")
    try:
        if raw is None:
            raise documents.DocumentError(f"cannot be read: {damage}")
        manifest = json.loads(raw.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
            raise documents.DocumentError(f"not a {PACKAGE_FORMAT} manifest")
        key_b64 = str(manifest["server"]["public_key"])
        if trusted_key is not None and key_b64 != trusted_key.strip():
            raise documents.DocumentError("signed with a key other than the one given with --key")
        documents.verify_signature(manifest, documents.load_public_key_b64(key_b64))
        items = list(manifest["files"])
    except (documents.DocumentError, ValueError, KeyError, TypeError) as exc:
        note(Finding(False, MANIFEST_NAME, f"MODIFIED or not authentic: {exc}"))
        return findings
    note(
        Finding(
            True,
            MANIFEST_NAME,
            f"signature valid (Ed25519, key id {manifest['signature']['key_id']}), "
            f"case {manifest.get('case', {}).get('number')}, {len(items)} files",
        )
    )
    for item in items:
        for f in _check_file(reader, item, present):
            note(f)
    for name, algo in SUMS:
        for f in _check_sums(reader, name, algo, items):
            note(f)
    for extra in sorted(present - {i.get("path") for i in items} - {MANIFEST_NAME}):
        note(Finding(False, extra, "is not in the manifest (added after export)"))
    return findings


def passed(findings: list[Finding]) -> bool:
    return bool(findings) and all(f.ok for f in findings)
