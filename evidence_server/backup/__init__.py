"""Backup and restore of a whole Custodia: the database, the object store and the signing key.

``custodia backup create DIR`` writes::

    DIR/manifest.json        custodia.backup/1: what is in here, when, from where
    DIR/database.pgdump      pg_dump --format=custom (PostgreSQL) — or database.sqlite3 (SQLite backup API)
    DIR/objects.json         every object copied: key, size, blake3, sha256
    DIR/objects/<key>        the objects themselves (evidence under blake3/…, derived files under derived/…)
    DIR/keys/server-ed25519.pem

The database is dumped first and the objects listed after, so every object a dumped row refers to
is in the backup (objects are write-once and content-addressed). Each object is hashed while it is
copied, out of the store and again into the restored one: a backup never carries silently changed
bytes. ``custodia backup restore DIR`` restores into an empty database and any store (a local disk
backup can go to S3 and back), then checks the audit log and the fixity of every recording.
"""

BACKUP_FORMAT = "custodia.backup/1"
