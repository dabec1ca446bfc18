"""An independent RFC 9162 §2.1 reference, written from the RFC's recursive definitions over the raw data.

Deliberately naive (recursion over slices of D[n], hashing data every time): it shares no code
with ``custodia_wire.merkle`` and is only fast enough for small trees.
"""

from __future__ import annotations

from hashlib import sha256


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n])."""
    n = len(d)
    if n == 0:
        return sha256().digest()
    if n == 1:
        return sha256(bytes([0]) + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(bytes([1]) + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return _subproof(m, d, True)


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return _subproof(m, d[:k], b) + [mth(d[k:])]
    return _subproof(m - k, d[k:], False) + [mth(d[:k])]


def root_from_path(leaf_data: bytes, m: int, n: int, audit_path: list[bytes]) -> bytes:
    """Recompute MTH(D[n]) from one leaf and its PATH by following the RFC's recursion back up."""

    def up(m: int, n: int, p: list[bytes]) -> bytes:
        if n == 1:
            return sha256(bytes([0]) + leaf_data).digest()
        k = 1
        while k * 2 < n:
            k *= 2
        sibling, rest = p[-1], p[:-1]
        if m < k:
            return sha256(bytes([1]) + up(m, k, rest) + sibling).digest()
        return sha256(bytes([1]) + sibling + up(m - k, n - k, rest)).digest()

    return up(m, n, audit_path)
