"""A USB recorder from plug-in to readable files: handshake on the control channel, switch to disk
mode, wait for the volume to come back, then read files through the mass-storage driver.

Identity comes from the device (info block, ID code, USB serial), the clock offset is measured
before anything is set, and the file side is read-only except for ``delete_recording``, which the
agent calls only after a verified receipt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from device_drivers.base import DeviceIdentity, DeviceStatus, RecorderDriver, RecordingEntry
from device_drivers.errors import DriverError, IdentityError
from device_drivers.marks import BY_DEVICE_LIST, match_device_list
from device_drivers.mass_storage import MassStorageDriver
from device_drivers.names import NamePattern
from device_drivers.usb.codecs import ZfyInfo
from device_drivers.usb.hotplug import UsbDevice
from device_drivers.usb.mapping import BY_LABEL, MOUNTINFO, SYSFS, usb_device_dir, volume_by_label, volumes_of
from device_drivers.usb.profiles import Profile
from device_drivers.usb.protocol import RecorderProtocol
from device_drivers.usb.protocol_errors import NotSupportedError, ProtocolError, ResultCode, ResultError

log = logging.getLogger(__name__)


class Step:
    """What the station shows while a USB recorder docks, before the copy starts."""

    CONNECTING = "connecting"
    LOGGING_IN = "logging in"
    READING_INFO = "reading info"
    READING_CLOCK = "reading clock"
    SETTING_CLOCK = "setting clock"
    SWITCHING = "switching to disk"
    WAITING_FOR_VOLUME = "waiting for disk"


class PasswordMissing(DriverError):
    """No device password is configured for this family or device (there is never a default)."""


class VolumeTimeout(DriverError):
    """The recorder did not come back as a disk in time."""


@dataclass(frozen=True)
class ClockPolicy:
    """When the station sets a recorder's clock: ``never``, ``if_off`` (beyond the tolerance, or
    unknown), or ``always``; never from a station that knows its own clock is unsynchronised."""

    mode: str = "if_off"
    tolerance_seconds: float = 2.0
    station_synchronized: bool | None = None
    require_station_sync: bool = True

    def decide(self, offset: float | None) -> tuple[bool, str]:
        if self.mode == "never":
            return False, "clock policy: never set"
        if self.require_station_sync and self.station_synchronized is False:
            return False, "the station's own clock is not synchronised; the recorder clock was left alone"
        if self.mode == "always":
            return True, "clock policy: always set"
        if offset is None:
            return True, "device clock unreadable: set from the station"
        if abs(offset) > self.tolerance_seconds:
            return True, f"device clock off by {offset:+.1f} s"
        return False, f"device clock within {self.tolerance_seconds:g} s"


@dataclass(frozen=True)
class Handshake:
    """What the control channel said, read before the switch to disk mode."""

    profile: Profile
    identity: DeviceIdentity
    status: DeviceStatus  # the clock as read before any change, with the host time it was read at
    device: UsbDevice | None = None
    info: ZfyInfo | None = None
    id_code: str | None = None
    resolution: tuple[int, int] | None = None
    sd_present: bool | None = None
    clock_set_to: datetime | None = None
    warnings: tuple[str, ...] = ()
    #: the files the recorder listed as marked important (profile command ``list_important``);
    #: None when the family has no such command or the list was unreadable
    important: frozenset[str] | None = None

    def labels(self) -> set[str]:
        """Volume labels the disk-mode volume may carry, from the profile's templates."""
        values = {
            "serial": self.identity.serial,
            "id_code": self.id_code or "",
            "usb_serial": (self.device.serial if self.device else None) or "",
        }
        out = set()
        for template in self.profile.volume.get("labels", []):
            try:
                label = str(template).format(**values)
            except (KeyError, IndexError):
                continue
            if label:
                out.add(label)
        return out


Passwords = Callable[[Sequence[str]], str | None]
OnStep = Callable[[str, str], None]


def _optional(read: Callable[[], Any], what: str, warnings: list[str]) -> Any:
    """A reading the family may lack (None) or get wrong (None, with a warning); timeouts still fail."""
    try:
        return read()
    except NotSupportedError:
        return None
    except ProtocolError as exc:
        warnings.append(f"{what} unreadable: {exc}")
        return None


def _log_in(
    proto: RecorderProtocol, passwords: Passwords, device: UsbDevice | None, id_code: str | None, step: OnStep
) -> None:
    """Log in where the family needs a password (looked up by USB serial, then by ID code)."""
    profile = proto.profile
    if not profile.needs_password:
        return
    step(Step.LOGGING_IN, "")
    keys = [k for k in (device.serial if device else None, id_code) if k]
    password = passwords(keys)
    if not password:
        raise PasswordMissing(
            f"no device password configured for the {profile.name} family" + (f" or device {keys[-1]}" if keys else "")
        )
    proto.login(password)


