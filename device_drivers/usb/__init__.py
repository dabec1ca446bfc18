"""USB recorders: hot-plug detection, vendor control protocols over pyusb/SG_IO/sockets, and the
switch to mass storage. Everything vendor-specific is a profile (``profiles/*.json``)."""

from device_drivers.usb.codecs import ZfyInfo, decode_info, encode_info
from device_drivers.usb.hotplug import AllowList, UsbDevice, UsbWatcher
from device_drivers.usb.profiles import Profile, ProfileError, load_profiles, shipped_profiles
from device_drivers.usb.protocol import RecorderProtocol, open_protocol
from device_drivers.usb.protocol_errors import ResultCode, ResultError, TransportError, TransportTimeout
from device_drivers.usb.vendor_driver import (
    ClockPolicy,
    Handshake,
    PasswordMissing,
    Step,
    UsbRecorderDriver,
    VolumeTimeout,
    handshake,
    wait_for_volume,
)

__all__ = [
    "AllowList",
    "ClockPolicy",
    "Handshake",
    "PasswordMissing",
    "Profile",
    "ProfileError",
    "RecorderProtocol",
    "ResultCode",
    "ResultError",
    "Step",
    "TransportError",
    "TransportTimeout",
    "UsbDevice",
    "UsbRecorderDriver",
    "UsbWatcher",
    "VolumeTimeout",
    "ZfyInfo",
    "decode_info",
    "encode_info",
    "handshake",
    "load_profiles",
    "open_protocol",
    "shipped_profiles",
    "wait_for_volume",
]
