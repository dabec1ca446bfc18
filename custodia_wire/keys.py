"""Public keys a reader may trust, whatever their algorithm, and their fingerprints.

A key is named by its algorithm and its SubjectPublicKeyInfo (the DER every tool prints with
``openssl pkey -pubin -outform DER``); its *fingerprint* is ``SHA256:`` and the hex SHA-256 of that DER,
which a reader can recompute with ``openssl`` and ``sha256sum`` alone and compare with the one printed
on the paper form. Signature algorithms are a registry (``VERIFIERS``): Ed25519, and SM2 (GB/T 32918 with
SM3 and the default distinguishing ID, through OpenSSL: ``custodia_wire.sm2``); nothing that calls
``PublicKey.verify`` cares which.

A *signer* (``Signer``) is the private half: the server's configured key, whichever its algorithm.
``signer_of`` takes an Ed25519 private key as it always was, or a signer, so existing call sites keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import blake3
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodia_wire import sm2

ED25519 = "Ed25519"
SM2 = sm2.ALG
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


def _verify_sm2(spki: bytes, signature: bytes, data: bytes) -> None:
    try:
        ok = sm2.verify(spki, signature, data)
    except sm2.SM2Error as exc:
        raise KeyProblem(str(exc)) from exc
    if not ok:
        raise KeyProblem("the signature does not verify: the signed bytes were altered, or another key signed them")


#: alg name -> verify(spki DER, signature, data); raises KeyProblem when it does not verify
VERIFIERS: dict[str, Callable[[bytes, bytes, bytes], None]] = {ED25519: _verify_ed25519, SM2: _verify_sm2}


def _pem(spki: bytes) -> str:
    body = base64.b64encode(spki).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True)
class PublicKey:
    alg: str
    spki: bytes  # DER SubjectPublicKeyInfo

    @property
    def fingerprint(self) -> str:
        return "SHA256:" + hashlib.sha256(self.spki).hexdigest()

    def pem(self) -> str:
        return _pem(self.spki)

    def raw(self) -> bytes:
        """Ed25519's raw 32 bytes (the form Custodia has always printed); for other keys the SPKI DER."""
        if self.alg != ED25519:
            return self.spki
        key = serialization.load_der_public_key(self.spki)
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def raw_b64(self) -> str:
        """``raw()`` in base64: one line that ``load`` reads back."""
        return base64.b64encode(self.raw()).decode()

    @property
    def key_id(self) -> str:
        """A short, stable name for the key: the first 16 hex digits of the BLAKE3 of ``raw()``."""
        return blake3.blake3(self.raw()).hexdigest()[:16]

    def verify(self, signature: bytes, data: bytes) -> None:
        verifier = VERIFIERS.get(self.alg)
        if verifier is None:
            raise KeyProblem(f"signature algorithm {self.alg!r} is not supported by this verifier")
        verifier(self.spki, signature, data)


def from_ed25519(key: Ed25519PublicKey) -> PublicKey:
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(ED25519, spki)


def from_sm2(key: sm2.SM2PrivateKey) -> PublicKey:
    return PublicKey(SM2, key.public_spki())


def _alg_of(spki: bytes) -> str:
    if sm2.is_sm2_spki(spki):
        try:
            sm2.check_public(spki)
        except sm2.SM2Error as exc:
            raise KeyProblem(str(exc)) from exc
        return SM2
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyProblem(f"not a public key this verifier supports: {exc}") from exc
    if isinstance(key, Ed25519PublicKey):
        return ED25519
    raise KeyProblem(f"unsupported key type {type(key).__name__}")


_PEM_BLOCK = re.compile(r"^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$")


def load(text: str, alg: str | None = None) -> PublicKey:
    """A key from a PEM block (any algorithm in the registry), from raw base64 (Ed25519's 32 bytes), or from
    base64 of a DER SubjectPublicKeyInfo (the one-line form of an SM2 key)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            m = _PEM_BLOCK.match(text)
            if not m:
                raise ValueError("not a PEM PUBLIC KEY block")
            spki = base64.b64decode("".join(m.group(1).split()), validate=True)
            return PublicKey(_alg_of(spki), spki)
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyProblem(f"not a public key (PEM, or base64 of a raw Ed25519 key): {exc}") from exc
    if len(raw) != 32 and raw[:1] == b"\x30":
        key = PublicKey(_alg_of(raw), raw)
        if alg is not None and key.alg != alg:
            raise KeyProblem(f"a {key.alg} key where {alg} was named")
        return key
    if (alg or ED25519) != ED25519 or len(raw) != 32:
        raise KeyProblem("a raw base64 key is an Ed25519 key of 32 bytes; give other keys as PEM")
    return from_ed25519(Ed25519PublicKey.from_public_bytes(raw))


# --- signers --------------------------------------------------------------------------------------


@runtime_checkable
class Signer(Protocol):
    """The private half of a key of any algorithm in the registry: what signs receipts, checkpoints,
    packages and lists."""

    @property
    def public(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519Signer:
    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return from_ed25519(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


@dataclass(frozen=True)
class SM2Signer:
    key: sm2.SM2PrivateKey

    @property
    def public(self) -> PublicKey:
        return from_sm2(self.key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def signer_of(key: Ed25519PrivateKey | sm2.SM2PrivateKey | Signer) -> Signer:
    """A signer for an Ed25519 private key (as every call site had), an SM2 one, or a signer as it is."""
    if isinstance(key, Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, sm2.SM2PrivateKey):
        return SM2Signer(key)
    return key


def public_of(key: Ed25519PublicKey | PublicKey) -> PublicKey:
    """A ``PublicKey`` for an Ed25519 public key object (as callers had), or the key as it is."""
    return from_ed25519(key) if isinstance(key, Ed25519PublicKey) else key


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