def _read_status(proto: RecorderProtocol, now: Callable[[], datetime], warnings: list[str]) -> DeviceStatus:
    """Battery, storage and the device clock (read between two readings of ours, for its offset)."""
    battery = _optional(proto.battery, "battery", warnings)
    storage = _optional(proto.storage, "storage", warnings)
    before = now()
    device_clock = _optional(proto.get_time, "clock", warnings)
    after = now()
    return DeviceStatus(
        clock=device_clock,
        read_at=before + (after - before) / 2,
        battery_percent=battery,
        storage_total_bytes=storage[0] if storage else None,
        storage_free_bytes=storage[1] if storage else None,
    )


def _set_clock(
    proto: RecorderProtocol,
    serial: str,
    clock: ClockPolicy,
    status: DeviceStatus,
    now: Callable[[], datetime],
    step: OnStep,
    warnings: list[str],
) -> datetime | None:
    """Set the device clock when the policy says so; the time it was set to, or None."""
    set_it, why = clock.decide(status.clock_offset_seconds)
    if not set_it:
        log.info("%s %s: %s", proto.profile.name, serial, why)
        return None
    step(Step.SETTING_CLOCK, why)
    try:
        set_to = now()
        proto.set_time(set_to)
    except NotSupportedError:
        warnings.append("this family cannot set its clock")
        return None
    except ResultError as exc:
        warnings.append(f"clock not set: {exc.reason}")
        return None
    return set_to


def _identity(profile: Profile, serial: str, info: ZfyInfo | None) -> DeviceIdentity:
    def told(value: str | None) -> str | None:
        return value or None

    return DeviceIdentity(
        serial=serial,
        family=profile.name,
        model=profile.title[:200],
        officer_no=told(info.officer_no) if info else None,
        officer_name=told(info.officer_name) if info else None,
        unit_no=told(info.unit_no) if info else None,
        unit_name=told(info.unit_name) if info else None,
    )


