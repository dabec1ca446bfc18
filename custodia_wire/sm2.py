"""SM2 signatures (GB/T 32918.2, with SM3 and the default distinguishing ID of GM/T 0009), from OpenSSL.

pyca/cryptography has no SM2. This module calls the OpenSSL library the interpreter already links
(``libcrypto.so.3``, the one behind ``hashlib``), whose default provider has carried SM2 and SM3 since
3.0: the same code the reviewer's ``openssl pkeyutl -digest sm3 -pkeyopt distid:1234567812345678`` runs,
maintained, constant-time where it matters, with its own random nonces. Only a dozen EVP functions are
used, through ctypes; nothing is compiled. Keys are PKCS#8 / SubjectPublicKeyInfo, as ``openssl genpkey
-algorithm SM2`` writes them; signatures are DER ``SEQUENCE { r, s }``, as ``openssl pkeyutl`` writes them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

ALG = "SM2"
#: GM/T 0009-2012's default distinguishing ID (the user ID hashed into Z); openssl 3.0 needs it named
DIST_ID = b"1234567812345678"
#: the SM2 curve's OID (1.2.156.10197.1.301) as DER: how an SM2 SubjectPublicKeyInfo is recognised
CURVE_OID_DER = bytes.fromhex("06082a811ccf5501822d")

_P = ctypes.c_void_p
_BIO_CTRL_INFO = 3


class SM2Error(ValueError):
    """OpenSSL cannot do SM2 here, or a key or signature is not SM2's."""


@functools.cache
def _lib() -> Any:
    name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    try:
        lib = ctypes.CDLL(name)
        lib.EVP_PKEY_CTX_new_from_name  # noqa: B018  (OpenSSL 3.0 or later)
    except (OSError, AttributeError) as exc:
        raise SM2Error(f"SM2 needs OpenSSL 3.0 or later ({name}): {exc}") from exc
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "EVP_PKEY_CTX_new_from_name": (_P, [_P, ctypes.c_char_p, ctypes.c_char_p]),
        "EVP_PKEY_keygen_init": (ctypes.c_int, [_P]),
        "EVP_PKEY_generate": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
        "EVP_PKEY_CTX_new": (_P, [_P, _P]),
        "EVP_PKEY_CTX_free": (None, [_P]),
        "EVP_PKEY_CTX_set1_id": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int]),
        "EVP_PKEY_free": (None, [_P]),
        "EVP_PKEY_is_a": (ctypes.c_int, [_P, ctypes.c_char_p]),
        "EVP_MD_CTX_new": (_P, []),
        "EVP_MD_CTX_free": (None, [_P]),
        "EVP_MD_CTX_set_pkey_ctx": (None, [_P, _P]),
        "EVP_sm3": (_P, []),
        "EVP_DigestSignInit": (ctypes.c_int, [_P, _P, _P, _P, _P]),
        "EVP_DigestSign": (
            ctypes.c_int,
            [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t],
        ),
        "EVP_DigestVerifyInit": (ctypes.c_int, [_P, _P, _P, _P, _P]),
        "EVP_DigestVerify": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
        "BIO_new_mem_buf": (_P, [ctypes.c_char_p, ctypes.c_int]),
        "BIO_new": (_P, [_P]),
        "BIO_s_mem": (_P, []),
        "BIO_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, _P]),
        "BIO_free": (ctypes.c_int, [_P]),
        "PEM_read_bio_PrivateKey": (_P, [_P, _P, _P, _P]),
        "PEM_write_bio_PrivateKey": (ctypes.c_int, [_P, _P, _P, _P, ctypes.c_int, _P, _P]),
        "d2i_PUBKEY": (_P, [_P, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]),
        "i2d_PUBKEY": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_char_p)]),
        "ERR_clear_error": (None, []),
    }
    for fn, (res, args) in sigs.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


def available() -> bool:
    """Whether this OpenSSL signs and verifies SM2 (3.0 or later, with SM2 in its default provider)."""
    try:
        SM2PrivateKey.generate()
    except SM2Error:
        return False
    return True


def _is_sm2(lib: Any, pkey: int | None) -> bool:
    return bool(pkey) and lib.EVP_PKEY_is_a(pkey, b"SM2") == 1


def _spki_of(lib: Any, pkey: int) -> bytes:
    n = lib.i2d_PUBKEY(pkey, None)
    if n <= 0:
        raise SM2Error("cannot encode the SM2 public key")
    buf = ctypes.create_string_buffer(n)
    out = ctypes.c_char_p(ctypes.addressof(buf))
    lib.i2d_PUBKEY(pkey, ctypes.byref(out))
    return buf.raw


