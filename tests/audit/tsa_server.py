"""A tiny RFC 3161 time-stamp authority for tests: a test CA, a TSA certificate, ``openssl ts -reply`` over HTTP."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TS_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(root: Path) -> None:
    """ca.pem/ca.key (a root CA) and tsa.pem/tsa.key (critical extendedKeyUsage timeStamping)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Custodia Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=root,
    )
    _openssl("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Custodia Test TSA", cwd=root)
    (root / "tsa.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "tsa.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tsa.pem",
        "-days",
        "2",
        "-extfile",
        "tsa.ext",
        cwd=root,
    )
    (root / "tsaserial").write_text("01\n")
    (root / "ts.cnf").write_text(TS_CONFIG.format(dir=root))


class OpensslTSA:
    def __init__(self, root: Path) -> None:
        self.root = root
        make_pki(root)
        self.requests = 0
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                query = self.rfile.read(int(self.headers["Content-Length"]))
                with tempfile.TemporaryDirectory(dir=root) as tmp:
                    (Path(tmp) / "q.tsq").write_bytes(query)
                    done = subprocess.run(
                        [
                            "openssl",
                            "ts",
                            "-reply",
                            "-config",
                            str(root / "ts.cnf"),
                            "-queryfile",
                            "q.tsq",
                            "-out",
                            "r.tsr",
                        ],
                        cwd=tmp,
                        capture_output=True,
                    )
                    reply = (Path(tmp) / "r.tsr").read_bytes() if done.returncode == 0 else b""
                tsa.requests += 1
                self.send_response(200 if reply else 500)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def verify(self, data: Path, token: Path) -> subprocess.CompletedProcess[str]:
        """``openssl ts -verify`` of a TimeStampToken over ``data`` against the test CA."""
        return subprocess.run(
            [
                "openssl",
                "ts",
                "-verify",
                "-data",
                str(data),
                "-in",
                str(token),
                "-token_in",
                "-CAfile",
                str(self.root / "ca.pem"),
                "-untrusted",
                str(self.root / "tsa.pem"),
            ],
            capture_output=True,
            text=True,
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
