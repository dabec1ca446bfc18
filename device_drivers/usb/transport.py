"""The transport layer under every vendor protocol, and the tiny USB endpoint interface below it.

Two kinds of transport carry the dialects:

- :class:`ScsiTransport`: one SCSI command with an optional data phase (DV16). Backends: bulk-only
  CBW/CSW over USB endpoints (:mod:`.scsi`), or Linux SG_IO on the recorder's ``/dev/sg*``.
- :class:`FrameTransport`: send one frame, receive one frame (bulk ASCII frames over USB endpoints,
  length-prefixed or JSON messages over a socket).

The bulk and SCSI backends talk through :class:`UsbEndpoints`, backed by pyusb on real hardware
(:class:`PyUsbEndpoints`) and by a simulator in tests. Every backend raises only
:class:`TransportError`, :class:`TransportTimeout` or :class:`DeviceGoneError`.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Protocol, runtime_checkable

from device_drivers.usb.protocol_errors import DeviceGoneError, TransportError, TransportTimeout

log = logging.getLogger(__name__)


@runtime_checkable
class UsbEndpoints(Protocol):
    """Bulk endpoints of one claimed USB interface."""

    def write(self, endpoint: int, data: bytes, timeout: float) -> int: ...

    def read(self, endpoint: int, size: int, timeout: float) -> bytes: ...

    def close(self) -> None: ...


@runtime_checkable
class ScsiTransport(Protocol):
    def execute(self, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0, timeout: float = 2.0) -> bytes:
        """Run one command; returns the data read (``data_in`` bytes at most)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class FrameTransport(Protocol):
    def send(self, frame: bytes, timeout: float) -> None: ...

    def receive(self, timeout: float) -> bytes: ...

    def close(self) -> None: ...


Transport = ScsiTransport | FrameTransport


class PyUsbEndpoints:
    """:class:`UsbEndpoints` over a pyusb device: set the configuration, claim the interface.

    ``detach_kernel_driver`` takes the interface from a kernel driver (never for a disk the
    station has mounted: use SG_IO for those).
    """

    def __init__(
        self, device: Any, *, interface: int = 0, configuration: int | None = None, detach_kernel_driver: bool = False
    ) -> None:
        import usb.core
        import usb.util

        self._usb, self._util = usb.core, usb.util
        self.device, self.interface = device, interface
        self._detached = False
        try:
            if detach_kernel_driver and device.is_kernel_driver_active(interface):
                device.detach_kernel_driver(interface)
                self._detached = True
            if configuration:
                try:
                    current = device.get_active_configuration().bConfigurationValue
                except usb.core.USBError:
                    current = None
                if current != configuration:
                    device.set_configuration(configuration)
            usb.util.claim_interface(device, interface)
        except usb.core.USBError as exc:
            raise self._error(exc, "opening the interface") from exc

    @classmethod
    def find(cls, *, bus: int, address: int, **options: Any) -> PyUsbEndpoints:
        import usb.core

        device = usb.core.find(bus=bus, address=address)
        if device is None:
            raise DeviceGoneError(f"no USB device at bus {bus} address {address}")
        return cls(device, **options)

    def _error(self, exc: Exception, doing: str) -> Exception:
        if isinstance(exc, self._usb.USBTimeoutError):
            return TransportTimeout(f"USB timeout {doing}")
        code = getattr(exc, "errno", None) or getattr(exc, "backend_error_code", None)
        if code in (errno.ENODEV, errno.ENOENT, -4):  # -4: LIBUSB_ERROR_NO_DEVICE
            return DeviceGoneError(f"USB device gone while {doing}")
        return TransportError(f"USB error while {doing}: {exc}")

    def write(self, endpoint: int, data: bytes, timeout: float) -> int:
        try:
            return int(self.device.write(endpoint, data, timeout=max(1, int(timeout * 1000))))
        except self._usb.USBError as exc:
            raise self._error(exc, f"writing to endpoint {endpoint:#04x}") from exc

    def read(self, endpoint: int, size: int, timeout: float) -> bytes:
        try:
            return bytes(self.device.read(endpoint, size, timeout=max(1, int(timeout * 1000))))
        except self._usb.USBError as exc:
            raise self._error(exc, f"reading from endpoint {endpoint:#04x}") from exc

    def close(self) -> None:
        try:
            self._util.release_interface(self.device, self.interface)
            if self._detached:
                self.device.attach_kernel_driver(self.interface)
        except self._usb.USBError as exc:
            log.debug("releasing USB interface: %s", exc)
        finally:
            self._util.dispose_resources(self.device)


class BulkFrames:
    """:class:`FrameTransport` over two bulk endpoints; a reply is one read of ``reply_size`` bytes."""

    def __init__(self, endpoints: UsbEndpoints, *, endpoint_out: int, endpoint_in: int, reply_size: int = 64) -> None:
        self.endpoints, self.out, self.inp, self.reply_size = endpoints, endpoint_out, endpoint_in, reply_size

    def send(self, frame: bytes, timeout: float) -> None:
        written = self.endpoints.write(self.out, frame, timeout)
        if written != len(frame):
            raise TransportError(f"short bulk write: {written} of {len(frame)} bytes")

    def receive(self, timeout: float) -> bytes:
        return self.endpoints.read(self.inp, self.reply_size, timeout)

    def close(self) -> None:
        self.endpoints.close()
