"""P8: verified downloads against the same downloads without verification, in one run.

The server checks every block of an original against its block map before sending it (evidence_server/
custody). The baseline is the same server process, the same recording, the same HTTP stack, streaming the
stored object without any check (a route only this benchmark mounts, as the content route did before
verified reads). Whole downloads and runs of 1 MiB ranges at random offsets (a player seeking) are timed,
interleaved ``--rounds`` times; the figures are the ratios of the medians. ``curl`` is the client, so the
client is not what limits the rate. Part of ``scripts/bench`` (see BENCHMARKS.md); alone::

    .venv/bin/python -m tests.benchmarks.bench_reads --mib 1024
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, Request
from fastapi.responses import StreamingResponse

from evidence_server.app import create_app
from evidence_server.audit.service import record as audit
from evidence_server.db import SessionDep
from evidence_server.recordings.router import get_visible
from evidence_server.recordings.service import parse_range
from evidence_server.security import AnyUser
from tests.benchmarks.bench_dock import alternate, median
from tests.support.live import LiveServer, free_port, wait_ready

MiB = 1024**2


def app_factory() -> FastAPI:
    """The real app, plus ``/bench/raw/{id}``: the content route as it was before verified reads (the same
    visibility check, the same audit entry, the stored bytes streamed with no check): the baseline."""
    app = create_app(with_web=False)

    @app.get("/bench/raw/{recording_id}")
    def raw(
        recording_id: int,
        request: Request,
        user: AnyUser,
        session: SessionDep,
        range_: Annotated[str | None, Header(alias="range")] = None,
    ) -> StreamingResponse:
        ctx = app.state.ctx
        rec = get_visible(session, user, recording_id)
        start, end = parse_range(range_, rec.size) if range_ else (0, rec.size - 1)
        audit(session, "recording.download", request=request, object_type="recording", object_id=rec.id)
        session.commit()
        return StreamingResponse(
            ctx.store.iter_range(rec.storage_key, start, end),
            status_code=206 if range_ else 200,
            headers={"Content-Length": str(end - start + 1)},
        )

    return app


def _curl(url: str, token: str, ranges: list[str] | None = None) -> float:
    """Seconds to fetch ``url`` whole (or each of ``ranges``) with curl into /dev/null."""
    headers = ["-H", f"Authorization: Bearer {token}"]
    started = time.perf_counter()
    for rng in ranges or [""]:
        extra = ["-H", f"Range: bytes={rng}"] if rng else []
        subprocess.run(["curl", "-sf", "-o", "/dev/null", *headers, *extra, url], check=True)
    return time.perf_counter() - started


def _upload(server: LiveServer, data_path: Path) -> int:
    """One recording delivered like a station does: verified on receipt, its block map made."""
    from tests.server.test_station_flow import Station

    size = data_path.stat().st_size
    st = Station(server, name=f"bench-{uuid.uuid4().hex[:6]}")
    from custodia_wire.fingerprint import of_file

    fp = of_file(data_path)
    path = "DCIM/20261121/BENCH_0001.MP4"
    st.transfer_id = str(uuid.uuid4())
    st.serial = "BENCH07"
    r = st.http.post(
        "/api/v1/transfers",
        json={
            "transfer_id": st.transfer_id,
            "docked_at": "2026-11-21T10:00:00Z",
            "device": {"serial": "BENCH07", "family": "folder"},
            "index": [{"path": path, "size": size}],
        },
    )
    r.raise_for_status()
    from tests.server.test_station_flow import b64

    meta = {"transfer_id": st.transfer_id, "path": path, "blake3": fp.blake3, "sha256": fp.sha256}
    created = st.http.post(
        "/api/v1/uploads",
        headers={"Upload-Length": str(size), "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in meta.items())},
    )
    location = created.headers["location"]
    with open(data_path, "rb") as f:

        def pieces() -> Iterator[bytes]:
            while block := f.read(8 * MiB):
                yield block

        r = st.http.patch(
            location,
            content=pieces(),
            headers={
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(size),
            },
            timeout=600,
        )
    assert r.headers.get("Custodia-Verified") == "true", r.text
    return int(r.headers["Custodia-Recording-Id"])


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("bench-out"))
    ap.add_argument("--mib", type=int, default=1024, help="size of the recording downloaded")
    ap.add_argument("--ranges", type=int, default=100, help="1 MiB ranges at random offsets per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    work = (args.dir / "reads").resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "server").mkdir(parents=True)
    data = work / "original.bin"
    with open(data, "wb") as f:
        for _ in range(args.mib):
            f.write(os.urandom(MiB))

    from evidence_server.dbadmin import upgrade

    url = f"sqlite:///{work / 'server' / 'custodia.sqlite3'}"
    upgrade(url)
    server = LiveServer(data_dir=work / "server", database_url=url, mode="thread", port=free_port())
    server.bootstrap()
    env = {**os.environ, **server.settings_env()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.benchmarks.bench_reads:app_factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        wait_ready(server.url, proc=proc)
        rec = _upload(server, data)
        token = server.login()
        size = data.stat().st_size
        rng = random.Random(7)
        ranges = []
        for _ in range(args.ranges):
            start = rng.randrange(0, size - MiB)
            ranges.append(f"{start}-{start + MiB - 1}")
        content = f"{server.url}/api/v1/recordings/{rec}/content"
        raw = f"{server.url}/bench/raw/{rec}"
        assert httpx.get(content, headers={"Authorization": f"Bearer {token}", "Range": "bytes=0-9"}).status_code == 206
        print(f"P8 verified downloads of {args.mib} MiB against unverified ones (interleaved) …", flush=True)
        runs = alternate(
            args.rounds,
            raw=lambda: _curl(raw, token),
            verified=lambda: _curl(content, token),
            raw_ranges=lambda: _curl(raw, token, ranges),
            verified_ranges=lambda: _curl(content, token, ranges),
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    t = {name: median(times) for name, times in runs.items()}
    results = {
        "p8_download_mib": args.mib,
        "p8_unverified_mib_s": round(args.mib / t["raw"], 1),
        "p8_verified_mib_s": round(args.mib / t["verified"], 1),
        "p8_verified_vs_unverified": round(t["raw"] / t["verified"], 2),
        "p8_ranges_verified_vs_unverified": round(t["raw_ranges"] / t["verified_ranges"], 2),
        "p8_range_verified_ms": round(t["verified_ranges"] / args.ranges * 1000, 1),
    }
    shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    for key, value in collect(argv).items():
        print(f"{key:<40}{value!s:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
