"""Manifest and receipt: the two documents of one transfer, in canonical JSON, signed with the server's key.

A *manifest* is what the station says it copied from a device. A *receipt* is what the server
says it received and verified, signed with the server's key so that the station (and later a
court) can check it without trusting the network or the operator. The key is Ed25519 or SM2 (the
server's configuration); a signature block names its ``alg``, and a verifier accepts either.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodia_wire import fingerprint, keys

MANIFEST_FORMAT = "custodia.manifest/1"
RECEIPT_FORMAT = "custodia.receipt/1"


class DocumentError(ValueError):
    """A manifest or receipt is malformed, or its signature does not verify."""


#: the canonical JSON of signatures made since RFC 8785 was adopted: named in each signature block
JCS = "RFC8785"


def canonical_json(obj: Any) -> bytes:
    """Custodia's first canonical form (sorted keys, no spaces, UTF-8): still what manifest digests and the
    audit log's leaves are made of, and what signatures without a ``canon`` name were made over. For every
    value without a fractional or exponent number it is byte for byte RFC 8785 (tests/audit/test_jcs.py)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def jcs(obj: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme: the published rule every signature is now made over, which
    any JCS implementation reproduces byte for byte."""
    return bytes(rfc8785.dumps(obj))


def _signed_bytes(body: dict[str, Any], canon: str | None) -> bytes:
    if canon is None:  # signed before RFC 8785 was adopted
        return canonical_json(body)
    if canon == JCS:
        return jcs(body)
    raise DocumentError(f"unknown canonical form {canon!r}")


def utc_iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: every timestamp in Custodia is UTC-aware")
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise DocumentError(f"timestamp without zone: {text!r}")
    return ts.astimezone(UTC)


@dataclass
class ManifestFile:
    path: str
    size: int
    blake3: str
    sha256: str
    mtime: str | None = None

    def validate(self) -> None:
        fingerprint.parse(self.blake3, "blake3")
        fingerprint.parse(self.sha256, "sha256")
        if self.size < 0:
            raise DocumentError(f"negative size for {self.path!r}")


@dataclass
class Manifest:
    transfer_id: str
    station: dict[str, Any]
    device: dict[str, Any]
    officer: dict[str, Any]
    docked_at: str
    files: list[ManifestFile] = field(default_factory=list)
    format: str = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def digest(self) -> str:
        return fingerprint.of_bytes(self.to_bytes()).blake3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise DocumentError(f"not a {MANIFEST_FORMAT} document")
        try:
            files = [ManifestFile(**f) for f in data["files"]]
            m = cls(
                transfer_id=str(data["transfer_id"]),
                station=dict(data["station"]),
                device=dict(data["device"]),
                officer=dict(data["officer"]),
                docked_at=str(data["docked_at"]),
                files=files,
            )
        except (KeyError, TypeError) as exc:
            raise DocumentError(f"malformed manifest: {exc}") from exc
        for f in files:
            f.validate()
        return m


# --- signing -------------------------------------------------------------------------------


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key_b64(text: str) -> Ed25519PublicKey | keys.PublicKey:
    """The server's public key as printed on one line: raw base64 Ed25519 (an ``Ed25519PublicKey``, as it
    always was), or base64 DER / PEM of an SM2 key (a ``keys.PublicKey``); both verify documents and notes."""
    try:
        raw = base64.b64decode(text, validate=True)
        if len(raw) == 32:
            return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        pass
    try:
        key = keys.load(text)
    except keys.KeyProblem as exc:
        raise DocumentError(f"not a public key (Ed25519 or SM2): {exc}") from exc
    return key


def load_public_key(text: str) -> keys.PublicKey:
    """The server's public key of any algorithm: raw base64 (Ed25519), base64 DER or PEM (SM2, or any)."""
    try:
        return keys.load(text)
    except keys.KeyProblem as exc:
        raise DocumentError(f"not a public key: {exc}") from exc


PublicKeyLike = Ed25519PublicKey | keys.PublicKey
PrivateKeyLike = Ed25519PrivateKey | keys.Signer


def key_id(key: PublicKeyLike) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its BLAKE3 (Ed25519: of its raw
    32 bytes; SM2: of its DER SubjectPublicKeyInfo)."""
    if isinstance(key, Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return fingerprint.of_bytes(raw).blake3_hex[:16]
    return key.key_id


def sign(document: dict[str, Any], private_key: PrivateKeyLike) -> dict[str, Any]:
    """Return a copy of ``document`` with a ``signature`` block over its canonical bytes.

    ``private_key``: an Ed25519 private key (as it always was), or any ``keys.Signer`` (SM2, say)."""
    signer = keys.signer_of(private_key)
    public = signer.public
    body = {k: v for k, v in document.items() if k != "signature"}
    sig = signer.sign(jcs(body))
    body["signature"] = {
        "alg": public.alg,
        "canon": JCS,
        "key_id": public.key_id,
        "value": base64.b64encode(sig).decode(),
    }
    return body


def verify_signature(document: dict[str, Any], public_key: PublicKeyLike) -> None:
    """Raise DocumentError unless ``document`` carries a valid signature by ``public_key`` (Ed25519 or SM2)."""
    key = keys.public_of(public_key)
    sig = document.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != key.alg:
        raise DocumentError(f"document is not signed with {key.alg}")
    if sig.get("key_id") != key.key_id:
        raise DocumentError(f"signed by key {sig.get('key_id')!r}, not by {key.key_id!r}")
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        key.verify(base64.b64decode(sig["value"]), _signed_bytes(body, sig.get("canon")))
    except (InvalidSignature, ValueError, TypeError, KeyError) as exc:
        raise DocumentError("signature does not verify: the document was altered or forged") from exc


def make_receipt(
    *, transfer_id: str, manifest_digest: str, files: list[dict[str, Any]], issued_at: datetime, server: dict[str, Any]
) -> dict[str, Any]:
    """An unsigned receipt. ``files`` items carry path, size, blake3, sha256, recording_id, verified_at."""
    return {
        "format": RECEIPT_FORMAT,
        "transfer_id": transfer_id,
        "manifest_blake3": manifest_digest,
        "issued_at": utc_iso(issued_at),
        "server": server,
        "files": files,
    }


def confirmed_files(receipt: dict[str, Any], public_key: PublicKeyLike) -> dict[str, dict[str, Any]]:
    """Verify a receipt and return its confirmed files by device path."""
    verify_signature(receipt, public_key)
    if receipt.get("format") != RECEIPT_FORMAT:
        raise DocumentError(f"not a {RECEIPT_FORMAT} document")
    return {f["path"]: f for f in receipt.get("files", [])}
