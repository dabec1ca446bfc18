"""The running agent: watch the docks, one worker per docked recorder, progress bars, clean stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from custodia_wire.documents import utc_iso
from device_drivers.errors import DeviceGoneError, DriverError
from device_drivers.settle import arrived, snapshot, wait_until_settled
from device_drivers.usb.hotplug import UsbWatcher
from device_drivers.volume_watch import VolumeWatcher
from ingest_agent.client import ApiError, NotEnrolled, StationRefused, enrol
from ingest_agent.config import AgentSettings
from ingest_agent.pipeline import DockReport, ingest_volume
from ingest_agent.ports import (
    ADVICE_ADMIN,
    ADVICE_NONE,
    ADVICE_WAIT,
    DONE,
    EMPTY,
    FAILED,
    RETRYING,
    SETTLING,
    TRANSFERRING,
    WAITING,
    Failure,
    PortReporter,
    classify,
    port_name,
)
from ingest_agent.progress import DockProgress, Listener
from ingest_agent.progress_lines import LineProgress
from ingest_agent.transfer import Station, recover
from ingest_agent.usb_dock import UsbDock

log = logging.getLogger(__name__)


class ProgressView:
    """One rich progress bar per docked device: serial, officer, files x/y, bytes, speed, state."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[serial]}"),
            TextColumn("{task.fields[officer]}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, p: DockProgress) -> None:
        fields: dict[str, Any] = {
            "serial": p.serial,
            "officer": p.officer or "-",
            "files": f"{p.files_done}/{p.files_total} files",
            "state": p.state + (f": {p.message}" if p.message else ""),
        }
        done = max(p.bytes_copied, p.bytes_uploaded)
        with self._lock:
            task = self._tasks.get(p.transfer_id)
            if task is None:
                self._tasks[p.transfer_id] = self.progress.add_task(
                    p.serial, total=p.bytes_total or None, completed=done, **fields
                )
            else:
                self.progress.update(task, total=p.bytes_total or None, completed=done, **fields)


def progress_view(console: Console | None = None) -> ProgressView | LineProgress:
    """Bars on a terminal; one line per file and per dock when the output goes to a log."""
    console = console or Console()
    if console.is_terminal:
        return ProgressView(console)
    return LineProgress(lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))


