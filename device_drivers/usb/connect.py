"""Opening a recorder's control channel on real hardware: the backend its profile names."""

from __future__ import annotations

from pathlib import Path

from device_drivers.usb.hotplug import UsbDevice
from device_drivers.usb.mapping import sg_nodes_of
from device_drivers.usb.profiles import Profile
from device_drivers.usb.protocol import RecorderProtocol, open_protocol
from device_drivers.usb.scsi import BulkOnlyScsi, SgIoScsi
from device_drivers.usb.socket_transport import SocketFrames
from device_drivers.usb.transport import BulkFrames, FrameTransport, PyUsbEndpoints, ScsiTransport


def open_transport(
    profile: Profile, device: UsbDevice, *, socket_address: tuple[str, int] | None = None
) -> ScsiTransport | FrameTransport:
    """SCSI: SG_IO on the LUN's ``/dev/sg*`` when the kernel has it, else bulk-only over pyusb;
    bulk: the profile's endpoints over pyusb; socket: the profile's (or the given) address."""
    if profile.transport == "socket":
        sock = profile.socket
        host, port = socket_address or (str(sock.get("host", "127.0.0.1")), int(sock["port"]))
        return SocketFrames(
            host,
            port,
            connect_timeout=profile.timeout("write"),
            framing=str(sock.get("framing", "length_prefixed")),
            length_bytes=int(sock.get("length_bytes", 4)),
            byteorder=str(sock.get("byteorder", "big")),
            max_payload=int(sock.get("max_payload", 1024)),
        )
    if profile.transport == "scsi" and device.sys_path:
        nodes = sg_nodes_of(Path(device.sys_path))
        if nodes:
            return SgIoScsi(nodes[0])
    if device.address is None:
        raise ValueError(f"{device.describe()}: no USB address to open")
    usb = profile.usb
    endpoints = PyUsbEndpoints.find(
        bus=device.bus,
        address=device.address,
        interface=int(usb["interface"]),
        configuration=int(usb.get("configuration", 0)) or None,
        detach_kernel_driver=profile.transport == "scsi",
    )
    if profile.transport == "scsi":
        return BulkOnlyScsi(
            endpoints,
            endpoint_out=int(usb["endpoint_out"]),
            endpoint_in=int(usb["endpoint_in"]),
            lun=int(usb.get("lun", 0)),
        )
    return BulkFrames(
        endpoints,
        endpoint_out=int(usb["endpoint_out"]),
        endpoint_in=int(usb["endpoint_in"]),
        reply_size=int(profile.frame.get("reply_size", 64)),
    )


def connect(profile: Profile, device: UsbDevice, *, socket_address: tuple[str, int] | None = None) -> RecorderProtocol:
    return open_protocol(profile, open_transport(profile, device, socket_address=socket_address))
