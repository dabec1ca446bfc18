"""One docking, start to end: identify, index, copy, upload, complete, and (if asked) wipe.

Copying and uploading overlap: an uploader thread sends each file as soon as its spool copy is
complete. The device is only read, except for the wipe, which deletes exactly the files a
verified receipt confirms, and only when they are still the bytes that were copied.

Zero-length files are copied, uploaded and receipted like any other: an empty segment is itself
evidence (a recording that failed, R9.1), and leaving it unexplained on the device, or deleting
it without a record, would hide that. The server verifies it like any other file (the digests of
zero bytes) and it appears in the receipt.

Files the server already holds (``already_held``, matched by serial, path and size) are not
copied again. When the station wipes, each of them is read once to check that its BLAKE3 is the
one the server holds (else it is copied after all) and goes into the manifest, so that the new
receipt confirms it before it is deleted.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custodia_wire.documents import DocumentError, confirmed_files, utc_iso
from custodia_wire.fingerprint import of_stream
from device_drivers.base import DeviceIdentity, DeviceStatus, RecorderDriver, RecordingEntry, RejectedEntry
from device_drivers.errors import DeviceGoneError, DriverError
from device_drivers.registry import driver_for
from ingest_agent.config import AgentSettings
from ingest_agent.copy import (
    CopyAborted,
    SourceChanged,
    SourceReadError,
    SpoolFull,
    copy_recording,
    mtime_iso,
    wait_until_stable,
)
from ingest_agent.dockings import nothing_new, volume_identity
from ingest_agent.journal import FileRecord, FileState, TransferRecord, TransferState
from ingest_agent.progress import DockProgress, Listener, ProgressReporter
from ingest_agent.transfer import Station, close_dock, finish, register, upload_one

log = logging.getLogger(__name__)

#: Passes over files that changed while being copied, before they wait for the next docking.
COPY_PASSES = 3
SPOOL_FULL = "spool full: the remaining files stay on the device until there is room"
UNDOCKED = "device undocked during the copy"


@dataclass(frozen=True)
class DockReport:
    transfer_id: str
    serial: str
    state: str
    files: dict[str, int]  # how many files ended in each state
    error: str | None
    receipt: dict[str, Any] | None


def transfer_payload(
    transfer_id: str,
    docked_at: datetime,
    identity: DeviceIdentity,
    status: DeviceStatus,
    entries: list[RecordingEntry],
    rejected: list[RejectedEntry],
) -> dict[str, Any]:
    """The ``POST /transfers`` body for one docking."""

    def iso(ts: datetime | None) -> str | None:
        return utc_iso(ts) if ts is not None else None

    return {
        "transfer_id": transfer_id,
        "docked_at": utc_iso(docked_at),
        "device": {
            "serial": identity.serial,
            "family": identity.family,
            "model": identity.model,
            "volume_label": identity.volume_label,
        },
        "officer": {"number": identity.officer_no, "name": identity.officer_name},
        "device_status": {
            "clock": iso(status.clock),
            "read_at": iso(status.read_at),
            "battery_percent": status.battery_percent,
            "storage_total_bytes": status.storage_total_bytes,
            "storage_free_bytes": status.storage_free_bytes,
        },
        "index": [index_entry(e, iso(e.started_at)) for e in entries],
        "rejected": [{"path": r.path, "reason": r.reason} for r in rejected],
    }


def index_entry(e: RecordingEntry, started_at: str | None) -> dict[str, Any]:
    """One file of the docking's index; ``important`` (how the device marked it) only when it did."""
    entry: dict[str, Any] = {"path": e.path, "size": e.size, "mtime": mtime_iso(e.mtime), "started_at": started_at}
    if e.important is not None:
        entry["important"] = e.important
    return entry


