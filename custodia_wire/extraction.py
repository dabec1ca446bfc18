"""The 电子数据提取清单 (extraction list, art. 14 of the 2016 rules on electronic data) and the 移交回执
(handover receipt): signed JSON documents with a PDF twin, checkable offline. Imports none of the rooms.

Both documents are JSON signed with ``documents.sign`` (the signature block over the RFC 8785 bytes of
the rest). The PDF is bound to its JSON twin twice: the twin names the PDF's size, SHA-256 and BLAKE3,
and carries a detached signature over the PDF's exact bytes (``pdf.signature``), which a reviewer checks
with OpenSSL alone::

    jq -r .signer.public_key_pem list.json > key.pem
    openssl pkey -pubin -in key.pem -outform DER | sha256sum     # = the fingerprint on the paper form
    jq -r .pdf.signature list.json | base64 -d > list.pdf.sig
    openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in list.pdf -sigfile list.pdf.sig

Each listed file carries its category (video, audio, photo), its format (container), its size and its
check values: SHA-256, SM3 (when computed) and BLAKE3, each as ``algo:<hex>``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from custodia_wire import documents, fingerprint, keys, timestamps

LIST_FORMAT = "custodia.extraction-list/1"
HANDOVER_FORMAT = "custodia.handover-receipt/1"
FORMATS = (LIST_FORMAT, HANDOVER_FORMAT)
#: names of a package's list inside the package (listed in its manifest, role ``extraction-list``)
PACKAGE_LIST_JSON = "extraction-list.json"
PACKAGE_LIST_PDF = "extraction-list.pdf"
LIST_ROLE = "extraction-list"
LIST_PDF_ROLE = "extraction-list-pdf"
#: whom a package may be handed to
RECIPIENT_KINDS = {"procuratorate": "检察院", "court": "法院", "lawyer": "律师", "other": "其他"}

VIDEO = frozenset({"mp4", "mov", "avi", "mkv", "ts", "m2ts", "mts", "3gp", "asf", "wmv", "flv", "h264", "h265", "dav"})
AUDIO = frozenset({"wav", "mp3", "aac", "amr", "m4a", "ogg", "opus", "wma", "flac"})
PHOTO = frozenset({"jpg", "jpeg", "png", "bmp", "heic", "heif", "tif", "tiff", "webp"})
CATEGORY_LABELS = {"video": "视频", "audio": "音频", "photo": "照片", "other": "其他"}


class ListProblem(ValueError):
    """An extraction list or handover receipt that is malformed, altered or not signed as it says."""


def category_of(name: str) -> str:
    """video, audio, photo or other, from the file's extension (what the recorder wrote). Pure."""
    ext = PurePosixPath(name).suffix.lower().lstrip(".")
    if ext in VIDEO:
        return "video"
    if ext in AUDIO:
        return "audio"
    if ext in PHOTO:
        return "photo"
    return "other"


def format_of(name: str, container: str | None = None) -> str:
    """The file format: the extension in capitals, with the container ffprobe found (``MP4 (mov,mp4,…)``)."""
    ext = PurePosixPath(name).suffix.lstrip(".").upper() or "?"
    return f"{ext} ({container})" if container else ext


def sm3_available() -> bool:
    try:
        fingerprint.new_sm3()
    except ValueError:
        return False
    return True


def check_values(stream: Any) -> fingerprint.Fingerprint:
    """Every check value of a byte stream in the one pass the product uses (SM3 where OpenSSL has it)."""
    hasher = fingerprint.Hasher(sm3=sm3_available())
    for block in iter(lambda: stream.read(fingerprint.BLOCK_SIZE), b""):
        hasher.update(block)
    return hasher.result()


def file_item(
    *, path: str, name: str, size: int, sha256: str, blake3: str, sm3: str | None, container: str | None, **extra: Any
) -> dict[str, Any]:
    """One listed file: where it is, what it is, and its check values."""
    return {
        "path": path,
        "name": name,
        "category": category_of(name),
        "format": format_of(name, container),
        "size": size,
        "sha256": sha256,
        "sm3": sm3,
        "blake3": blake3,
        **extra,
    }


def signer_block(key: keys.PublicKey) -> dict[str, Any]:
    return {"alg": key.alg, "fingerprint": key.fingerprint, "public_key_pem": key.pem()}


def pdf_block(pdf: bytes, signature: bytes) -> dict[str, Any]:
    """How the JSON twin names its PDF: size, digests and the signature over the PDF's exact bytes."""
    cv = fingerprint.of_bytes(pdf)
    return {
        "size": cv.size,
        "sha256": cv.sha256,
        "blake3": cv.blake3,
        "signature": base64.b64encode(signature).decode(),
    }


def to_bytes(document: dict[str, Any]) -> bytes:
    """The bytes of a JSON twin as served: its RFC 8785 form (the signature block included)."""
    return documents.jcs(document)


# --- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str
    message: str
    status: int = 0  # 0 fine, 1 not intact, 3 signer unknown, 4 not authentic

    @property
    def code(self) -> int:
        return 0 if self.ok else (self.status or 1)

    def line(self) -> str:
        label = "OK      " if self.ok else ("WARNING " if self.code == 3 else "FAILED  ")
        return f"{label}{self.subject}: {self.message}"