class DockWorkers:
    """Starts one ``ingest_volume`` thread per docked volume; several docks run at once.

    A volume is read only once it has settled (its files arrive over seconds), identification is
    tried again before the dock is given up, and every port's state, failures with their reason
    and advice included, is reported to the server (``ingest_agent.ports``).
    """

    def __init__(
        self,
        station: Station,
        view: Listener | None,
        stop: threading.Event,
        skip: Callable[[Path], bool] | None = None,
        ports: PortReporter | None = None,
    ) -> None:
        self.station, self.view, self.stop = station, view, stop
        self.skip = skip  # volumes another dock handles (USB recorders after their handshake)
        self.ports = ports or PortReporter(None)
        self._threads: dict[Path, threading.Thread] = {}
        self._again: set[Path] = set()
        self._lock = threading.Lock()
        self.reports: list[DockReport] = []
        self.failures: dict[Path, Failure] = {}

    def on_added(self, root: Path) -> None:
        if self.skip is not None and self.skip(root):
            log.info("volume %s belongs to a USB recorder being docked", root)
            return
        with self._lock:
            running = self._threads.get(root)
            if running is not None and running.is_alive():
                self._again.add(root)  # docked again while the last docking still uploads
                return
            t = threading.Thread(target=self._work, args=(root,), name=f"dock-{root.name}", daemon=True)
            self._threads[root] = t
            t.start()

    def on_removed(self, root: Path) -> None:
        log.info("volume %s went away", root)
        self.station.journal.note_undocked(str(root))
        with self._lock:
            running = self._threads.get(root)
            busy = running is not None and running.is_alive()
        if not busy:
            self.ports.report(port_name(root), EMPTY)

    def _work(self, root: Path) -> None:
        while not self.stop.is_set():
            more = self._dock(root)
            with self._lock:
                if root not in self._again and not more:
                    break
                self._again.discard(root)
            if not root.exists():
                break
        if not root.exists():
            self.ports.report(port_name(root), EMPTY)

    def _dock(self, root: Path) -> bool:
        """Settle, identify (with retries), transfer; True when files arrived meanwhile (dock again)."""
        settings, port = self.station.settings, port_name(root)
        attempts = max(1, settings.identify_attempts)
        for attempt in range(1, attempts + 1):
            self.ports.report(port, SETTLING, advice=ADVICE_WAIT, attempt=attempt)
            settled = wait_until_settled(
                root, quiet=settings.settle_seconds, timeout=settings.settle_timeout_seconds, stop=self.stop
            )
            if settled.gone or self.stop.is_set():
                return False
            try:
                report = ingest_volume(
                    root, station=self.station, listener=self._listener(port), stop=self.stop, once_per_docking=True
                )
            except DeviceGoneError:
                return False
            except StationRefused as exc:  # re-enrolled, revoked or rotated away: the server said why
                log.error("%s: %s", root, exc)
                self._failed(root, classify(exc), attempt)
                return False
            except DriverError as exc:
                failure = classify(exc)
                if attempt < attempts and root.exists():
                    log.warning("%s: %s; looking again (attempt %d of %d)", root, exc, attempt + 1, attempts)
                    self.ports.report(port, RETRYING, reason=failure.reason, advice=ADVICE_WAIT, attempt=attempt)
                    if self.stop.wait(settings.identify_retry_seconds):
                        return False
                    continue
                self._failed(root, failure, attempt)
                return False
            except Exception as exc:
                log.exception("docking at %s failed", root)
                self._failed(root, classify(exc), attempt)
                return False
            self.failures.pop(root, None)
            self.reports.append(report)
            log.info("device %s at %s: %s %s", report.serial, root, report.state, report.files)
            self._finished(port, report)
            return bool(arrived(settled.snapshot, snapshot(root)) - self._taken(report))
        return False

    def _failed(self, root: Path, failure: Failure, attempt: int) -> None:
        self.failures[root] = failure
        self.ports.report(port_name(root), FAILED, reason=failure.reason, advice=failure.advice, attempt=attempt)

    def _finished(self, port: str, report: DockReport) -> None:
        state = {"done": DONE, "failed": FAILED}.get(report.state, WAITING)
        advice = ADVICE_ADMIN if state == FAILED else ADVICE_WAIT if state == WAITING else ADVICE_NONE
        self.ports.report(
            port, state, reason=report.error, advice=advice, serial=report.serial, transfer_id=report.transfer_id
        )

    def _taken(self, report: DockReport) -> set[str]:
        """Device paths this docking listed (wiped ones vanish, held ones stay: neither is new)."""
        return {f.path for f in self.station.journal.files(report.transfer_id)}

    def _listener(self, port: str) -> Listener:
        """The progress view, plus the port's move to "transferring" once the recorder is known."""
        told: set[str] = set()

        def listen(p: DockProgress) -> None:
            if p.transfer_id not in told:
                told.add(p.transfer_id)
                self.ports.report(port, TRANSFERRING, serial=p.serial, transfer_id=p.transfer_id, advice=ADVICE_WAIT)
            if self.view is not None:
                self.view(p)

        return listen

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %s: stopping after the current block", signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def heartbeat(station: Station) -> None:
    station.client.heartbeat(
        spool_bytes=station.spool.used_bytes(),
        free_bytes=station.spool.free_bytes(),
        station_time=utc_iso(datetime.now(UTC)),
    )