def ingest_volume(
    root: str | Path,
    settings: AgentSettings | None = None,
    *,
    station: Station | None = None,
    prefer: str | None = None,
    driver_options: dict[str, Any] | None = None,
    listener: Listener | None = None,
    stop: threading.Event | None = None,
    driver: RecorderDriver | None = None,
    transfer_id: str | None = None,
    extra: dict[str, Any] | None = None,
    once_per_docking: bool = False,
) -> DockReport:
    """Transfer one docked recorder (or folder) found at ``root``.

    ``driver`` is an already opened driver for ``root`` (a USB recorder after its handshake), closed
    here; ``extra`` adds top-level keys to the transfer payload (e.g. ``station_clock``).
    ``once_per_docking``: a watcher that sees volumes appear (and a restart sees them all again) does not
    transfer a docking it already finished (``finished_docking``); an operator's one-shot ingest always
    transfers.
    """
    if station is None:
        if settings is None:
            raise ValueError("ingest_volume needs settings or a station")
        with_station = Station.open(settings)
        try:
            return ingest_volume(
                root,
                station=with_station,
                prefer=prefer,
                driver_options=driver_options,
                listener=listener,
                stop=stop,
                driver=driver,
                transfer_id=transfer_id,
                extra=extra,
                once_per_docking=once_per_docking,
            )
        finally:
            with_station.close()
    transfer_id = transfer_id or str(uuid.uuid4())
    station.claim(transfer_id)  # before the docking is journaled, so recovery never picks it up
    try:
        if driver is None:
            driver = driver_for(Path(root), prefer or station.settings.driver, **(driver_options or {}))
        with driver:
            volume = volume_identity(root)
            payload = read_docking(station, driver, transfer_id, extra)
            earlier = finished_docking(station, str(root), volume, payload) if once_per_docking else None
            if earlier is not None:
                log.info(
                    "device %s at %s: the docking transfer %s already finished is still in the dock; nothing new",
                    earlier.device_serial,
                    root,
                    earlier.transfer_id,
                )
                return dock_report(station, earlier.transfer_id)
            dock = station.journal.open_transfer(str(root), payload)
            if volume is not None:
                station.journal.note_volume(transfer_id, str(root), volume)
            # the index was just read: each file's state as of now
            DockSession(station, driver, dock, listener, stop, listed_at=time.monotonic()).run()
    finally:
        station.release(transfer_id)
    return dock_report(station, transfer_id)


def finished_docking(station: Station, root: str, volume: str | None, payload: dict[str, Any]) -> TransferRecord | None:
    """The earlier transfer of this same docking when it finished and the device holds nothing new for it
    (a station restarted with recorders in their docks): see ``ingest_agent.dockings``."""
    if volume is None:
        return None
    earlier = station.journal.last_docking(root, volume)
    if earlier is None or earlier.state != TransferState.DONE or earlier.device_serial != payload["device"]["serial"]:
        return None
    listed = [(f["path"], f["size"], f["mtime"]) for f in payload["index"]]
    states = station.journal.file_states(earlier.transfer_id)
    return earlier if nothing_new(states, listed, wipes=station.settings.wipe_after_receipt) else None


