"""A transfer after the copying: register it, upload the spool, complete, keep the receipt, clean up.

These steps run both right after a docking and, after a crash or an outage, from ``recover``.
Each is idempotent and reads its state from the journal.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from custodia_wire.documents import Manifest, ManifestFile
from ingest_agent.client import (
    ApiError,
    Backoff,
    ReceiptRejected,
    ServerUnavailable,
    StationClient,
    StationCredentials,
)
from ingest_agent.config import AgentSettings
from ingest_agent.copy import Spool
from ingest_agent.journal import FileState, Journal, TransferRecord, TransferState
from ingest_agent.progress import ProgressReporter
from ingest_agent.upload import upload_recording

log = logging.getLogger(__name__)


@dataclass
class Station:
    """What one running agent shares between its docks: settings, journal, spool, server session."""

    settings: AgentSettings
    journal: Journal
    spool: Spool
    client: StationClient
    credentials: StationCredentials
    #: Transfers a worker is busy with right now; ``recover`` leaves them alone.
    active: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Dockings whose uploader is open: a docking sends more than one file at once only while fewer
    #: than ``upload_streams`` dockings are open, so a crowd gets one stream each, fairly.
    uploading_docks: int = 0

    @classmethod
    def open(cls, settings: AgentSettings) -> Station:
        settings.prepare_dirs()
        creds = StationCredentials.load(settings.station_file)
        client = StationClient(
            settings.server_url,
            creds,
            timeout=settings.http_timeout_seconds,
            backoff=_backoff(settings),
            chunk_bytes=settings.upload_chunk_bytes,
            resume_attempts=settings.upload_resume_attempts,
        )
        return cls(
            settings=settings,
            journal=Journal(settings.journal_path),
            spool=Spool(settings.spool_dir, settings.spool_max_bytes, settings.spool_reserve_bytes),
            client=client,
            credentials=creds,
        )

    def close(self) -> None:
        self.client.close()
        self.journal.close()

    def claim(self, transfer_id: str) -> bool:
        with self.lock:
            if transfer_id in self.active:
                return False
            self.active.add(transfer_id)
            return True

    def release(self, transfer_id: str) -> None:
        with self.lock:
            self.active.discard(transfer_id)

    def uploads_opened(self, delta: int) -> None:
        with self.lock:
            self.uploading_docks += delta

    def room_for_extra_stream(self) -> bool:
        with self.lock:
            return self.uploading_docks < self.settings.upload_streams


def _backoff(settings: AgentSettings) -> Backoff:
    return Backoff(settings.retry_attempts, settings.retry_base_delay, settings.retry_max_delay)


def register(station: Station, dock: TransferRecord) -> bool:
    """Tell the server about the docking (idempotent); skip what it already holds.

    Returns False when the server cannot be reached: copying goes on, uploads wait.
    """
    if dock.registered_at is not None:
        return True
    try:
        answer = station.client.start_transfer(dock.payload)
    except ServerUnavailable as exc:
        log.warning("server unreachable; %s goes on offline: %s", dock.transfer_id, exc)
        return False
    held = station.journal.mark_registered(dock.transfer_id, answer.get("already_held") or [])
    if answer.get("vanished"):
        log.warning(
            "device %s: files gone without transfer since its last docking: %s", dock.device_serial, answer["vanished"]
        )
    log.info("transfer %s registered; %d file(s) already held by the server", dock.transfer_id, len(held))
    return True


def upload_one(station: Station, transfer_id: str, file_id: int, reporter: ProgressReporter | None) -> bool:
    """Upload one copied file. False if the server is unreachable (the file stays copied)."""
    rec = station.journal.file(file_id)
    if rec.state != FileState.COPIED:
        return True
    counted = 0

    def on_offset(offset: int) -> None:
        nonlocal counted
        if reporter is not None:
            reporter.add(bytes_uploaded=offset - counted)
        counted = offset

    try:
        rec = upload_recording(station.client, station.journal, rec, transfer_id, on_offset)
    except ServerUnavailable as exc:
        log.warning("upload of %s waits: %s", rec.path, exc)
        if reporter is not None:
            reporter.add(bytes_uploaded=-counted)
        return False
    except ApiError as exc:  # refused for good (bad metadata, unknown transfer...)
        station.journal.fail(file_id, f"upload refused: {exc}", retryable=False)
        return True
    if reporter is not None and rec.state == FileState.UPLOADED:
        reporter.add(files_done=1, bytes_uploaded=rec.size - counted)
    return True


def upload_copied(
    station: Station, transfer_id: str, reporter: ProgressReporter | None = None, stop: threading.Event | None = None
) -> bool:
    """Upload every copied file of a transfer; False if some must wait for the server."""
    for rec in station.journal.files(transfer_id, FileState.COPIED):
        if stop is not None and stop.is_set():
            return False
        if not upload_one(station, transfer_id, rec.id, reporter):
            return False
    return True


def manifest_of(station: Station, dock: TransferRecord) -> Manifest:
    """Every file of the docking whose fingerprint this station took, as the manifest lists it."""
    payload = dock.payload
    # the device's important mark, as the journaled index took it at docking (重要文件标记)
    marks = {e["path"]: e["important"] for e in payload.get("index", []) if e.get("important")}
    files = [
        ManifestFile(
            path=f.path, size=f.size, blake3=f.blake3, sha256=f.sha256, mtime=f.mtime, important=marks.get(f.path)
        )
        for f in station.journal.files(dock.transfer_id)
        if f.blake3 and f.sha256 and f.state != FileState.PENDING
    ]
    return Manifest(
        transfer_id=dock.transfer_id,
        station={"station_id": station.credentials.station_id, "name": station.credentials.station_name},
        device=payload["device"],
        officer=payload["officer"],
        docked_at=payload["docked_at"],
        files=files,
    )


def complete(station: Station, transfer_id: str) -> list[int] | None:
    """Send the manifest and keep the verified receipt; the ids of receipted files, or None."""
    dock = station.journal.transfer(transfer_id)
    manifest = manifest_of(station, dock)
    try:
        done = station.client.complete(manifest)
    except ServerUnavailable as exc:
        log.warning("completion of %s waits: %s", transfer_id, exc)
        return None
    except (ApiError, ReceiptRejected) as exc:
        log.error("completion of %s refused: %s", transfer_id, exc)
        station.journal.set_transfer_state(transfer_id, TransferState.WAITING, f"completion refused: {exc}")
        return None
    receipted = station.journal.store_receipt(transfer_id, done.receipt, done.confirmed, done.missing)
    for rec in station.journal.files(transfer_id, FileState.UPLOADED):
        # all bytes went up but the receipt does not confirm it: upload it afresh next time
        station.journal.move(rec.id, FileState.COPIED, upload_url=None, verified=0, recording_id=None)
    if done.missing:
        log.warning("transfer %s: server lacks %s", transfer_id, done.missing)
    return receipted


def release_spool(station: Station, transfer_id: str, *, final: bool = False) -> int:
    """Delete spool copies the receipt confirms (R6: no copies kept); return bytes freed.

    With ``final``, also the copies of files that failed for good: the device keeps the original.
    """
    freed = 0
    for rec in station.journal.files(transfer_id):
        if rec.spool_path is None:
            continue
        if rec.state in (FileState.RECEIPTED, FileState.WIPED) or (final and rec.state == FileState.FAILED):
            path = Path(rec.spool_path)
            freed += path.stat().st_size if path.exists() else 0
            station.spool.remove(path)
            station.journal.update(rec.id, spool_path=None)
    if freed:
        station.spool.sync_dir()
    return freed


def finish(
    station: Station, transfer_id: str, reporter: ProgressReporter | None = None, stop: threading.Event | None = None
) -> str:
    """Take a transfer as far as the server allows now; return its dock state."""
    journal = station.journal
    dock = journal.transfer(transfer_id)
    if not register(station, dock):
        return _settle(station, transfer_id, TransferState.WAITING, "server unreachable")
    if reporter is not None:
        reporter.online = True
        reporter.update(state=TransferState.UPLOADING)
    if not upload_copied(station, transfer_id, reporter, stop):
        return _settle(station, transfer_id, TransferState.WAITING, "uploads wait for the server")
    if reporter is not None:
        reporter.update(state=TransferState.COMPLETING)
    if complete(station, transfer_id) is None:
        return _settle(
            station,
            transfer_id,
            TransferState.WAITING,
            journal.transfer(transfer_id).error or "completion waits for the server",
        )
    release_spool(station, transfer_id)
    if journal.files(transfer_id, FileState.COPIED, FileState.UPLOADED):
        return _settle(station, transfer_id, TransferState.WAITING, "server did not confirm every file")
    return TransferState.RECEIPTED


def _settle(station: Station, transfer_id: str, state: str, error: str | None) -> str:
    station.journal.set_transfer_state(transfer_id, state, error)
    return state


def close_dock(station: Station, transfer_id: str, *, interrupted: bool = False) -> str:
    """The docking has nothing left to do: drop failed copies, name its final state."""
    journal = station.journal
    release_spool(station, transfer_id, final=True)
    not_copied = len(journal.files(transfer_id, FileState.PENDING, FileState.FAILED))
    note = f"{not_copied} file(s) not transferred; they stay on the device" if not_copied else None
    if interrupted:
        state, note = TransferState.INTERRUPTED, "device undocked during the copy" + (f"; {note}" if note else "")
    else:
        state = TransferState.DONE
    journal.set_transfer_state(transfer_id, state, note)
    return state


def recover(station: Station, stop: threading.Event | None = None) -> dict[str, str]:
    """Finish what the journal says was under way: partial copies, uploads, completions, cleanups.

    Devices are not touched here: a device still docked is seen again by the watcher, and files
    its earlier docking has receipted are then wiped (if the station wipes) after a new receipt.
    """
    outcome: dict[str, str] = {}
    for part in station.spool.sweep_partials():
        log.info("removed partial copy %s left by an interrupted run", part.name)
    for dock in station.journal.transfers(unfinished=True):
        if (stop is not None and stop.is_set()) or not station.claim(dock.transfer_id):
            continue
        try:
            outcome[dock.transfer_id] = _recover_dock(station, dock, stop)
        finally:
            station.release(dock.transfer_id)
    return outcome


def _recover_dock(station: Station, dock: TransferRecord, stop: threading.Event | None) -> str:
    journal = station.journal
    for rec in journal.files(dock.transfer_id, FileState.COPIED, FileState.UPLOADED):
        if rec.spool_path is None or not Path(rec.spool_path).is_file():
            journal.update(rec.id, spool_path=None)
            journal.fail(rec.id, "spool copy lost; copied again at the next docking", retryable=True)
    for rec in journal.files(dock.transfer_id, FileState.PENDING):
        # a crash between the rename and the journal commit leaves a complete but unrecorded copy;
        # the device still holds the original, so the copy goes and the file waits for a docking
        station.spool.remove(station.spool.final_path(rec.id))
    state = finish(station, dock.transfer_id, stop=stop)
    if state == TransferState.RECEIPTED:
        interrupted = dock.state == TransferState.INTERRUPTED or "undocked" in (dock.error or "")
        state = close_dock(station, dock.transfer_id, interrupted=interrupted)
    log.info("recovered transfer %s: %s", dock.transfer_id, state)
    return state
