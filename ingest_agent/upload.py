"""Bringing one spooled recording to the server, with the journal as the memory between attempts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from custodia_wire.fingerprint import of_file
from ingest_agent.client import StationClient, UploadGone, UploadMismatch
from ingest_agent.journal import FileRecord, FileState, Journal

log = logging.getLogger(__name__)

#: Fingerprint mismatches (460) one file may meet: after the first a fresh upload starts from the
#: spool copy, after the second the file is failed (the integrity incidents are on the server).
MAX_MISMATCH_UPLOADS = 2
#: Fresh uploads after the server lost one (410/404); beyond that the file waits for the next pass.
MAX_LOST_UPLOADS = 5


def upload_metadata(rec: FileRecord, transfer_id: str) -> dict[str, str]:
    assert rec.blake3 and rec.sha256 and rec.copied_at
    return {
        "transfer_id": transfer_id,
        "path": rec.path,
        "filename": rec.path.rsplit("/", 1)[-1],
        "blake3": rec.blake3,
        "sha256": rec.sha256,
        "mtime": rec.mtime,
        "copied_at": rec.copied_at,
    }


def spool_copy_intact(rec: FileRecord) -> bool:
    """Does the spool copy still have the fingerprint taken from the device?"""
    if rec.spool_path is None or not Path(rec.spool_path).is_file():
        return False
    fp = of_file(rec.spool_path)
    return (fp.blake3, fp.sha256, fp.size) == (rec.blake3, rec.sha256, rec.size)


def upload_recording(
    client: StationClient,
    journal: Journal,
    rec: FileRecord,
    transfer_id: str,
    on_offset: Callable[[int], None] | None = None,
) -> FileRecord:
    """Upload (or resume uploading) one copied file; return its record, ``uploaded`` or ``failed``.

    The upload URL is journaled right after creation, so a restart resumes from the server's
    offset instead of sending the file again. ServerUnavailable propagates: the file stays
    ``copied`` and is retried later.
    """
    lost = 0
    while True:
        url, fresh = rec.upload_url, False
        if url is None:
            url = client.create_upload(rec.size, upload_metadata(rec, transfer_id))
            journal.update(rec.id, upload_url=url)
            rec, fresh = journal.file(rec.id), True
        try:
            assert rec.spool_path is not None
            result = client.send_file(url, Path(rec.spool_path), rec.size, fresh=fresh, on_offset=on_offset)
        except OSError as exc:  # reading the spool copy failed
            return journal.fail(
                rec.id, f"spool copy unreadable ({exc}); copied again at the next docking", retryable=True
            )
        except UploadGone:
            journal.update(rec.id, upload_url=None)
            lost += 1
            if lost >= MAX_LOST_UPLOADS:
                return journal.fail(rec.id, "the server lost the upload repeatedly", retryable=True)
            rec = journal.file(rec.id)
            continue
        except UploadMismatch as exc:
            journal.update(rec.id, upload_url=None)
            mismatches = journal.count_attempt(rec.id)
            rec = journal.file(rec.id)
            log.error("server rejected %s: fingerprint mismatch (incident %s)", rec.path, exc.incident_id)
            if not spool_copy_intact(rec):
                return journal.fail(rec.id, "spool copy damaged; copied again at the next docking", retryable=True)
            if mismatches >= MAX_MISMATCH_UPLOADS:
                return journal.fail(
                    rec.id, f"server fingerprint mismatch again (incident {exc.incident_id})", retryable=False
                )
            continue
        return journal.move(
            rec.id,
            FileState.UPLOADED,
            verified=int(result.verified),
            recording_id=str(result.recording_id) if result.recording_id else None,
        )
