"""custody: block maps, sightings, stations serving other units (issue 14 items 1, 2, 5, 6; issue 15 item 2)

- ``recordings.block_map_root`` and ``recording_block_maps``: the BLAKE3 of every block of a recording,
  so each read (a Range too) is checked as it streams; the root is in the ``recording.verified`` entry.
- ``sightings``: every device, path and transfer where a recording's bytes were delivered and verified.
  Filled from ``transfer_files`` (each with its transfer's device) and from the recordings themselves.
- ``station_units``: units besides its own whose devices a station may take in.

Revision ID: 0008_custody
Revises: 0007_query_indexes
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import evidence_server.db

revision = "0008_custody"
down_revision = '0007_query_indexes'
branch_labels = None
depends_on = None

UTC = evidence_server.db.UTCDateTime(timezone=True)


def _fk(table: str, column: str, other: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{other}.id"], name=op.f(f"fk_{table}_{column}_{other}"))


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.add_column(sa.Column("block_map_root", sa.String(length=71), nullable=True))
    op.create_table(
        "recording_block_maps",
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("block_size", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=71), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("made_at", UTC, nullable=False),
        _fk("recording_block_maps", "recording_id", "recordings"),
        sa.PrimaryKeyConstraint("recording_id", name=op.f("pk_recording_block_maps")),
    )
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("device_serial", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.String(length=32), nullable=True),
        sa.Column("seen_at", UTC, nullable=False),
        _fk("sightings", "recording_id", "recordings"),
        _fk("sightings", "transfer_id", "transfers"),
        _fk("sightings", "station_id", "stations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("transfer_id", "path", name="uq_sightings_transfer_path"),
    )
    op.create_index("ix_sightings_recording_id", "sightings", ["recording_id"])
    op.create_index("ix_sightings_device_path", "sightings", ["device_serial", "path"])
    op.create_table(
        "station_units",
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", UTC, nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        _fk("station_units", "station_id", "stations"),
        _fk("station_units", "unit_id", "units"),
        _fk("station_units", "granted_by_id", "users"),
        sa.PrimaryKeyConstraint("station_id", "unit_id", name=op.f("pk_station_units")),
    )
    # every file a transfer received, with its transfer's device and station ...
    op.execute(
        "INSERT INTO sightings (recording_id, device_serial, path, transfer_id, station_id, upload_id, seen_at)"
        " SELECT tf.recording_id, t.device_serial, tf.path, tf.transfer_id, t.station_id, NULL, tf.verified_at"
        " FROM transfer_files tf JOIN transfers t ON t.id = tf.transfer_id"
    )
    # ... and each recording's first delivery, where no transfer_files row names it
    op.execute(
        "INSERT INTO sightings (recording_id, device_serial, path, transfer_id, station_id, upload_id, seen_at)"
        " SELECT r.id, r.device_serial, r.original_path, r.transfer_id, r.station_id, NULL, r.verified_at"
        " FROM recordings r WHERE NOT EXISTS (SELECT 1 FROM sightings s"
        " WHERE s.transfer_id = r.transfer_id AND s.path = r.original_path)"
    )


def downgrade() -> None:
    op.drop_table("station_units")
    op.drop_index("ix_sightings_device_path", table_name="sightings")
    op.drop_index("ix_sightings_recording_id", table_name="sightings")
    op.drop_table("sightings")
    op.drop_table("recording_block_maps")
    with op.batch_alter_table("recordings") as batch_op:
        batch_op.drop_column("block_map_root")
