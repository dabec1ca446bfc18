"""Tiles: the log's interior hashes give the same proofs as the leaves, while reading O(log n) of them."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from custodia_wire import merkle
from evidence_server.audit.log import inclusion_document, issue_checkpoint, stored_leaf_hashes
from evidence_server.audit.models import AuditTile
from evidence_server.audit.tiles import TreeReader, extend_tiles
from evidence_server.context import ServerContext
from tests.audit.conftest import append, tamper

SMALL = 2  # tiles of 4 hashes: a few hundred entries exercise four levels of tiles


def leaves(ctx: ServerContext, size: int) -> list[bytes]:
    with ctx.sessionmaker() as s:
        return list(stored_leaf_hashes(s, size))


def test_proofs_from_tiles_equal_proofs_from_the_leaves_at_every_size(ctx: ServerContext) -> None:
    """Built in steps (as checkpoints build them), across every tile edge of four levels."""
    append(ctx, 150)
    everything = leaves(ctx, 150)
    with ctx.sessionmaker() as s:
        for built in (0, 3, 4, 17, 64, 100, 150):  # tiles built so far; the right edge comes from leaves
            extend_tiles(s, built, height=SMALL)
            s.commit()
            for size in sorted({1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, built, 150} - {0}):
                if size > 150:
                    continue
                tree = TreeReader(s, size, height=SMALL)
                assert tree.subtree(0, size) == merkle.root(everything[:size])
                for index in {0, size // 2, size - 1}:
                    assert merkle.inclusion_path(index, size, tree.subtree) == merkle.inclusion_proof(
                        index, everything[:size]
                    )
                for first in {1, size // 3, size - 1}:
                    if 0 < first <= size:
                        assert merkle.consistency_path(first, size, tree.subtree) == merkle.consistency_proof(
                            first, everything[:size]
                        )


def test_tiles_are_built_once_level_by_level(ctx: ServerContext) -> None:
    append(ctx, 70)
    with ctx.sessionmaker() as s:
        assert extend_tiles(s, 70, height=SMALL) == 17 + 4 + 1  # 17 full tiles of leaves, 4 above them, 1 above
        assert extend_tiles(s, 70, height=SMALL) == 0  # idempotent
        s.commit()
        top = s.scalar(select(AuditTile).where(AuditTile.level == 2))
        assert top is not None and top.root == merkle.root(leaves(ctx, 64))


@pytest.mark.parametrize("size", [1_000, 4_000])
def test_an_inclusion_proof_reads_a_logarithmic_number_of_rows(ctx: ServerContext, size: int) -> None:
    """Rows read for one proof grow with log n (a few tiles and one right edge), not with n."""
    append(ctx, size)
    with ctx.sessionmaker() as s:
        extend_tiles(s, size, height=SMALL)
        s.commit()
        reader = TreeReader(s, size, height=SMALL)
        # count statements rather than fetched rows: each reads one tile or one short edge range
        statements = 0

        def per_statement(*_args: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(s.get_bind(), "before_cursor_execute", per_statement)
        try:
            path = merkle.inclusion_path(size // 3, size, reader.subtree)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", per_statement)
        assert merkle.verify_inclusion(leaves(ctx, size)[size // 3], size // 3, size, path, reader.subtree(0, size))
        assert statements <= 3 * size.bit_length(), statements


def test_a_checkpoint_builds_the_tiles_its_proofs_read(ctx: ServerContext) -> None:
    append(ctx, 600)  # two full tiles of 256 and a right edge
    with ctx.sessionmaker() as s:
        cp, _ = issue_checkpoint(ctx, s)
        assert s.scalar(select(AuditTile.idx).where(AuditTile.level == 0, AuditTile.idx == 1)) == 1
        doc = inclusion_document(s, 300, cp)
    path = [bytes.fromhex(h) for h in doc["audit_path"]]
    assert merkle.verify_inclusion(bytes.fromhex(doc["leaf_hash"]), 300, 600, path, bytes.fromhex(cp.root_hash))


def test_a_rewritten_tile_gives_proofs_that_fail_against_the_signed_root(ctx: ServerContext) -> None:
    """Tiles are derived, never trusted: a forged tile cannot make a false proof verify."""
    append(ctx, 600)
    with ctx.sessionmaker() as s:
        cp, _ = issue_checkpoint(ctx, s)

    def zeros(n: int) -> str:
        return f"decode('{'00' * n}', 'hex')" if ctx.engine.dialect.name == "postgresql" else f"X'{'00' * n}'"

    tamper(ctx, f"UPDATE audit_tiles SET hashes = {zeros(32 * 256)}, root = {zeros(32)}")  # noqa: S608
    with ctx.sessionmaker() as s:
        doc = inclusion_document(s, 300, cp)
    path = [bytes.fromhex(h) for h in doc["audit_path"]]
    assert not merkle.verify_inclusion(bytes.fromhex(doc["leaf_hash"]), 300, 600, path, bytes.fromhex(cp.root_hash))
