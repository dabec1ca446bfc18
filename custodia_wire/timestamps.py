"""RFC 3161 time-stamp tokens, checked offline: the bytes they stamp, and (given the authority's CA) who stamped them.

The token is what the time-stamping authority signed (a CMS SignedData over a TSTInfo), as
``openssl ts -verify -token_in`` reads it; ``rfc3161-client`` checks the CMS signature and the
certificate chain up to the roots the reader trusts, as openssl does with ``-CAfile``. The imprint may be
SHA-256/384/512 or SM3 (an authority under GM/T 0033); a token *signed* with SM2 is beyond rfc3161-client
(and pyca/cryptography), so it is reported as not checked here, with the openssl command that checks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response
from rfc3161_client.tsp import TimeStampResponse

SM3_OID = "1.2.156.10197.1.401"
#: SM2 with SM3 (a CMS signatureAlgorithm) and the SM2 curve (a certificate's key), as DER
_SM2_MARKS = (bytes.fromhex("06082a811ccf55018375"), bytes.fromhex("06082a811ccf5501822d"))
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "2.16.840.1.101.3.4.2.1": hashlib.sha256,
    "2.16.840.1.101.3.4.2.2": hashlib.sha384,
    "2.16.840.1.101.3.4.2.3": hashlib.sha512,
    SM3_OID: lambda data: hashlib.new("sm3", data),
}


class TimestampProblem(ValueError):
    """The token is malformed, stamps other bytes, or is not signed by an authority the reader trusts."""


@dataclass(frozen=True)
class Stamp:
    time: datetime
    authority: str  # the TSA certificate's subject, when the token carries it
    hash: str = "sha256"  # the imprint's hash: sha256, sha384, sha512 or sm3


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at ``pos``."""
    if pos + 2 > len(buf):
        raise TimestampProblem("truncated DER")
    first, at = buf[pos + 1], pos + 2
    length = first
    if first & 0x80:
        count = first & 0x7F
        length, at = int.from_bytes(buf[at : at + count], "big"), at + count
    if at + length > len(buf):
        raise TimestampProblem("truncated DER")
    return buf[pos], at, at + length


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    out, pos = [], start
    while pos < end:
        tag, cs, ce = _element(buf, pos)
        out.append((tag, pos, cs, ce))
        pos = ce
    return out


def _der_sorted_certificates(token: bytes) -> bytes:
    """The token with its certificate SET in DER order. Some TSAs (OpenSSL among them) write the chain
    unsorted; the set is not covered by the signature, and a strict DER reader refuses it unsorted."""
    _, cs, ce = _element(token, 0)
    explicit = _children(token, cs, ce)[1]
    signed_data = _children(token, explicit[2], explicit[3])[0]
    for tag, _start, s, e in _children(token, signed_data[2], signed_data[3]):
        if tag == 0xA0:  # [0] IMPLICIT SET OF CertificateChoices
            members = sorted(token[p:ce_] for _t, p, _c, ce_ in _children(token, s, e))
            return token[:s] + b"".join(members) + token[e:]
    return token


def _response(token: bytes) -> TimeStampResponse:
    """TimeStampResp { status { granted }, timeStampToken }: the form the library reads."""
    status = b"\x30\x03\x02\x01\x00"
    try:
        token = _der_sorted_certificates(token)
    except (IndexError, TimestampProblem) as exc:
        raise TimestampProblem(f"not an RFC 3161 time-stamp token: {exc}") from exc
    body = status + token
    try:
        return decode_timestamp_response(b"\x30" + _der_length(len(body)) + body)
    except ValueError as exc:
        raise TimestampProblem(f"not an RFC 3161 time-stamp token: {exc}") from exc


def stamped(token: bytes, data: bytes) -> Stamp:
    """The time the token gives ``data``, after checking that it stamps these very bytes (no trust in who)."""
    resp = _response(token)
    info = resp.tst_info
    oid = info.message_imprint.hash_algorithm.dotted_string
    algo = _HASHES.get(oid)
    if algo is None:
        raise TimestampProblem(f"unsupported imprint hash {oid}")
    if info.message_imprint.message != algo(data).digest():
        raise TimestampProblem("the time-stamp is for other bytes: the stamped file was changed")
    certs = [x509.load_der_x509_certificate(c) for c in resp.signed_data.certificates]
    who = certs[0].subject.rfc4514_string() if certs else "?"
    when = info.gen_time if info.gen_time.tzinfo else info.gen_time.replace(tzinfo=UTC)
    names = {"2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512", SM3_OID: "sm3"}
    return Stamp(when.astimezone(UTC), who, names.get(oid, "sha256"))


def load_roots(path: Path) -> list[x509.Certificate]:
    roots = x509.load_pem_x509_certificates(path.read_bytes())
    if not roots:
        raise TimestampProblem(f"no certificate in {path}")
    return roots


def verify(token: bytes, data: bytes, roots: list[x509.Certificate]) -> Stamp:
    """``stamped``, and the token's signature and certificate chain up to one of ``roots``."""
    stamp = stamped(token, data)
    resp = _response(token)
    builder = VerifierBuilder()
    # only the reader's certificates: the library trusts every certificate it is given as an anchor, so
    # the ones the token carries (which anyone can put there) are left to the chain building
    for root in roots:
        builder = builder.add_root_certificate(root)
    digest = _HASHES[resp.tst_info.message_imprint.hash_algorithm.dotted_string](data).digest()
    try:
        builder.build().verify(resp, digest)  # the imprint checked above, SM3 included
    except VerificationError as exc:
        if any(mark in token for mark in _SM2_MARKS):
            raise TimestampProblem(
                "the time-stamp is signed with SM2, which this verifier cannot check (its imprint matches); "
                "check it with a GM-capable openssl: openssl ts -verify -data FILE -in TOKEN -token_in -CAfile CA"
            ) from exc
        raise TimestampProblem(f"the time-stamp is not signed by an authority you trust: {exc}") from exc
    return stamp
