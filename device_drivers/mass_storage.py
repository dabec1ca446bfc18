"""USB mass-storage recorders, already switched to disk mode and mounted as a volume."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from device_drivers.base import DeviceIdentity, DeviceStatus, IdentityError
from device_drivers.names import NamePattern
from device_drivers.volume import FileVolumeDriver

#: Volume labels of recorders we take, matched in full; a ``serial`` group, when present, is the serial.
DEFAULT_LABEL_PATTERNS: tuple[str, ...] = (r"ZFY[_-]?(?P<serial>[A-Za-z0-9]{4,32})",)
DEFAULT_DATA_DIRS: tuple[str, ...] = ("DCIM",)


def match_label(label: str, patterns: Iterable[str | re.Pattern[str]]) -> re.Match[str] | None:
    """The first allow-list pattern matching the whole label, or None."""
    for pattern in patterns:
        m = re.fullmatch(pattern, label)
        if m:
            return m
    return None


def has_data_dir(root: Path, data_dirs: Iterable[str]) -> bool:
    """Is one of ``data_dirs`` (case-insensitive, FAT style) a real directory directly under ``root``?"""
    wanted = {d.casefold() for d in data_dirs}
    with os.scandir(root) as entries:
        return any(e.name.casefold() in wanted and e.is_dir(follow_symlinks=False) for e in entries)


class MassStorageDriver(FileVolumeDriver):
    """A recorder mounted as a USB disk; identity from the volume label, then from the file names.

    Options: ``label`` (default: the mount directory's name), ``label_patterns`` (allow-list of full
    regexes, a ``serial`` group extracts the serial: ``ZFY_DSJ0001`` -> ``DSJ0001``), ``data_dirs``
    (default ``DCIM``), ``model``, plus ``extensions`` and ``name_patterns``.
    """

    family = "mass_storage"
    accepted_options = FileVolumeDriver.accepted_options | {"label", "label_patterns", "data_dirs", "model"}

    def __init__(
        self,
        root: Path,
        *,
        label: str | None = None,
        label_patterns: Iterable[str | re.Pattern[str]] = DEFAULT_LABEL_PATTERNS,
        data_dirs: Iterable[str] = DEFAULT_DATA_DIRS,
        model: str | None = None,
        extensions: Iterable[str] | None = None,
        name_patterns: Iterable[NamePattern | str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, extensions=extensions, name_patterns=name_patterns, **options)
        self.label = label if label is not None else self.root.name
        self.label_patterns = tuple(label_patterns)
        self.data_dirs = tuple(data_dirs)
        self.model = model

    @classmethod
    def probe(
        cls,
        root: Path,
        *,
        label: str | None = None,
        label_patterns: Iterable[str | re.Pattern[str]] = DEFAULT_LABEL_PATTERNS,
        data_dirs: Iterable[str] = DEFAULT_DATA_DIRS,
        **options: Any,
    ) -> bool:
        root = Path(root)
        if match_label(label if label is not None else root.name, label_patterns) is None:
            return False
        try:
            return root.is_dir() and not root.is_symlink() and has_data_dir(root, data_dirs)
        except OSError:
            return False

    def label_serial(self) -> str | None:
        """The serial carried by the volume label, if the matching pattern extracts one."""
        m = match_label(self.label, self.label_patterns)
        if m is None or "serial" not in m.re.groupindex:
            return None
        return m.group("serial") or None

    def identify(self) -> DeviceIdentity:
        self._check_open()
        evidence = self.name_evidence()
        warnings = evidence.officer_warnings()
        serial = self.label_serial()
        if serial is not None:
            others = sorted(set(evidence.serials) - {serial})
            if others:
                warnings.append(f"file names carry serial(s) {others}, the volume label {self.label!r} says {serial}")
        elif len(evidence.serials) == 1:
            serial = next(iter(evidence.serials))
        elif evidence.serials:
            self.identity_warnings = warnings
            raise IdentityError(
                f"label {self.label!r} carries no serial and file names disagree: {sorted(evidence.serials)}"
            )
        else:
            self.identity_warnings = warnings
            raise IdentityError(f"label {self.label!r} carries no serial and no file name has one")
        self.identity_warnings = warnings
        return DeviceIdentity(
            serial=serial,
            family=self.family,
            model=self.model,
            officer_no=evidence.latest_officer,
            volume_label=self.label,
        )

    def read_status(self) -> DeviceStatus:
        """Storage figures of the volume; a plain disk has no clock or battery to report."""
        self._check_open()
        with self._volume.fd() as fd:
            st = os.fstatvfs(fd)
        return DeviceStatus(
            storage_total_bytes=st.f_blocks * st.f_frsize,
            storage_free_bytes=st.f_bavail * st.f_frsize,
        )
