"""Merkle tree hashing and proofs exactly as RFC 9162 §2.1 (and RFC 6962 §2.1) define them. Pure.

Leaves are 0-indexed. Functions that build proofs take the list of *leaf hashes*
(``leaf_hash(data)`` of each entry), so a log can store them once and never rehash its entries.
Proofs are lists of 32-byte node hashes, ordered from the leaf towards the root, as in the RFC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
#: MTH({}) = SHA-256() : the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof was asked for indices or sizes that do not exist in the tree."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """Incremental MTH: the roots of the perfect subtrees covering the leaves appended so far.

    Appending is amortised one node hash; ``root()`` folds at most log2(n) subtree roots, right to
    left, which is the RFC's split at the largest power of two for every size.
    """

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        stack = self._stack
        stack.append(leaf)
        self.size += 1
        n = self.size
        while not n & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1

    @property
    def subtrees(self) -> list[bytes]:
        """The perfect subtree roots, largest first: with ``size``, all a log needs to go on appending."""
        return list(self._stack)

    @classmethod
    def restore(cls, size: int, subtrees: Sequence[bytes]) -> Frontier:
        if size < 0 or len(subtrees) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in subtrees):
            raise ValueError(f"{len(subtrees)} subtree roots cannot be a tree of size {size}")
        f = cls()
        f.size, f._stack = size, list(subtrees)
        return f

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH(D[n]) from the leaf hashes of D[n]."""
    f = Frontier()
    f.extend(leaf_hashes)
    return f.root()


#: MTH(D[lo:hi]) of a tree's leaves: how a proof reads the node hashes it needs. A log that keeps
#: its interior hashes (tiles) answers each call from O(1) stored hashes; a list of leaf hashes
#: answers it by hashing the range.
Subtree = Callable[[int, int], bytes]


def _subtree(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    f = Frontier()
    for i in range(lo, hi):
        f.append(leaves[i])
    return f.root()


def inclusion_path(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1) for leaf ``index`` in a tree of ``size`` leaves.

    Asks ``subtree`` for O(log n) ranges, each a perfect, aligned subtree or the tree's right edge.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def inclusion_proofs(indices: Iterable[int], leaf_hashes: Sequence[bytes]) -> dict[int, list[bytes]]:
    """PATH(m, D[n]) for many leaves at once, every node hashed once: O(n + k log n), where
    ``inclusion_proof`` per leaf would cost O(n) each."""
    n = len(leaf_hashes)
    wanted = sorted(set(indices))
    if wanted and not (wanted[0] >= 0 and wanted[-1] < n):
        raise ProofError(f"leaves {wanted} are not all in a tree of size {n}")
    proofs: dict[int, list[bytes]] = {i: [] for i in wanted}

    def walk(lo: int, hi: int, inside: list[int]) -> bytes:
        if not inside:
            return _subtree(leaf_hashes, lo, hi)
        if hi - lo == 1:
            return leaf_hashes[lo]
        mid = lo + split_point(hi - lo)
        left_idx = [i for i in inside if i < mid]
        right_idx = [i for i in inside if i >= mid]
        left, right = walk(lo, mid, left_idx), walk(mid, hi, right_idx)
        for i in left_idx:
            proofs[i].append(right)
        for i in right_idx:
            proofs[i].append(left)
        return node_hash(left, right)

    if n:
        walk(0, n, wanted)
    return proofs


def consistency_path(first: int, size: int, subtree: Subtree) -> list[bytes]:
    """PROOF(m, D[n]) (RFC 9162 §2.1.4.1): tree ``first`` is a prefix of the tree of ``size`` leaves."""
    if not 0 <= first <= size:
        raise ProofError(f"no tree of size {first} inside a tree of size {size}")
    if first in (0, size):
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, size, first, True
    # SUBPROOF(m, D[lo:hi], whole), unrolled; siblings are collected top-down, then reversed.
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) for leaf ``index`` in the tree of all ``leaf_hashes``."""
    return inclusion_path(index, len(leaf_hashes), lambda lo, hi: _subtree(leaf_hashes, lo, hi))


def consistency_proof(first: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): tree ``first`` is a prefix of the tree of ``leaf_hashes``."""
    return consistency_path(first, len(leaf_hashes), lambda lo, hi: _subtree(leaf_hashes, lo, hi))


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` place leaf hash ``leaf`` at ``index`` under ``root_hash``?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of size ``first`` a prefix of the tree of size ``second``?"""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a subtree of the second
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
