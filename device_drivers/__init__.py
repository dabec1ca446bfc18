"""Recorder drivers: how a docked body-worn recorder's identity, status and files are read.

Knows recorders only: nothing of servers, HTTP or databases.
"""

from device_drivers.base import (
    DeviceGoneError,
    DeviceIdentity,
    DeviceStatus,
    DriverError,
    IdentityError,
    NotSupportedError,
    RecorderDriver,
    RecordingEntry,
    RejectedEntry,
    UnsafeEntryError,
)
from device_drivers.folder import FolderDriver
from device_drivers.mass_storage import MassStorageDriver
from device_drivers.names import DEFAULT_NAME_PATTERNS, NamePattern, parse_name
from device_drivers.registry import DRIVERS, driver_for

__all__ = [
    "DEFAULT_NAME_PATTERNS",
    "DRIVERS",
    "DeviceGoneError",
    "DeviceIdentity",
    "DeviceStatus",
    "DriverError",
    "FolderDriver",
    "IdentityError",
    "MassStorageDriver",
    "NamePattern",
    "NotSupportedError",
    "RecorderDriver",
    "RecordingEntry",
    "RejectedEntry",
    "UnsafeEntryError",
    "driver_for",
    "parse_name",
]
