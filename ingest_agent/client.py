"""The station's side of the station API (docs/station-api.md), over httpx.

Requests that fail on the network or with a 5xx are retried with growing back-off, a bounded
number of times. Uploads use tus 1.0 and always resume from the server's offset (HEAD). Bodies
stream from the spool file in pieces; no file is ever read into memory whole. A receipt is
trusted only after its signature verifies against the server key pinned at enrolment.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from custodia_wire import TUS_VERSION, directio
from custodia_wire.documents import DocumentError, Manifest, confirmed_files, load_public_key_b64

log = logging.getLogger(__name__)

API = "/api/v1"
AGENT_VERSION = "0.1.0"
RETRY_STATUSES = frozenset({500, 502, 503, 504, 429})


class ApiError(Exception):
    """The server refused a request; ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: Any, what: str = "") -> None:
        super().__init__(f"{what}: HTTP {status}: {detail}" if what else f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class ServerUnavailable(ApiError):
    """No answer (or only 5xx answers) after every retry."""


class UploadMismatch(ApiError):
    """460: the server's digests differ from ours; the upload is void and an incident recorded."""

    def __init__(self, detail: Any, incident_id: str | None) -> None:
        super().__init__(460, detail, "upload rejected")
        self.incident_id = incident_id


class UploadGone(ApiError):
    """404/410 on an upload: the server no longer has it (voided, expired, or never created)."""


class StationRefused(ApiError):
    """401: the server no longer accepts this station's token (revoked, enrolled again elsewhere, rotated).

    Its message is the server's explanation, meant for the station's operator: nothing this station
    does will work until it is enrolled again.
    """

    def __init__(self, detail: Any) -> None:
        message = detail.get("message") if isinstance(detail, dict) else None
        self.code = detail.get("code") if isinstance(detail, dict) else None
        super().__init__(401, message or detail, "the server refuses this station")


class ReceiptRejected(Exception):
    """The receipt's signature, transfer or manifest digest does not check out."""


class NotEnrolled(RuntimeError):
    """``station.json`` is missing: run ``custodia agent enrol CODE`` first."""


@dataclass(frozen=True)
class StationCredentials:
    station_id: str
    station_name: str
    token: str
    server_public_key: str  # base64 raw Ed25519 (or base64 DER of an SM2 key), pinned at enrolment
    server_key_id: str
    server_url: str

    def save(self, path: Path) -> None:
        """Write atomically, readable by the agent's user only (it holds the station token)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: Path) -> StationCredentials:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise NotEnrolled(f"station not enrolled ({path} missing): run `custodia agent enrol CODE`") from exc
        return cls(**data)


@dataclass(frozen=True)
class PatchResult:
    offset: int
    recording_id: str | None = None
    verified: bool = False


@dataclass(frozen=True)
class Completion:
    receipt: dict[str, Any]
    confirmed: dict[str, dict[str, Any]]
    missing: list[str]


@dataclass(frozen=True)
class Backoff:
    attempts: int = 5
    base: float = 0.5
    ceiling: float = 30.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts: base, 2·base, 4·base … capped, ``attempts - 1`` of them."""
        for i in range(max(self.attempts - 1, 0)):
            yield min(self.base * (2**i), self.ceiling)


def enrol(
    server_url: str,
    code: str,
    *,
    name: str | None = None,
    station_file: Path,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> StationCredentials:
    """Exchange a one-time enrolment code for a station token and pin the server's public key."""
    body = {"code": code, "name": name, "hostname": socket.gethostname()}
    with httpx.Client(base_url=server_url, timeout=timeout, transport=transport) as http:
        resp = http.post(f"{API}/stations/enrol", json={k: v for k, v in body.items() if v is not None})
    if resp.status_code != 201:
        raise ApiError(resp.status_code, _detail(resp), "enrolment refused")
    data = resp.json()
    load_public_key_b64(data["server_public_key"])  # refuse a key that is not one
    creds = StationCredentials(
        station_id=str(data["station_id"]),
        station_name=data.get("station_name") or (name or ""),
        token=data["token"],
        server_public_key=data["server_public_key"],
        server_key_id=data.get("server_key_id", ""),
        server_url=server_url,
    )
    creds.save(station_file)
    return creds


class StationClient:
    """An authenticated station session. Thread-safe (httpx.Client is)."""

    def __init__(
        self,
        server_url: str,
        credentials: StationCredentials,
        *,
        timeout: float = 60.0,
        backoff: Backoff | None = None,
        chunk_bytes: int = 32 * 1024 * 1024,
        resume_attempts: int = 8,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credentials = credentials
        self.public_key = load_public_key_b64(credentials.server_public_key)
        self.backoff = backoff or Backoff()
        self.chunk_bytes = chunk_bytes
        self.resume_attempts = resume_attempts
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=server_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Authorization": f"Bearer {credentials.token}", "User-Agent": f"custodia-agent/{AGENT_VERSION}"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on network errors and 5xx with growing back-off."""
        delays = self.backoff.delays()
        while True:
            asked = 0.0
            try:
                resp = self._http.request(method, url, **kwargs)
                if resp.status_code == 401:
                    raise StationRefused(_detail(resp))
                if resp.status_code not in RETRY_STATUSES:
                    return resp
                failure: Exception = ApiError(resp.status_code, _detail(resp), f"{method} {url}")
                asked = _retry_after(resp)
            except httpx.TransportError as exc:
                failure = exc
            delay = next(delays, None)
            if delay is not None:  # a 429/503 that says when to come back is heeded, within the ceiling
                delay = min(max(delay, asked), self.backoff.ceiling)
            if delay is None:
                status = failure.status if isinstance(failure, ApiError) else 0
                raise ServerUnavailable(status, str(failure), f"{method} {url}") from failure
            log.warning("%s %s failed (%s); retrying in %.1f s", method, url, failure, delay)
            self._sleep(delay)

    def absolute(self, location: str) -> str:
        return urljoin(str(self._http.base_url), location)

    # --- transfers ------------------------------------------------------------------------

    def start_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        resp = self._request("POST", f"{API}/transfers", json=payload)
        if resp.status_code not in (200, 201):
            raise ApiError(resp.status_code, _detail(resp), "transfer refused")
        return dict(resp.json())

    def report_progress(self, transfer_id: str, body: dict[str, Any]) -> None:
        """Best effort: a lost progress report is not worth a retry storm."""
        try:
            resp = self._http.put(f"{API}/transfers/{transfer_id}/progress", json=body)
            if resp.status_code >= 400:
                log.warning("progress report refused: HTTP %s %s", resp.status_code, _detail(resp))
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: client already closed
            log.warning("progress report failed: %s", exc)

    def report_port(self, body: dict[str, Any]) -> None:
        """Tell the server a dock port's state (best effort, one try: the next change is sent anyway)."""
        try:
            resp = self._http.post(f"{API}/stations/me/ports", json=body)
            if resp.status_code >= 400:
                log.warning("port report refused: HTTP %s %s", resp.status_code, _detail(resp))
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: client already closed
            log.warning("port report failed: %s", exc)

    def rotate_token(self, station_file: Path) -> StationCredentials:
        """Get a new station token and save it atomically; this client then uses it.

        The server keeps the old token valid until the new one is used, so a crash before the save
        loses nothing: rotating again with the old token works.
        """
        resp = self._request("POST", f"{API}/stations/me/token")
        if resp.status_code != 201:
            raise ApiError(resp.status_code, _detail(resp), "token rotation refused")
        creds = replace(self.credentials, token=str(resp.json()["token"]))
        creds.save(station_file)
        self.credentials = creds
        self._http.headers["Authorization"] = f"Bearer {creds.token}"
        return creds

    def heartbeat(self, spool_bytes: int, free_bytes: int, station_time: str) -> None:
        """Tell the server this station is alive; a network failure is only logged, but a refused
        token raises ``StationRefused`` (the running agent stops and shows why)."""
        body = {
            "spool_bytes": spool_bytes,
            "free_bytes": free_bytes,
            "agent_version": AGENT_VERSION,
            "station_time": station_time,
        }
        try:
            resp = self._http.post(f"{API}/stations/me/heartbeat", json=body)
        except httpx.HTTPError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        if resp.status_code == 401:
            raise StationRefused(_detail(resp))

    def complete(self, manifest: Manifest) -> Completion:
        """Send the manifest; return the receipt only once its signature and contents check out."""
        resp = self._request("POST", f"{API}/transfers/{manifest.transfer_id}/complete", json=manifest.to_dict())
        if resp.status_code != 200:
            raise ApiError(resp.status_code, _detail(resp), "completion refused")
        data = resp.json()
        receipt = data.get("receipt")
        if not isinstance(receipt, dict):
            raise ReceiptRejected("the server answered without a receipt")
        try:
            confirmed = confirmed_files(receipt, self.public_key)
        except DocumentError as exc:
            raise ReceiptRejected(f"receipt does not verify against the pinned server key: {exc}") from exc
        if receipt.get("transfer_id") != manifest.transfer_id:
            raise ReceiptRejected("receipt is for another transfer")
        if receipt.get("manifest_blake3") != manifest.digest():
            raise ReceiptRejected("receipt is for another manifest")
        return Completion(receipt=receipt, confirmed=confirmed, missing=list(data.get("missing") or []))

    # --- tus uploads ----------------------------------------------------------------------

    def create_upload(self, length: int, metadata: dict[str, str]) -> str:
        """POST a new upload; return its absolute URL."""
        encoded = ",".join(f"{k} {base64.b64encode(v.encode('utf-8')).decode()}" for k, v in metadata.items())
        resp = self._request(
            "POST",
            f"{API}/uploads",
            headers={"Tus-Resumable": TUS_VERSION, "Upload-Length": str(length), "Upload-Metadata": encoded},
        )
        if resp.status_code != 201 or "Location" not in resp.headers:
            raise ApiError(resp.status_code, _detail(resp), "upload refused")
        return self.absolute(resp.headers["Location"])

    def upload_state(self, url: str) -> PatchResult:
        """The server's view of an upload (the truth after any error or restart)."""
        resp = self._request("HEAD", url, headers={"Tus-Resumable": TUS_VERSION})
        if resp.status_code in (404, 410):
            raise UploadGone(resp.status_code, "upload no longer exists", "HEAD")
        if resp.status_code != 200:
            raise ApiError(resp.status_code, _detail(resp), "HEAD upload")
        return _result(resp)

    def terminate(self, url: str) -> None:
        try:
            self._http.delete(url, headers={"Tus-Resumable": TUS_VERSION})
        except httpx.HTTPError as exc:
            log.warning("could not terminate upload %s: %s", url, exc)

    def send_file(
        self,
        url: str,
        spool_path: Path,
        size: int,
        *,
        fresh: bool = False,
        on_offset: Callable[[int], None] | None = None,
    ) -> PatchResult:
        """Send ``spool_path`` from the server's offset to its end, resuming after any failure.

        Ends with the server's verdict: a PatchResult with ``verified`` and ``recording_id``, or
        UploadMismatch. Once every byte is there, an empty PATCH asks for the verdict (this also
        finalizes an upload whose last answer was lost, e.g. in a server restart).
        """
        failures = 0
        state = PatchResult(offset=0) if fresh else self.upload_state(url)
        with _SpoolReader(spool_path) as source:
            while not state.verified:
                before = state.offset
                try:
                    state = self._patch(
                        url, source, state.offset, max(min(self.chunk_bytes, size - state.offset), 0), on_offset
                    )
                    if state.offset <= before and not state.verified:
                        raise _Retry(f"server made no progress at offset {before}")
                    failures = 0  # the bound is on failures in a row, not per file
                except (httpx.TransportError, _Retry) as exc:
                    failures += 1
                    if failures > self.resume_attempts:
                        raise ServerUnavailable(0, str(exc), f"upload {url}") from exc
                    delay = min(self.backoff.base * 2 ** (failures - 1), self.backoff.ceiling)
                    log.warning("upload %s interrupted (%s); resuming in %.1f s", url, exc, delay)
                    self._sleep(delay)
                    state = self.upload_state(url)
                    continue
                if on_offset:
                    on_offset(state.offset)
        return state

    def _patch(
        self, url: str, source: _SpoolReader, offset: int, length: int, on_offset: Callable[[int], None] | None
    ) -> PatchResult:
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(length),
        }
        resp = self._http.patch(url, headers=headers, content=source.pieces(offset, length, on_offset))
        if resp.status_code == 204:
            return _result(resp)
        if resp.status_code == 460:
            detail = _json(resp)
            raise UploadMismatch(detail.get("detail"), detail.get("incident_id"))
        lost = resp.status_code == 409 and "Upload-Offset" not in resp.headers
        if resp.status_code in (404, 410) or lost:
            raise UploadGone(resp.status_code, _detail(resp), "PATCH")  # void, or its bytes were lost
        if resp.status_code in (409, 423, 507) or resp.status_code in RETRY_STATUSES:
            raise _Retry(f"HTTP {resp.status_code}: {_detail(resp)}")  # offset conflict, busy, full: re-HEAD
        raise ApiError(resp.status_code, _detail(resp), "PATCH upload")


def _result(resp: httpx.Response) -> PatchResult:
    return PatchResult(
        offset=int(resp.headers["Upload-Offset"]),
        recording_id=resp.headers.get("Custodia-Recording-Id"),
        verified=resp.headers.get("Custodia-Verified", "").lower() == "true",
    )


class _Retry(Exception):
    """A PATCH answer after which the offset must be asked again."""


class _SpoolReader:
    """Reads a spool file for PATCH bodies, with ``O_DIRECT`` where the filesystem allows.

    The spool was written with ``O_DIRECT`` and is read exactly once more, here: going around the
    page cache saves filling (and, on a VM, faulting in) a cached copy nobody reads again. Without
    the kernel's read-ahead, the next block is read on a helper thread while this one is sent.
    """

    BLOCK = 4 * 1024 * 1024

    def __init__(self, path: Path) -> None:
        self.fd, self.direct = directio.open_direct(path, os.O_RDONLY)
        self.bufs = [directio.borrow(self.BLOCK) for _ in range(2)]
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="spool-read")

    def __enter__(self) -> _SpoolReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ahead.shutdown(wait=True)
        os.close(self.fd)
        for buf in self.bufs:
            directio.give_back(buf)

    def _read(self, buf: Any, start: int) -> int:
        """Read up to a block at ``start`` (aligned when direct) into ``buf``; bytes read."""
        if self.direct:
            try:
                return os.preadv(self.fd, [buf], start)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                directio.drop_direct(self.fd)
                self.direct = False
        return os.preadv(self.fd, [buf], start)

    def pieces(self, offset: int, length: int, on_offset: Callable[[int], None] | None) -> Iterator[bytes]:
        """The body of one PATCH, block by block (each piece is valid until the next is asked for)."""
        end = offset + length
        start = offset - offset % directio.ALIGN  # blocks start aligned; the first piece skips the head
        i = 0
        ahead = self._ahead.submit(self._read, self.bufs[0], start) if offset < end else None
        while ahead is not None:
            n = ahead.result()
            buf = self.bufs[i % 2]
            nxt = start + self.BLOCK
            ahead = (
                self._ahead.submit(self._read, self.bufs[(i + 1) % 2], nxt) if n == self.BLOCK and nxt < end else None
            )
            piece = memoryview(buf)[offset - start : min(n, end - start)]
            if not piece:
                if ahead is not None:
                    ahead.result()
                raise OSError(f"spool file shorter than expected at offset {offset}")
            try:
                yield piece  # type: ignore[misc]  # h11 copies it into its send buffer at once
            except BaseException:
                if ahead is not None:
                    ahead.result()  # never leave a read running into a buffer we give back
                raise
            offset += len(piece)
            if on_offset:
                on_offset(offset)
            start, i = nxt, i + 1
        if offset < end:
            raise OSError(f"spool file shorter than expected at offset {offset}")


def _retry_after(resp: httpx.Response) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or not a number of seconds)."""
    try:
        return max(float(resp.headers.get("Retry-After", "0")), 0.0)
    except ValueError:
        return 0.0


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _detail(resp: httpx.Response) -> Any:
    data = _json(resp)
    return data.get("detail", resp.text[:200]) if data else resp.text[:200]
