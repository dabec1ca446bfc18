"""An RFC 3161 time-stamp client: ask a TSA to sign "these bytes existed at this time".

Just enough DER to build a TimeStampReq for a SHA-256 (or SM3, for an authority under GM/T 0033) imprint
and to read back the status, the token and its genTime; the token is stored as the TSA sent it, for
``openssl ts -verify`` or any other RFC 3161 verifier to check against the TSA's certificate.

``stamp_for`` is what a feature calls to stamp a document (a checkpoint, a package manifest, a list): the
authority and the imprint hash are configuration (``package_tsa_url`` or ``audit_tsa_url``, ``tsa_hash``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from evidence_server.config import Settings

log = logging.getLogger(__name__)

SHA256_OID = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1, DER-encoded
SM3_OID = bytes.fromhex("06082a811ccf55018311")  # 1.2.156.10197.1.401 (GM/T 0006), DER-encoded
#: the imprint hashes a request can name: (OID, hash of the data)
HASHES = {
    "sha256": (SHA256_OID, lambda data: hashlib.sha256(data).digest()),
    "sm3": (SM3_OID, lambda data: hashlib.new("sm3", data).digest()),
}


class TimestampError(ValueError):
    """The TSA refused the request or answered something that is not a matching time-stamp."""


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _imprint(digest: bytes, hash_name: str = "sha256") -> bytes:
    oid = HASHES[hash_name][0]
    return _tlv(0x30, _tlv(0x30, oid + b"\x05\x00") + _tlv(0x04, digest))


def request_der(digest: bytes, nonce: int, hash_name: str = "sha256") -> bytes:
    """TimeStampReq { version 1, messageImprint (SHA-256 or SM3), nonce, certReq TRUE }."""
    return _tlv(0x30, _integer(1) + _imprint(digest, hash_name) + _integer(nonce) + b"\x01\x01\xff")


class _El:
    """One DER element of ``buf``: tag, where it starts, where its content starts and ends."""

    __slots__ = ("buf", "tag", "start", "cs", "ce")

    def __init__(self, buf: bytes, pos: int) -> None:
        if pos + 2 > len(buf):
            raise TimestampError("truncated DER")
        self.buf, self.tag, self.start = buf, buf[pos], pos
        first, pos = buf[pos + 1], pos + 2
        length = first
        if first & 0x80:
            count = first & 0x7F
            length, pos = int.from_bytes(buf[pos : pos + count], "big"), pos + count
        if pos + length > len(buf):
            raise TimestampError("truncated DER")
        self.cs, self.ce = pos, pos + length

    @property
    def der(self) -> bytes:
        return self.buf[self.start : self.ce]

    @property
    def content(self) -> bytes:
        return self.buf[self.cs : self.ce]

    def children(self) -> list[_El]:
        out, pos = [], self.cs
        while pos < self.ce:
            out.append(_El(self.buf, pos))
            pos = out[-1].ce
        return out


def _same_imprint(got: _El, digest: bytes, hash_name: str) -> bool:
    """The token's MessageImprint names our hash and our digest (its AlgorithmIdentifier's NULL parameters
    may be absent: RFC 5754 lets either be written)."""
    alg, value = got.children()
    return alg.children()[0].der == HASHES[hash_name][0] and value.content == digest


def parse_response(resp: bytes, digest: bytes, nonce: int, hash_name: str = "sha256") -> tuple[bytes, datetime]:
    """The TimeStampToken (DER) and its genTime, after checking status, imprint and nonce."""
    parts = _El(resp, 0).children()  # TimeStampResp { status PKIStatusInfo, timeStampToken }
    status = int.from_bytes(parts[0].children()[0].content, "big")
    if status not in (0, 1) or len(parts) < 2:
        raise TimestampError(f"the TSA refused the request (PKIStatus {status})")
    token = parts[1].der
    # ContentInfo { contentType, [0] { SignedData { version, digestAlgorithms, encapContentInfo, ... } } }
    signed_data = _El(token, 0).children()[1].children()[0].children()
    e_content = signed_data[2].children()[1].children()[0]  # [0] EXPLICIT OCTET STRING: the TSTInfo
    tst = _El(e_content.content, 0).children()
    if not _same_imprint(tst[2], digest, hash_name):
        raise TimestampError("the time-stamp is for other bytes than the checkpoint")
    nonces = [int.from_bytes(el.content, "big", signed=True) for el in tst[5:] if el.tag == 0x02]
    if nonce not in nonces:
        raise TimestampError("the time-stamp does not carry our nonce (a replayed answer?)")
    gen = tst[4].content.decode("ascii")
    fmt = "%Y%m%d%H%M%S.%fZ" if "." in gen else "%Y%m%d%H%M%SZ"
    return token, datetime.strptime(gen, fmt).replace(tzinfo=UTC)


def timestamp(url: str, data: bytes, timeout: float = 10.0, hash_name: str = "sha256") -> tuple[bytes, datetime]:
    """Time-stamp SHA-256(``data``) (or SM3(``data``)) at the TSA ``url``; (token DER, genTime)."""
    digest = HASHES[hash_name][1](data)
    nonce = secrets.randbits(63)
    try:
        r = httpx.post(
            url,
            content=request_der(digest, nonce, hash_name),
            timeout=timeout,
            headers={"Content-Type": "application/timestamp-query"},
        )
    except httpx.HTTPError as exc:
        raise TimestampError(f"TSA unreachable: {exc}") from exc
    if r.status_code != 200:
        raise TimestampError(f"TSA answered HTTP {r.status_code}")
    try:
        return parse_response(r.content, digest, nonce, hash_name)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, TimestampError):
            raise
        raise TimestampError(f"malformed time-stamp response: {exc}") from exc


def stamp_for(settings: Settings, data: bytes, what: str, url: str | None = None) -> tuple[bytes, datetime] | None:
    """A time-stamp token over ``data`` (a document's exact bytes) from the configured authority (``url``,
    else ``package_tsa_url``, else ``audit_tsa_url``) with the configured imprint hash (``tsa_hash``);
    None (logged) when no authority is configured or it fails: the document stands without one.
    ``openssl ts -verify -data <file> -in <token> -token_in -CAfile <the authority's CA>`` checks it, and so
    does ``custodia_wire.timestamps.verify``."""
    url = url or settings.package_tsa_url or settings.audit_tsa_url
    if not url:
        return None
    try:
        return timestamp(url, data, settings.audit_tsa_timeout_s, settings.tsa_hash)
    except (OSError, TimestampError) as exc:
        log.warning("%s not time-stamped by %s: %s", what, url, exc)
        return None