def _digest_ctx(lib: Any, pkey: int) -> tuple[int, int]:
    """An MD context for SM2-with-SM3 under the default distinguishing ID (and its PKEY context)."""
    md, pctx = lib.EVP_MD_CTX_new(), lib.EVP_PKEY_CTX_new(pkey, None)
    if not md or not pctx or lib.EVP_PKEY_CTX_set1_id(pctx, DIST_ID, len(DIST_ID)) != 1:
        lib.EVP_MD_CTX_free(md)
        lib.EVP_PKEY_CTX_free(pctx)
        raise SM2Error("OpenSSL cannot set up an SM2 context")
    lib.EVP_MD_CTX_set_pkey_ctx(md, pctx)
    return md, pctx


class SM2PrivateKey:
    """An SM2 private key held by OpenSSL. ``sign`` gives a DER signature over SM3(Z || data)."""

    alg = ALG

    def __init__(self, pkey: int) -> None:
        self._pkey = pkey
        self._spki = _spki_of(_lib(), pkey)

    def __del__(self) -> None:
        if getattr(self, "_pkey", None):
            _lib().EVP_PKEY_free(self._pkey)
            self._pkey = 0

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        lib = _lib()
        ctx = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        pkey = _P()
        try:
            if not ctx or lib.EVP_PKEY_keygen_init(ctx) != 1 or lib.EVP_PKEY_generate(ctx, ctypes.byref(pkey)) != 1:
                lib.ERR_clear_error()
                raise SM2Error("this OpenSSL cannot make SM2 keys")
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
        return cls(int(pkey.value or 0))

    @classmethod
    def from_pem(cls, pem: bytes) -> SM2PrivateKey:
        lib = _lib()
        bio = lib.BIO_new_mem_buf(pem, len(pem))
        try:
            pkey = lib.PEM_read_bio_PrivateKey(bio, None, None, None)
        finally:
            lib.BIO_free(bio)
        if not _is_sm2(lib, pkey):
            lib.EVP_PKEY_free(pkey)
            lib.ERR_clear_error()
            raise SM2Error("not an SM2 private key (PEM, unencrypted PKCS#8)")
        return cls(int(pkey))

    def private_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the file is kept 0600, like the Ed25519 key)."""
        lib = _lib()
        bio = lib.BIO_new(lib.BIO_s_mem())
        try:
            if lib.PEM_write_bio_PrivateKey(bio, self._pkey, None, None, 0, None, None) != 1:
                raise SM2Error("cannot write the SM2 private key")
            ptr = ctypes.c_char_p()
            n = lib.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(ptr))
            return ctypes.string_at(ptr, n)
        finally:
            lib.BIO_free(bio)

    def public_spki(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo (``openssl pkey -pubout -outform DER``)."""
        return self._spki

    def sign(self, data: bytes) -> bytes:
        lib = _lib()
        md, pctx = _digest_ctx(lib, self._pkey)
        try:
            size = ctypes.c_size_t(0)
            if lib.EVP_DigestSignInit(md, None, lib.EVP_sm3(), None, self._pkey) != 1:
                raise SM2Error("OpenSSL refused to sign with SM2")
            if lib.EVP_DigestSign(md, None, ctypes.byref(size), data, len(data)) != 1:
                raise SM2Error("OpenSSL refused to sign with SM2")
            out = ctypes.create_string_buffer(size.value)
            if lib.EVP_DigestSign(md, out, ctypes.byref(size), data, len(data)) != 1:
                raise SM2Error("OpenSSL refused to sign with SM2")
            return out.raw[: size.value]
        finally:
            lib.EVP_MD_CTX_free(md)
            lib.EVP_PKEY_CTX_free(pctx)


def is_sm2_spki(spki: bytes) -> bool:
    """Whether a DER SubjectPublicKeyInfo names the SM2 curve (its AlgorithmIdentifier, near the start)."""
    return CURVE_OID_DER in spki[:32]


def _public(lib: Any, spki: bytes) -> int:
    buf = ctypes.create_string_buffer(spki, len(spki))
    ptr = ctypes.c_char_p(ctypes.addressof(buf))
    pkey = lib.d2i_PUBKEY(None, ctypes.byref(ptr), len(spki))
    if not _is_sm2(lib, pkey):
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()
        raise SM2Error("not an SM2 public key")
    return int(pkey)


def check_public(spki: bytes) -> None:
    """Raise SM2Error unless ``spki`` is a well-formed SM2 public key (a point on the curve)."""
    lib = _lib()
    lib.EVP_PKEY_free(_public(lib, spki))


def verify(spki: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (DER) is an SM2-with-SM3 signature of ``data`` by the key ``spki``."""
    lib = _lib()
    pkey = _public(lib, spki)
    try:
        md, pctx = _digest_ctx(lib, pkey)
        try:
            if lib.EVP_DigestVerifyInit(md, None, lib.EVP_sm3(), None, pkey) != 1:
                raise SM2Error("OpenSSL refused to verify with SM2")
            ok = bool(lib.EVP_DigestVerify(md, signature, len(signature), data, len(data)) == 1)
        finally:
            lib.EVP_MD_CTX_free(md)
            lib.EVP_PKEY_CTX_free(pctx)
    finally:
        lib.EVP_PKEY_free(pkey)
    lib.ERR_clear_error()
    return ok
