"""Passwords (argon2) and opaque bearer tokens (stored only as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

USER_TOKEN_PREFIX = "cus_u_"  # noqa: S105  (a prefix, not a secret)
STATION_TOKEN_PREFIX = "cus_s_"  # noqa: S105


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("password must be at least 10 characters")
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: A hash of a random password nobody knows: an unknown username is checked against it, so that
#: it costs the same argon2 verification as a known one (made on first use, once per process).
_unknown_user_hash: str | None = None


def verify_nothing(password: str) -> None:
    """Spend the work of one password verification (for a username that does not exist)."""
    global _unknown_user_hash
    if _unknown_user_hash is None:
        _unknown_user_hash = _hasher.hash(secrets.token_urlsafe(32))
    check_password(_unknown_user_hash, password)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
