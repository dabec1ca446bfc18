"""Errors raised by recorder drivers."""

from __future__ import annotations


class DriverError(Exception):
    """Base class of everything a driver raises on purpose."""


class DeviceGoneError(DriverError):
    """The volume was unplugged, unmounted or replaced, or the source folder vanished."""


class UnsafeEntryError(DriverError):
    """A path that is not a plain regular file under the volume root (symlink, FIFO, ``..``, ...)."""


class NotSupportedError(DriverError):
    """The device family cannot do this (e.g. set the clock of a plain mass-storage recorder)."""


class IdentityError(DriverError):
    """No trustworthy device serial could be established."""
