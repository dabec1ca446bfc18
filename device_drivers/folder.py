"""A plain folder standing in for a recorder: SD-card reader, manual import, demos."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from device_drivers.base import DeviceIdentity, IdentityError
from device_drivers.names import NamePattern
from device_drivers.volume import FileVolumeDriver


class FolderDriver(FileVolumeDriver):
    """Identity from the options (``serial``, ``officer_no``, ``officer_name``, ``unit_no``,
    ``unit_name``, ``model``) or, failing that, from the file names; no serial anywhere is an error."""

    family = "folder"
    accepted_options = FileVolumeDriver.accepted_options | {
        "serial",
        "officer_no",
        "officer_name",
        "unit_no",
        "unit_name",
        "model",
    }

    def __init__(
        self,
        root: Path,
        *,
        serial: str | None = None,
        officer_no: str | None = None,
        officer_name: str | None = None,
        unit_no: str | None = None,
        unit_name: str | None = None,
        model: str | None = None,
        extensions: Iterable[str] | None = None,
        name_patterns: Iterable[NamePattern | str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, extensions=extensions, name_patterns=name_patterns, **options)
        self.serial = serial
        self.officer_no = officer_no
        self.officer_name = officer_name
        self.unit_no = unit_no
        self.unit_name = unit_name
        self.model = model

    @classmethod
    def probe(cls, root: Path, **options: Any) -> bool:
        root = Path(root)
        try:
            return root.is_dir() and os.access(root, os.R_OK | os.X_OK)
        except OSError:
            return False

    def identify(self) -> DeviceIdentity:
        self._check_open()
        evidence = self.name_evidence()
        warnings = [] if self.officer_no else evidence.officer_warnings()
        serial = self.serial
        if serial is not None:
            others = sorted(set(evidence.serials) - {serial})
            if others:
                warnings.append(f"file names carry serial(s) {others}, the configured serial is {serial}")
        elif len(evidence.serials) == 1:
            serial = next(iter(evidence.serials))
        else:
            self.identity_warnings = warnings
            found = f"file names disagree: {sorted(evidence.serials)}" if evidence.serials else "none in file names"
            raise IdentityError(f"no serial given for folder {self.root} and {found}")
        if self.officer_no and evidence.officers.keys() - {self.officer_no}:
            warnings.append(
                f"file names carry officer(s) {sorted(evidence.officers.keys() - {self.officer_no})}, "
                f"the configured officer is {self.officer_no}"
            )
        self.identity_warnings = warnings
        return DeviceIdentity(
            serial=serial,
            family=self.family,
            model=self.model,
            officer_no=self.officer_no or evidence.latest_officer,
            officer_name=self.officer_name,
            unit_no=self.unit_no,
            unit_name=self.unit_name,
        )