def open_transfer(
    station: Station,
    driver: RecorderDriver,
    root: str,
    transfer_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> TransferRecord:
    """Read the device and journal the docking with its whole index, before anything is copied."""
    return station.journal.open_transfer(root, read_docking(station, driver, transfer_id, extra))


def read_docking(
    station: Station,
    driver: RecorderDriver,
    transfer_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the device: the ``POST /transfers`` body of one docking, with its whole index."""
    docked_at = datetime.now(UTC)
    identity = driver.identify()
    try:
        status = driver.read_status()
    except DeviceGoneError:
        raise
    except DriverError as exc:
        log.warning("device %s: status unreadable: %s", identity.serial, exc)
        status = DeviceStatus(read_at=docked_at)
    entries, too_large = split_oversized(driver.list_recordings(), station.settings.max_recording_bytes)
    payload = transfer_payload(
        transfer_id or str(uuid.uuid4()), docked_at, identity, status, entries, list(driver.rejected) + too_large
    )
    payload.update(extra or {})
    for warning in getattr(driver, "identity_warnings", []):
        log.warning("device %s: %s", identity.serial, warning)
    return payload


def split_oversized(entries: list[RecordingEntry], max_bytes: int) -> tuple[list[RecordingEntry], list[RejectedEntry]]:
    """Recordings to transfer, and those above ``max_bytes`` as rejected entries (left on the device). Pure."""
    keep = [e for e in entries if e.size <= max_bytes]
    refused = [
        RejectedEntry(e.path, f"too large: {e.size} bytes, the station takes at most {max_bytes}")
        for e in entries
        if e.size > max_bytes
    ]
    return keep, refused


def dock_report(station: Station, transfer_id: str) -> DockReport:
    dock = station.journal.transfer(transfer_id)
    files = Counter(f.state for f in station.journal.files(transfer_id))
    return DockReport(
        transfer_id=transfer_id,
        serial=dock.device_serial,
        state=dock.state,
        files=dict(files),
        error=dock.error,
        receipt=dock.receipt,
    )


class Uploader:
    """Sends each file the copier hands over, in the background, while copying goes on.

    Up to ``streams`` files go up at once while the docking is (nearly) alone on the station. The
    server's receiving pass is bound by one core per upload (SM3, the slowest of its three digests,
    ~160 MiB/s a core here), so a second stream lets a lone docking use a second core. With
    ``streams`` or more dockings open, each sends one file at a time: a crowd at the end of a shift
    shares the server fairly instead of doubling its uploads. Each file is one upload, its bytes in order.
    """

    def __init__(self, station: Station, transfer_id: str, reporter: ProgressReporter, streams: int = 1) -> None:
        self._station, self._transfer_id, self._reporter = station, transfer_id, reporter
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._helpers_queue: queue.Queue[int | None] = queue.Queue()
        helpers = max(0, streams - 1)
        self._idle_helpers = threading.Semaphore(helpers)
        self.offline = False
        station.uploads_opened(+1)
        self._thread = threading.Thread(target=self._run, name=f"upload-{transfer_id[:8]}", daemon=True)
        self._helpers = [
            threading.Thread(target=self._help, name=f"upload-{transfer_id[:8]}-{n}", daemon=True)
            for n in range(1, helpers + 1)
        ]
        for t in (self._thread, *self._helpers):
            t.start()

    def put(self, file_id: int) -> None:
        self._queue.put(file_id)

    def close(self) -> None:
        """Wait for every handed-over file (what could not go up stays ``copied``)."""
        self._queue.put(None)
        self._thread.join()
        for _ in self._helpers:
            self._helpers_queue.put(None)
        for t in self._helpers:
            t.join()
        self._station.uploads_opened(-1)

    def _run(self) -> None:
        while (file_id := self._queue.get()) is not None:
            if self.offline:
                continue
            if self._idle_helpers.acquire(blocking=False):
                if self._station.room_for_extra_stream():
                    self._helpers_queue.put(file_id)  # a helper sends it; this thread takes the next
                    continue
                self._idle_helpers.release()
            self._send(file_id)

    def _help(self) -> None:
        while (file_id := self._helpers_queue.get()) is not None:
            try:
                if not self.offline:
                    self._send(file_id)
            finally:
                self._idle_helpers.release()

    def _send(self, file_id: int) -> None:
        try:
            if not upload_one(self._station, self._transfer_id, file_id, self._reporter):
                self.offline = True
        except Exception:
            log.exception("upload of journal file %s failed", file_id)
            self.offline = True


class DockSession:
    """The work on one docked device, from the journaled index to the closed docking."""

    def __init__(
        self,
        station: Station,
        driver: RecorderDriver,
        dock: TransferRecord,
        listener: Listener | None,
        stop: threading.Event | None,
        listed_at: float | None = None,
    ) -> None:
        self.station, self.driver, self.dock = station, driver, dock
        self.journal = station.journal
        self.settings = station.settings
        self.stop = stop or threading.Event()
        self.gone = False
        #: When this process read the index (monotonic); None for a docking resumed from the journal.
        self.listed_at = listed_at
        officer = dock.payload["officer"]
        self.reporter = ProgressReporter(
            DockProgress(
                transfer_id=dock.transfer_id,
                serial=dock.device_serial,
                officer=" ".join(filter(None, (officer.get("number"), officer.get("name")))),
                state=TransferState.DOCKED,
            ),
            send=station.client.report_progress,
            listener=listener,
            interval=self.settings.progress_interval,
        )
        self.reporter.online = False

    @property
    def tid(self) -> str:
        return self.dock.transfer_id

    def run(self) -> str:
        online = register(self.station, self.dock)
        self.reporter.online = online
        to_send = [f for f in self.journal.files(self.tid) if f.state != FileState.HELD]
        self.reporter.update(
            state=TransferState.REGISTERED if online else TransferState.DOCKED,
            force=True,
            files_total=len(to_send),
            bytes_total=sum(f.size for f in to_send),
        )
        if online and self.settings.wipe_after_receipt:
            self._fingerprint_held()
        pending = len(self.journal.files(self.tid, FileState.PENDING)) + 1
        while True:
            outcome = self._copy_round(online)
            state = finish(self.station, self.tid, self.reporter, self.stop)
            online = state != TransferState.WAITING
            progressed, pending = self._room_for_more(pending)
            if outcome == "spool full" and online and progressed:
                continue  # the receipt freed spool space: copy the rest
            break
        return self._close(state, outcome)

    def _close(self, state: str, outcome: str) -> str:
        if state == TransferState.RECEIPTED:
            if self.settings.wipe_after_receipt and not self.gone and not self.stop.is_set():
                self._wipe()
            if outcome == "spool full":
                state = TransferState.WAITING
                self.journal.set_transfer_state(self.tid, state, SPOOL_FULL)
            else:
                state = close_dock(self.station, self.tid, interrupted=self.gone)
        elif outcome == "spool full":
            self.journal.set_transfer_state(self.tid, state, SPOOL_FULL)
        elif self.gone:
            self.journal.set_transfer_state(self.tid, state, "device undocked during the copy; uploads wait")
        dock = self.journal.transfer(self.tid)
        self.reporter.update(state=state, message=dock.error or "", force=True)
        self.reporter.flush()
        return state

    def _room_for_more(self, pending_before: int) -> tuple[bool, int]:
        """Did the last round copy something, and does the next pending file fit now?"""
        pending = self.journal.files(self.tid, FileState.PENDING)
        fits = bool(pending) and not self.gone and self.station.spool.room() >= pending[0].size
        return fits and len(pending) < pending_before, len(pending)

    # --- copying --------------------------------------------------------------------------

    def _copy_round(self, online: bool) -> str:
        """Copy what is pending; return "done", "spool full", "device gone" or "stopped"."""
        uploader = Uploader(self.station, self.tid, self.reporter, self.settings.upload_streams) if online else None
        self.reporter.update(state=TransferState.COPYING)
        self.journal.set_transfer_state(self.tid, TransferState.COPYING)
        try:
            return self._copy_passes(uploader)
        finally:
            if uploader is not None:
                uploader.close()

    def _copy_passes(self, uploader: Uploader | None) -> str:
        todo = self.journal.files(self.tid, FileState.PENDING)
        for n in range(COPY_PASSES):
            retry: list[FileRecord] = []
            for rec in todo:
                try:
                    if not self._copy_one(rec, uploader):
                        retry.append(self.journal.file(rec.id))
                except SpoolFull as exc:
                    log.warning("device %s: %s", self.dock.device_serial, exc.reason)
                    self.reporter.update(message=exc.reason, force=True)
                    return "spool full"
                except DeviceGoneError:
                    self.gone = True
                    self.journal.set_transfer_state(self.tid, TransferState.INTERRUPTED, UNDOCKED)
                    self.reporter.update(state=TransferState.INTERRUPTED, message="device undocked", force=True)
                    return "device gone"
                except CopyAborted:
                    return "stopped"
            if not retry:
                return "done"
            todo = retry
            if n + 1 < COPY_PASSES:
                self.stop.wait(self.settings.stability_seconds)
        return "done"

    def _copy_one(self, rec: FileRecord, uploader: Uploader | None) -> bool:
        """Copy one file into the spool; False if it changed and should be tried again."""
        counted = 0

        def on_bytes(n: int) -> None:
            nonlocal counted
            counted += n
            self.reporter.add(bytes_copied=n)

        try:
            size, mtime = wait_until_stable(
                self.driver,
                rec.path,
                seconds=self.settings.stability_seconds,
                timeout=self.settings.stability_timeout_seconds,
                stop=self.stop,
                listed=(rec.size, rec.mtime),
                listed_at=self.listed_at,
            )
            if (size, mtime_iso(mtime)) != (rec.size, rec.mtime):
                self.journal.update(rec.id, size=size, mtime=mtime_iso(mtime))
            result = copy_recording(
                self.driver,
                rec.path,
                expected=(size, mtime),
                spool=self.station.spool,
                file_id=rec.id,
                block_size=self.settings.copy_block_bytes,
                stop=self.stop,
                on_bytes=on_bytes,
            )
        except (SourceChanged, SourceReadError) as exc:
            self.reporter.add(bytes_copied=-counted)
            self.journal.fail(rec.id, exc.reason, retryable=True)
            log.warning("%s: %s", rec.path, exc.reason)
            return False
        except (SpoolFull, CopyAborted, DeviceGoneError):
            self.reporter.add(bytes_copied=-counted)
            raise
        except DriverError as exc:  # e.g. replaced by a symlink: never copied
            self.journal.fail(rec.id, f"refused by the driver: {exc}", retryable=False)
            return True
        fp = result.fingerprint
        self.journal.move(
            rec.id,
            FileState.COPIED,
            blake3=fp.blake3,
            sha256=fp.sha256,
            copied_at=utc_iso(result.copied_at),
            spool_path=str(result.spool_path),
            reason=None,
            retryable=0,
        )
        if uploader is not None:
            uploader.put(rec.id)
        return True

    # --- wiping ---------------------------------------------------------------------------

    def _fingerprint_held(self) -> None:
        """Hash files the server already holds, so the receipt can confirm them for the wipe."""
        for rec in self.journal.files(self.tid, FileState.HELD):
            try:
                with self.driver.open_recording(rec.path) as source:
                    fp = of_stream(source, block_size=self.settings.copy_block_bytes)
            except DeviceGoneError:
                self.gone = True
                return
            except (DriverError, OSError) as exc:
                log.warning("%s: cannot read for the wipe check: %s", rec.path, exc)
                continue
            if fp.blake3 != rec.blake3 or fp.size != rec.size:
                log.warning("%s: differs from the recording the server holds under this name; copying it", rec.path)
                self.journal.move(rec.id, FileState.PENDING, blake3=None, recording_id=None, verified=0)
            else:
                self.journal.update(rec.id, sha256=fp.sha256)

    def _wipe(self) -> None:
        """Delete device files the verified receipt confirms, if they are still what was copied."""
        dock = self.journal.transfer(self.tid)
        try:
            confirmed = confirmed_files(dock.receipt or {}, self.station.client.public_key)
        except DocumentError as exc:
            log.error("transfer %s: stored receipt does not verify, nothing wiped: %s", self.tid, exc)
            return
        wiped = 0
        for rec in self.journal.files(self.tid, FileState.RECEIPTED):
            item = confirmed.get(rec.path)
            if item is None or (item["size"], item["blake3"]) != (rec.size, rec.blake3):
                continue
            try:
                size, mtime = self.driver.stat_recording(rec.path)
                if (size, mtime_iso(mtime)) != (rec.size, rec.mtime):
                    log.warning("%s changed after the copy; kept on the device", rec.path)
                    continue
                self.driver.delete_recording(rec.path)
            except DeviceGoneError:
                self.gone = True
                break
            except DriverError as exc:
                log.warning("%s: not wiped: %s", rec.path, exc)
                continue
            self.journal.move(rec.id, FileState.WIPED)
            wiped += 1
        self.reporter.update(message=f"{wiped} file(s) wiped from the device", force=True)
