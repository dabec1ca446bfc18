"""The Merkle math agrees with RFC 6962's published vectors and with an independent reference."""

from __future__ import annotations

import pytest

from custodia_wire import merkle
from tests.audit import reference

# RFC 6962 test data (the Certificate Transparency reference trees): leaves, then MTH for sizes 0..8.
VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
VECTOR_CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
LEAF_HASHES = [merkle.leaf_hash(d) for d in VECTOR_LEAVES]


@pytest.mark.parametrize("size", range(len(VECTOR_ROOTS)))
def test_roots_match_the_rfc_vectors(size: int) -> None:
    assert merkle.root(LEAF_HASHES[:size]).hex() == VECTOR_ROOTS[size]
    assert reference.mth(VECTOR_LEAVES[:size]).hex() == VECTOR_ROOTS[size]


@pytest.mark.parametrize("index, size", sorted(VECTOR_INCLUSION))
def test_inclusion_proofs_match_the_rfc_vectors(index: int, size: int) -> None:
    got = merkle.inclusion_proof(index, LEAF_HASHES[:size])
    assert [h.hex() for h in got] == VECTOR_INCLUSION[index, size]
    assert merkle.verify_inclusion(LEAF_HASHES[index], index, size, got, bytes.fromhex(VECTOR_ROOTS[size]))


@pytest.mark.parametrize("first, second", sorted(VECTOR_CONSISTENCY))
def test_consistency_proofs_match_the_rfc_vectors(first: int, second: int) -> None:
    got = merkle.consistency_proof(first, LEAF_HASHES[:second])
    assert [h.hex() for h in got] == VECTOR_CONSISTENCY[first, second]
    assert merkle.verify_consistency(
        first, second, bytes.fromhex(VECTOR_ROOTS[first]), bytes.fromhex(VECTOR_ROOTS[second]), got
    )


DATA = [f"entry {i}".encode() * (i % 3 + 1) for i in range(40)]
HASHES = [merkle.leaf_hash(d) for d in DATA]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 40])
def test_every_proof_agrees_with_the_reference_and_verifies_both_ways(n: int) -> None:
    d, leaves = DATA[:n], HASHES[:n]
    root = merkle.root(leaves)
    assert root == reference.mth(d)
    for m in range(n):
        p = merkle.inclusion_proof(m, leaves)
        assert p == reference.path(m, d)
        assert reference.root_from_path(d[m], m, n, p) == root
        assert merkle.verify_inclusion(leaves[m], m, n, p, root)
        assert not merkle.verify_inclusion(leaves[m], m, 2 * n + 1, p, root)
        assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), m, n, p, root)
        if p:
            assert not merkle.verify_inclusion(leaves[m], m, n, [*p[:-1], bytes(32)], root)
            assert not merkle.verify_inclusion(leaves[m], (m + 1) % n, n, p, root) or n == 1
    for m in range(n + 1):
        c = merkle.consistency_proof(m, leaves)
        if 0 < m < n:
            assert c == reference.proof(m, d)
        old_root = reference.mth(d[:m])
        assert merkle.verify_consistency(m, n, old_root, root, c)
        if 0 < m < n:
            assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"x"), root, c)
            assert not merkle.verify_consistency(m, n, old_root, root, c[:-1])


def test_incremental_frontier_matches_mth_at_every_size() -> None:
    f = merkle.Frontier()
    for i, leaf in enumerate(HASHES):
        assert f.root() == reference.mth(DATA[:i])
        f.append(leaf)


def test_a_fork_is_not_consistent() -> None:
    forked = [*HASHES[:5], merkle.leaf_hash(b"rewritten"), *HASHES[6:12]]
    proof = merkle.consistency_proof(8, forked)
    assert not merkle.verify_consistency(8, 12, merkle.root(HASHES[:8]), merkle.root(forked), proof)


def test_split_is_the_largest_power_of_two_below_n() -> None:
    assert [merkle.split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]
