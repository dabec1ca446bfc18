"""Push ingest throughput: a clip pushed with python-swiftclient against ``curl --upload-file`` of the same
file to a plain static PUT (nginx's dav module), in one run, interleaved ``--rounds`` times.

Both go over loopback to a server on this machine. The push side is the whole custody path: the body
streamed to staging while MD5 (checked against the ETag), BLAKE3 and SHA-256 are computed, then stored
content-addressed and recorded by ``uploads.finalize``. Each round changes the first bytes of the clip, so
every push is new evidence (nothing is deduplicated). The client's MD5 is computed before the clock starts
(a recorder system knows it). Alone::

    .venv/bin/python -m tests.benchmarks.bench_push --mib 1024
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.benchmarks.bench_dock import alternate, median
from tests.support.live import LiveServer, free_port, wait_ready

MiB = 1024**2
SERIAL = "AXW-BENCH"
USER_UUID = "0b1e7c2a-0000-4000-8000-000000000001"


def make_clip(path: Path, mib: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(block[:-8] + i.to_bytes(8, "big"))


def stamp(path: Path, n: int) -> str:
    """Make the clip new evidence (its first bytes), and return its MD5."""
    with open(path, "r+b") as f:
        f.write(f"round-{n:08d}".encode())
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            h.update(block)
    return h.hexdigest()


def start_nginx(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (work / "dav").mkdir()
    (work / "nginx-body").mkdir()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(
        f"""{user}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {work}/dav;
    location / {{ dav_methods PUT; create_full_put_path on; }}
  }}
}}
"""
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off;"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


def setup_push(server: LiveServer) -> dict[str, str]:
    """A device administrator, an officer, a recorder, a push account; users and devices registered."""
    from swiftclient.client import Connection

    admin = server.create_user("devadmin", "device_admin", unit_id=1)
    server.create_user("officer", "officer", unit_id=1, officer_no="1001")
    auth = {"Authorization": f"Bearer {admin}"}
    httpx.post(server.url + "/api/v1/devices", json={"serial": SERIAL, "family": "folder"}, headers=auth)
    r = httpx.post(server.url + "/api/v1/push/accounts", json={"name": "bench"}, headers=auth)
    r.raise_for_status()
    conn_file: dict[str, str] = r.json()["connection_file"]
    conn = Connection(
        authurl=conn_file["AuthenticationTokenURI"][0],  # type: ignore[index]
        user=conn_file["BlobAPIUserName"],
        key=conn_file["BlobAPIKey"],
        auth_version="1",
        retries=0,
    )
    conn.put_object("Users", USER_UUID, contents=b"", headers={"X-Object-Meta-UserID": "1001"})
    conn.put_object("Devices", SERIAL, contents=b"")
    return conn_file


def run(args: argparse.Namespace) -> dict[str, float]:
    from swiftclient.client import Connection

    from evidence_server.dbadmin import upgrade

    work = args.dir.resolve() / f"push-{int(time.time())}"
    work.mkdir(parents=True)
    clip = work / "clip.mp4"
    print(f"making a {args.mib} MiB clip …", flush=True)
    make_clip(clip, args.mib)
    (work / "server").mkdir()
    url = f"sqlite:///{work / 'server' / 'custodia.sqlite3'}"
    upgrade(url)
    server = LiveServer(data_dir=work / "server", database_url=url, mode="process", port=free_port())
    server.bootstrap()
    server.start()
    wait_ready(server.url)
    nginx, nginx_port = start_nginx(work)
    try:
        conn_file = setup_push(server)
        conn = Connection(
            authurl=conn_file["AuthenticationTokenURI"][0],  # type: ignore[index]
            user=conn_file["BlobAPIUserName"],
            key=conn_file["BlobAPIKey"],
            auth_version="1",
            retries=0,
        )
        counter = iter(range(10**6))

        def push() -> float:
            n = next(counter)
            md5 = stamp(clip, n)
            container = f"{USER_UUID}_{SERIAL}_20261204_{100000 + n:06d}"
            conn.put_container(container)
            with open(clip, "rb") as f:
                t0 = time.perf_counter()
                etag = conn.put_object(
                    container,
                    f"20261204_100000_{n}.mp4",
                    contents=f,
                    content_length=args.mib * MiB,
                    etag=md5,
                    chunk_size=4 * MiB,
                )
                took = time.perf_counter() - t0
            assert etag == md5
            conn.post_container(container, headers={"X-Container-Meta-Status": "Complete"})
            return took

        def curl() -> float:
            n = next(counter)
            t0 = time.perf_counter()
            out = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--upload-file", str(clip)]
                + [f"http://127.0.0.1:{nginx_port}/clip-{n}.mp4"],
                check=True,
                capture_output=True,
                text=True,
            )
            took = time.perf_counter() - t0
            assert out.stdout in ("201", "204"), out.stdout
            (work / "dav" / f"clip-{n}.mp4").unlink()
            return took

        print(f"{args.rounds} rounds, interleaved: swiftclient → Custodia push, curl → nginx dav PUT …", flush=True)
        times = alternate(args.rounds, swiftclient=push, curl=curl)
    finally:
        nginx.terminate()
        nginx.wait(10)
        server.stop()
    t = {name: median(v) for name, v in times.items()}
    size = args.mib * MiB
    result = {
        "mib": args.mib,
        "rounds": args.rounds,
        "push_s": round(t["swiftclient"], 3),
        "curl_s": round(t["curl"], 3),
        "push_MiB_s": round(size / MiB / t["swiftclient"], 1),
        "curl_MiB_s": round(size / MiB / t["curl"], 1),
        "push_time_over_curl": round(t["swiftclient"] / t["curl"], 2),
        "all_push_s": [round(x, 3) for x in times["swiftclient"]],  # type: ignore[dict-item]
        "all_curl_s": [round(x, 3) for x in times["curl"]],  # type: ignore[dict-item]
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("bench-out"), help="work directory (same disk as the data)")
    ap.add_argument("--mib", type=int, default=1024, help="size of the clip")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2))
    print(
        f"P-push: {args.mib} MiB clip: swiftclient push {result['push_MiB_s']} MiB/s, "
        f"curl --upload-file to nginx dav {result['curl_MiB_s']} MiB/s; push takes "
        f"{result['push_time_over_curl']}x the time of the plain PUT"
    )
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