def signer_of(doc: dict[str, Any]) -> keys.PublicKey:
    signer = doc.get("signer")
    if not isinstance(signer, dict):
        raise ListProblem("names no signer")
    key = keys.load(str(signer.get("public_key_pem") or ""))
    if key.fingerprint != signer.get("fingerprint"):
        raise ListProblem("the signer's fingerprint is not that of the key it carries")
    return key


def _verify_json(doc: dict[str, Any], key: keys.PublicKey) -> None:
    try:
        documents.verify_signature(doc, key)
    except documents.DocumentError as exc:
        raise ListProblem(str(exc)) from exc


def check_document(doc: Any, trust: keys.Trust, pdf: bytes | None = None, label: str = "list") -> list[Finding]:
    """Signature, signer and (when given) the PDF twin of an extraction list or a handover receipt."""
    out: list[Finding] = []
    if not isinstance(doc, dict) or doc.get("format") not in FORMATS:
        return [Finding(False, label, f"not a {' or '.join(FORMATS)} document")]
    try:
        signer = signer_of(doc)
        _verify_json(doc, signer)
    except (ListProblem, keys.KeyProblem) as exc:
        return [Finding(False, label, f"NOT AUTHENTIC: {exc}", 4)]
    out.append(Finding(True, label, f"{doc['format']}: signature valid ({signer.alg}, key {signer.fingerprint})"))
    if not trust.given:
        out.append(
            Finding(
                False,
                "signer",
                f"key {signer.fingerprint} is NOT CHECKED against any key you trust: compare it with the "
                "fingerprint printed on the paper form, then pass --key-fingerprint, --key or --trusted-keys",
                3,
            )
        )
    elif trust.trusts(signer):
        out.append(Finding(True, "signer", f"signed by a key you trust ({signer.fingerprint})"))
    else:
        out.append(Finding(False, "signer", f"signed by {signer.fingerprint}, not a key you trust: a forgery", 4))
    if pdf is not None:
        out += list(_check_pdf(doc, signer, pdf))
    return out


def _check_pdf(doc: dict[str, Any], signer: keys.PublicKey, pdf: bytes) -> Iterator[Finding]:
    said = doc.get("pdf") or {}
    got = fingerprint.of_bytes(pdf)
    if (got.size, got.sha256, got.blake3) != (said.get("size"), said.get("sha256"), said.get("blake3")):
        yield Finding(False, "pdf", f"is not the PDF its JSON twin names ({got.sha256}, {got.size} bytes)")
        return
    try:
        signer.verify(base64.b64decode(str(said.get("signature", "")), validate=True), pdf)
    except (keys.KeyProblem, ValueError) as exc:
        yield Finding(False, "pdf", f"its signature does not verify: {exc}", 4)
        return
    yield Finding(True, "pdf", f"the PDF its JSON twin names, signed ({got.sha256})")


def check_stamp(token: bytes, data: bytes, roots: list[Any], label: str = "time-stamp") -> Finding:
    """An RFC 3161 token over the JSON twin's exact bytes: for these bytes, and (given roots) by a trusted
    authority. Status 1 when it fails."""
    try:
        if roots:
            stamp = timestamps.verify(token, data, roots)
            return Finding(
                True, label, f"the list existed at {stamp.time.isoformat()} ({stamp.authority}, {stamp.hash})"
            )
        stamp = timestamps.stamped(token, data)
        return Finding(
            True,
            label,
            f"stamps it at {stamp.time.isoformat()} by {stamp.authority}; the authority is not checked "
            "(pass --tsa-ca with its CA certificate)",
        )
    except timestamps.TimestampProblem as exc:
        return Finding(False, label, str(exc))


def check_files(doc: dict[str, Any], open_file: Any) -> Iterator[Finding]:
    """Each listed file against its bytes: ``open_file(path)`` gives a binary stream, or None if absent."""
    for item in doc.get("files") or []:
        path = str(item.get("path", ""))
        stream = open_file(path)
        if stream is None:
            yield Finding(False, path or "(no path)", "missing")
            continue
        with stream:
            got = check_values(stream)
        wrong = [
            f"{label} {value}, listed {item.get(key)}"
            for key, label, value in (
                ("size", "size", got.size),
                ("sha256", "SHA-256", got.sha256),
                ("blake3", "BLAKE3", got.blake3),
                ("sm3", "SM3", got.sm3),
            )
            if item.get(key) is not None and value is not None and item.get(key) != value
        ]
        if wrong:
            yield Finding(False, path, "MODIFIED: " + "; ".join(wrong))
        else:
            names = [n for n, k in (("SHA-256", "sha256"), ("SM3", "sm3"), ("BLAKE3", "blake3")) if item.get(k)]
            yield Finding(True, path, f"{got.size} bytes, {', '.join(names)} as listed")


def folder_opener(root: Path) -> Any:
    """Opens listed paths under ``root``; refuses absolute paths and ``..``."""

    def open_file(path: str) -> Any:
        p = PurePosixPath(path)
        if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
            return None
        target = root / path
        return open(target, "rb") if target.is_file() else None

    return open_file


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))