def run_agent(
    settings: AgentSettings,
    *,
    stop: threading.Event | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> list[DockReport]:
    """Watch ``settings.dock_roots`` until stopped; finish unfinished transfers first."""
    if not settings.dock_roots and not settings.usb_docking:
        raise ValueError("no dock roots configured (CUSTODIA_AGENT_DOCK_ROOTS) and USB docking is off")
    stop = stop or threading.Event()
    station = Station.open(settings)
    view = progress_view(console) if show_progress else None
    usb = UsbDock(station, listener=view, stop=stop) if settings.usb_docking else None
    ports = PortReporter(station.client.report_port)
    workers = DockWorkers(station, view, stop, skip=usb.owns if usb else None, ports=ports)
    try:
        with stop_on_signals(stop), view or _nothing():
            recover(station, stop)
            watcher = VolumeWatcher(
                list(settings.dock_roots),
                workers.on_added,
                workers.on_removed,
                poll_interval=settings.poll_interval,
                debounce=settings.debounce_seconds,
            )
            usb_watcher = (
                UsbWatcher(
                    usb.allow,
                    usb.on_added,
                    usb.on_removed,
                    poll_interval=settings.poll_interval,
                    debounce=settings.debounce_seconds,
                )
                if usb
                else None
            )
            watcher.start()
            if usb_watcher is not None:
                usb_watcher.start()
            try:
                heartbeat(station)
                while not stop.wait(settings.recover_interval):
                    heartbeat(station)
                    recover(station, stop)
            finally:
                if usb_watcher is not None:
                    usb_watcher.stop()
                watcher.stop()
                workers.join()
                if usb is not None:
                    usb.join()
    finally:
        station.close()
    return workers.reports


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def ingest_path(
    path: str | Path,
    settings: AgentSettings,
    *,
    serial: str | None = None,
    officer_no: str | None = None,
    officer_name: str | None = None,
    prefer: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    stop: threading.Event | None = None,
) -> DockReport:
    """One-shot import of a folder or volume (``custodia agent ingest PATH``)."""
    options = {k: v for k, v in (("serial", serial), ("officer_no", officer_no), ("officer_name", officer_name)) if v}
    if options and prefer is None:
        prefer = "folder"  # identity given by hand: read the path as a plain folder
    stop = stop or threading.Event()
    station = Station.open(settings)
    view = progress_view(console) if show_progress else None
    try:
        with stop_on_signals(stop), view or _nothing():
            recover(station, stop)
            return ingest_volume(
                Path(path), station=station, prefer=prefer, driver_options=options, listener=view, stop=stop
            )
    finally:
        station.close()


# --- entry points the CLI wires up ------------------------------------------------------------


def main_enrol(
    code: str, *, server_url: str | None = None, name: str | None = None, settings: AgentSettings | None = None
) -> int:
    """``custodia agent enrol CODE``: store the token and pin the server key in ``station.json``."""
    settings = settings or AgentSettings()
    settings.prepare_dirs()
    try:
        creds = enrol(
            server_url or settings.server_url,
            code,
            name=name or settings.station_name,
            station_file=settings.station_file,
        )
    except ApiError as exc:
        Console(stderr=True).print(f"[red]enrolment failed:[/red] {exc}")
        return 1
    Console().print(
        f"enrolled as station {creds.station_id} ({creds.station_name}); "
        f"server key {creds.server_key_id} pinned in {settings.station_file}"
    )
    return 0


def main_run(settings: AgentSettings | None = None) -> int:
    """``custodia agent run``: watch the docks until SIGINT/SIGTERM."""
    settings = settings or AgentSettings()
    try:
        run_agent(settings)
    except (NotEnrolled, ValueError) as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        return 2
    except StationRefused as exc:  # revoked, or enrolled again elsewhere: nothing works until enrolled again
        Console(stderr=True).print(f"[red]{exc}[/red]")
        return 3
    return 0


def main_ingest(
    path: str | Path,
    settings: AgentSettings | None = None,
    *,
    serial: str | None = None,
    officer_no: str | None = None,
    officer_name: str | None = None,
    wipe: bool | None = None,
) -> int:
    """``custodia agent ingest PATH``: exit 0 when the docking is done, 1 when files wait, 2 on errors."""
    settings = settings or AgentSettings()
    if wipe is not None:
        settings = settings.model_copy(update={"wipe_after_receipt": wipe})
    try:
        report = ingest_path(path, settings, serial=serial, officer_no=officer_no, officer_name=officer_name)
    except (NotEnrolled, StationRefused, DriverError, OSError) as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        return 2
    console = Console()
    console.print(
        f"transfer {report.transfer_id} of {report.serial}: {report.state} "
        + ", ".join(f"{n} {s}" for s, n in sorted(report.files.items()))
    )
    if report.error:
        console.print(report.error)
    return 0 if report.state in ("done",) else 1
