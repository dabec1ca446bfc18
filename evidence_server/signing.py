"""The server's signing keys: Ed25519 (always), and SM2 when ``CUSTODIA_SIGNING_ALG=SM2``.

The configured one signs transfer receipts, checkpoints, court packages and lists (``ServerContext.signer``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodia_wire import sm2


def _create_once(path: Path, pem: bytes) -> None:
    """Write ``pem`` to ``path`` (mode 0600) unless another process got there first.

    Several API processes and workers may start at once on a shared data folder: the key is written
    to a private temporary file and linked into place atomically, so exactly one key wins and no
    process ever reads a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first: use that one
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 PEM key at ``path``; create it (mode 0600) on first start."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _create_once(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_or_create_sm2_key(path: Path) -> sm2.SM2PrivateKey:
    """Load the SM2 PEM key at ``path`` (PKCS#8, as ``openssl genpkey -algorithm SM2`` writes it); create it
    (mode 0600) on first start."""
    if not path.exists():
        _create_once(path, sm2.SM2PrivateKey.generate().private_pem())
    try:
        return sm2.SM2PrivateKey.from_pem(path.read_bytes())
    except sm2.SM2Error as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_sm2_key(path: Path) -> sm2.SM2PrivateKey | None:
    """The SM2 key at ``path`` if there is one (a server that signed with SM2 once), without making one."""
    return load_or_create_sm2_key(path) if path.exists() else None