def handshake(
    proto: RecorderProtocol,
    *,
    passwords: Passwords,
    clock: ClockPolicy | None = None,
    device: UsbDevice | None = None,
    on_step: OnStep | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handshake:
    """Probe, init, log in, read info, clock, battery and resolution, set the clock, switch to disk.

    The protocol is closed afterwards in every case. Raises :class:`ResultError` (with the standard
    code), :class:`PasswordMissing`, :class:`IdentityError` or a transport error.
    """
    step = on_step or (lambda s, m: None)
    profile = proto.profile
    warnings: list[str] = []
    try:
        step(Step.CONNECTING, "")
        if not proto.probe():
            raise ResultError(ResultCode.CONNECT_FAILED, "the recorder did not answer the probe")
        _optional(proto.init, "init", warnings)
        id_code = _optional(proto.get_id_code, "ID code", warnings)
        _log_in(proto, passwords, device, id_code, step)
        step(Step.READING_INFO, "")
        info = _optional(proto.get_info, "info block", warnings)
        serial = (info.serial if info else "") or id_code or (device.serial if device else None)
        if not serial:
            raise IdentityError(f"the {profile.name} recorder told no serial, ID code or USB serial")
        resolution = _optional(proto.resolution, "resolution", warnings)
        step(Step.READING_CLOCK, "")
        status = _read_status(proto, now, warnings)
        important = _optional(proto.list_important, "list of files marked important", warnings)
        clock_set_to = _set_clock(proto, serial, clock or ClockPolicy(), status, now, step, warnings)
        step(Step.SWITCHING, "")
        sd = _optional(proto.sd_present, "SD card status", warnings)
        proto.enter_mass_storage()
    finally:
        proto.close()
    for w in warnings:
        log.warning("%s %s: %s", profile.name, serial, w)
    return Handshake(
        profile=profile,
        identity=_identity(profile, serial, info),
        status=status,
        device=device,
        info=info,
        id_code=id_code,
        resolution=resolution,
        sd_present=sd,
        clock_set_to=clock_set_to,
        warnings=tuple(warnings),
        important=important,
    )


# --- finding the disk after the switch --------------------------------------------------------

Locate = Callable[[Handshake], Path | None]


@dataclass
class SysfsLocator:
    """The recorder's disk by USB port (same physical port, any new USB disk on it) or by label."""

    sysfs: Path = SYSFS
    mountinfo: Path = MOUNTINFO
    by_label: Path = BY_LABEL

    def __call__(self, hs: Handshake) -> Path | None:
        if hs.device is not None and hs.profile.volume.get("same_port", True):
            port_dir = usb_device_dir(hs.device.port_path, self.sysfs)
            if port_dir.exists():
                for vol in volumes_of(port_dir, mountinfo=self.mountinfo, by_label=self.by_label):
                    return vol.mount_point
        found = volume_by_label(hs.labels(), sysfs=self.sysfs, mountinfo=self.mountinfo, by_label=self.by_label)
        return found.mount_point if found else None


def wait_for_volume(
    hs: Handshake,
    locate: Locate,
    *,
    timeout: float | None = None,
    poll: float = 0.2,
    stop: threading.Event | None = None,
) -> Path:
    """Wait for the re-enumerated disk (after the profile's settle time), up to ``timeout``."""
    stop = stop or threading.Event()
    timeout = hs.profile.timeout("reenumerate") if timeout is None else timeout
    settle = min(hs.profile.timeout("settle"), timeout)
    if settle and stop.wait(settle):
        raise VolumeTimeout("stopped while waiting for the disk")
    deadline = time.monotonic() + timeout - settle
    while True:
        found = locate(hs)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise VolumeTimeout(
                f"the {hs.profile.name} recorder {hs.identity.serial} did not come back as a disk within {timeout:g} s"
            )
        if stop.wait(poll):
            raise VolumeTimeout("stopped while waiting for the disk")


# --- the driver ------------------------------------------------------------------------------


class UsbRecorderDriver(RecorderDriver):
    """A USB recorder after its handshake: identity and status from the control channel, files from
    its disk through :class:`MassStorageDriver`. Only the USB dock builds one; it is never probed."""

    family = "usb"
    accepted_options = frozenset({"extensions", "name_patterns", "label", "data_dirs"})

    def __init__(
        self,
        root: Path,
        *,
        handshake: Handshake,
        label: str | None = None,
        data_dirs: Iterable[str] | None = None,
        extensions: Iterable[str] | None = None,
        name_patterns: Iterable[NamePattern | str] | None = None,
    ) -> None:
        super().__init__(root)
        self.handshake = handshake
        self.label = label if label is not None else self.root.name
        dirs = tuple(data_dirs or handshake.profile.volume.get("data_dirs", ["DCIM"]))
        self.files = MassStorageDriver(
            self.root,
            label=self.label,
            data_dirs=dirs,
            model=handshake.identity.model,
            extensions=extensions,
            name_patterns=name_patterns,
            important=handshake.profile.important,
        )

    @classmethod
    def probe(cls, root: Path, **options: Any) -> bool:
        return False

    def identify(self) -> DeviceIdentity:
        self._check_open()
        identity = replace(self.handshake.identity, volume_label=self.label)
        evidence = self.files.name_evidence()
        warnings = list(self.handshake.warnings)
        others = sorted(set(evidence.serials) - {identity.serial})
        if others:
            warnings.append(f"file names carry serial(s) {others}, the recorder says {identity.serial}")
        if identity.officer_no and set(evidence.officers) - {identity.officer_no}:
            warnings.append(
                f"file names carry officer(s) {sorted(set(evidence.officers) - {identity.officer_no})},"
                f" the info block says {identity.officer_no}"
            )
        self.identity_warnings = warnings
        return identity

    def read_status(self) -> DeviceStatus:
        """The control channel's readings; storage from the disk where the protocol gave none."""
        self._check_open()
        status = self.handshake.status
        if status.storage_total_bytes is None:
            disk = self.files.read_status()
            status = replace(
                status, storage_total_bytes=disk.storage_total_bytes, storage_free_bytes=disk.storage_free_bytes
            )
        return status

    def list_recordings(self) -> list[RecordingEntry]:
        self._check_open()
        entries = self.files.list_recordings()
        self.rejected = list(self.files.rejected)
        listed = self.handshake.important
        if listed:
            entries = [
                replace(e, important=BY_DEVICE_LIST) if match_device_list(e.path, listed) else e for e in entries
            ]
        return entries

    def open_recording(self, path: str) -> BinaryIO:
        self._check_open()
        return self.files.open_recording(path)

    def stat_recording(self, path: str) -> tuple[int, datetime]:
        self._check_open()
        return self.files.stat_recording(path)

    def delete_recording(self, path: str) -> None:
        self._check_open()
        self.files.delete_recording(path)

    def set_clock(self, when: datetime) -> None:
        raise NotSupportedError("the clock is set during the handshake; in disk mode the control channel is gone")

    def close(self) -> None:
        if not self._closed:
            self.files.close()
        super().close()
