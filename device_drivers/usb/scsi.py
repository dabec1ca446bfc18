"""SCSI commands to the recorder's own LUN: bulk-only transport over USB endpoints, or Linux SG_IO."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import os
import struct
from pathlib import Path

from device_drivers.usb.protocol_errors import DeviceGoneError, ProtocolError, TransportError, TransportTimeout
from device_drivers.usb.transport import UsbEndpoints

CBW = struct.Struct("<4sIIBBB16s")  # signature, tag, data length, flags, LUN, CDB length, CDB
CSW = struct.Struct("<4sIIB")  # signature, tag, residue, status
CBW_SIGNATURE, CSW_SIGNATURE = b"USBC", b"USBS"
DIR_IN = 0x80


def pack_cbw(tag: int, cdb: bytes, data_length: int, data_in: bool, lun: int = 0) -> bytes:
    if not 1 <= len(cdb) <= 16:
        raise ValueError(f"a CDB is 1-16 bytes, not {len(cdb)}")
    return CBW.pack(CBW_SIGNATURE, tag, data_length, DIR_IN if data_in else 0, lun, len(cdb), cdb.ljust(16, b"\0"))


def unpack_cbw(raw: bytes) -> tuple[int, bytes, int, bool, int]:
    """``(tag, cdb, data_length, data_in, lun)``; for device-side simulators."""
    if len(raw) != CBW.size:
        raise ProtocolError(f"CBW of {len(raw)} bytes")
    sig, tag, length, flags, lun, cdb_len, cdb = CBW.unpack(raw)
    if sig != CBW_SIGNATURE:
        raise ProtocolError("bad CBW signature")
    return tag, cdb[:cdb_len], length, bool(flags & DIR_IN), lun


def pack_csw(tag: int, residue: int, status: int) -> bytes:
    return CSW.pack(CSW_SIGNATURE, tag, residue, status)


class BulkOnlyScsi:
    """SCSI over USB mass-storage bulk-only transport (CBW, data, CSW) through :class:`UsbEndpoints`."""

    def __init__(self, endpoints: UsbEndpoints, *, endpoint_out: int, endpoint_in: int, lun: int = 0) -> None:
        self.endpoints, self.out, self.inp, self.lun = endpoints, endpoint_out, endpoint_in, lun
        self._tags = itertools.count(1)

    def execute(self, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0, timeout: float = 2.0) -> bytes:
        tag = next(self._tags) & 0xFFFFFFFF
        length = len(data_out) if data_out else data_in
        self.endpoints.write(self.out, pack_cbw(tag, cdb, length, data_out is None and data_in > 0, self.lun), timeout)
        data = b""
        if data_out:
            self.endpoints.write(self.out, data_out, timeout)
        elif data_in:
            data = self.endpoints.read(self.inp, data_in, timeout)
            if len(data) == CSW.size and data[:4] == CSW_SIGNATURE and data_in != CSW.size:
                return self._check_csw(data, tag, data_in) or b""  # the device skipped the data phase
        self._check_csw(self.endpoints.read(self.inp, CSW.size, timeout), tag, length)
        return data

    @staticmethod
    def _check_csw(raw: bytes, tag: int, length: int) -> None:
        if len(raw) != CSW.size:
            raise ProtocolError(f"CSW of {len(raw)} bytes")
        sig, got_tag, residue, status = CSW.unpack(raw)
        if sig != CSW_SIGNATURE or got_tag != tag:
            raise ProtocolError(f"CSW out of step (tag {got_tag}, expected {tag})")
        if status == 1:
            raise TransportError(f"the device failed the command (CSW status 1, residue {residue})")
        if status != 0:
            raise TransportError(f"phase error (CSW status {status}); the device needs a reset")

    def close(self) -> None:
        self.endpoints.close()


# --- Linux SG_IO ----------------------------------------------------------------------------------

SG_IO = 0x2285
SG_DXFER_NONE, SG_DXFER_TO_DEV, SG_DXFER_FROM_DEV = -1, -2, -3
DID_TIME_OUT = 0x03


class SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` from <scsi/sg.h>."""

    _fields_ = [
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    ]


class SgIoScsi:
    """SCSI through the Linux SCSI generic driver (``/dev/sgN`` or the block node): no driver detach,
    so the recorder's disk stays with the kernel. Needs read-write access to the node."""

    def __init__(self, device_node: str | Path) -> None:
        self.path = str(device_node)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        except FileNotFoundError as exc:
            raise DeviceGoneError(f"{self.path} is gone") from exc
        except OSError as exc:
            raise TransportError(f"cannot open {self.path}: {exc.strerror}") from exc

    def execute(self, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0, timeout: float = 2.0) -> bytes:
        cmd = ctypes.create_string_buffer(bytes(cdb), len(cdb))
        sense = ctypes.create_string_buffer(32)
        if data_out:
            buf = ctypes.create_string_buffer(bytes(data_out), len(data_out))
            direction, length = SG_DXFER_TO_DEV, len(data_out)
        elif data_in:
            buf = ctypes.create_string_buffer(data_in)
            direction, length = SG_DXFER_FROM_DEV, data_in
        else:
            buf, direction, length = None, SG_DXFER_NONE, 0
        hdr = SgIoHdr(
            interface_id=ord("S"),
            dxfer_direction=direction,
            cmd_len=len(cdb),
            mx_sb_len=32,
            dxfer_len=length,
            dxferp=ctypes.addressof(buf) if buf is not None else None,
            cmdp=ctypes.addressof(cmd),
            sbp=ctypes.addressof(sense),
            timeout=max(1, int(timeout * 1000)),
        )
        try:
            fcntl.ioctl(self.fd, SG_IO, hdr)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise DeviceGoneError(f"{self.path} went away") from exc
            raise TransportError(f"SG_IO on {self.path}: {exc.strerror}") from exc
        if hdr.host_status == DID_TIME_OUT:
            raise TransportTimeout(f"SCSI command {cdb[:1].hex()} timed out on {self.path}")
        if hdr.info & 1:
            raise TransportError(
                f"SCSI command failed on {self.path}: status {hdr.status:#x}, "
                f"host {hdr.host_status:#x}, driver {hdr.driver_status:#x}, "
                f"sense {sense.raw[: hdr.sb_len_wr].hex()}"
            )
        return buf.raw[: length - hdr.resid] if buf is not None and data_in else b""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
