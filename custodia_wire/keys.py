"""Public keys a reader may trust, whatever their algorithm, and their fingerprints.

A key is named by its algorithm and its SubjectPublicKeyInfo (the DER every tool prints with
``openssl pkey -pubin -outform DER``); its *fingerprint* is ``SHA256:`` and the hex SHA-256 of that DER,
which a reader can recompute with ``openssl`` and ``sha256sum`` alone and compare with the one printed
on the paper form. Signature algorithms are a registry (``VERIFIERS``): Ed25519 now; another (SM2, say)
is one more entry and one more ``alg`` name, and nothing that calls ``PublicKey.verify`` changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = "Ed25519"
_FINGERPRINT = re.compile(r"^SHA256:([0-9a-f]{64})$")


class KeyProblem(ValueError):
    """A key or fingerprint that cannot be read, or a signature that does not verify."""


def _verify_ed25519(spki: bytes, signature: bytes, data: bytes) -> None:
    key = serialization.load_der_public_key(spki)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem("not an Ed25519 key")
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise KeyProblem(
            "the signature does not verify: the signed bytes were altered, or another key signed them"
        ) from exc


#: alg name -> verify(spki DER, signature, data); raises KeyProblem when it does not verify
VERIFIERS: dict[str, Callable[[bytes, bytes, bytes], None]] = {ED25519: _verify_ed25519}


@dataclass(frozen=True)
class PublicKey:
    alg: str
    spki: bytes  # DER SubjectPublicKeyInfo

    @property
    def fingerprint(self) -> str:
        return "SHA256:" + hashlib.sha256(self.spki).hexdigest()

    def pem(self) -> str:
        return (
            serialization.load_der_public_key(self.spki)
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def raw_b64(self) -> str:
        """The raw key in base64 (Ed25519's 32 bytes): the form Custodia has always printed."""
        key = serialization.load_der_public_key(self.spki)
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def verify(self, signature: bytes, data: bytes) -> None:
        verifier = VERIFIERS.get(self.alg)
        if verifier is None:
            raise KeyProblem(f"signature algorithm {self.alg!r} is not supported by this verifier")
        verifier(self.spki, signature, data)


def from_ed25519(key: Ed25519PublicKey) -> PublicKey:
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(ED25519, spki)


def _alg_of(spki: bytes) -> str:
    key = serialization.load_der_public_key(spki)
    if isinstance(key, Ed25519PublicKey):
        return ED25519
    raise KeyProblem(f"unsupported key type {type(key).__name__}")


def load(text: str, alg: str | None = None) -> PublicKey:
    """A key from a PEM block (any algorithm in the registry) or from raw base64 (Ed25519's 32 bytes)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            spki = serialization.load_pem_public_key(text.encode()).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return PublicKey(_alg_of(spki), spki)
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyProblem(f"not a public key (PEM, or base64 of a raw Ed25519 key): {exc}") from exc
    if (alg or ED25519) != ED25519 or len(raw) != 32:
        raise KeyProblem("a raw base64 key is an Ed25519 key of 32 bytes; give other keys as PEM")
    return from_ed25519(Ed25519PublicKey.from_public_bytes(raw))


def parse_fingerprint(text: str) -> str:
    """``SHA256:<64 hex>`` (spaces, colons between byte pairs and upper case as printed are accepted)."""
    body = text.strip()
    if body.upper().startswith("SHA256:"):
        body = body[7:]
    body = re.sub(r"[\s:]", "", body).lower()
    out = f"SHA256:{body}"
    if not _FINGERPRINT.match(out):
        raise KeyProblem(f"not a key fingerprint (SHA256: and 64 hex digits): {text!r}")
    return out


@dataclass
class Trust:
    """What the reader trusts: whole keys, and fingerprints read off paper."""

    keys: list[PublicKey]
    fingerprints: set[str]

    @property
    def given(self) -> bool:
        return bool(self.keys or self.fingerprints)

    def trusts(self, key: PublicKey) -> bool:
        return key.fingerprint in self.fingerprints or any(k.spki == key.spki for k in self.keys)

    def keys_for(self, key: PublicKey) -> list[PublicKey]:
        """The trusted keys to check a signature with: the given ones, and ``key`` if its fingerprint is trusted."""
        out = list(self.keys)
        if key.fingerprint in self.fingerprints and key not in out:
            out.append(key)
        return out


def read_trusted_file(path: Path) -> tuple[list[PublicKey], set[str]]:
    """A trusted-keys file: PEM blocks, base64 keys or ``SHA256:`` fingerprints, one a line; ``#`` comments."""
    text = path.read_text("utf-8")
    keys: list[PublicKey] = []
    fingerprints: set[str] = set()
    for block in re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", text, re.S):
        keys.append(load(block))
    rest = re.sub(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", "", text, flags=re.S)
    for line in rest.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.upper().startswith("SHA256:"):
            fingerprints.add(parse_fingerprint(line))
        else:
            keys.append(load(line))
    return keys, fingerprints


def trust_from(keys: Iterable[str] = (), files: Iterable[Path] = (), fingerprints: Iterable[str] = ()) -> Trust:
    trust = Trust([load(k) for k in keys], {parse_fingerprint(f) for f in fingerprints})
    for path in files:
        more, prints = read_trusted_file(path)
        trust.keys += more
        trust.fingerprints |= prints
    return trust
