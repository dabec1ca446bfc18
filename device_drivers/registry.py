"""Which driver family handles a volume: the first whose probe succeeds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from device_drivers.base import DriverError, RecorderDriver
from device_drivers.folder import FolderDriver
from device_drivers.mass_storage import MassStorageDriver

#: Probed in this order: the most specific family first, the catch-all folder last.
DRIVERS: tuple[type[RecorderDriver], ...] = (MassStorageDriver, FolderDriver)


def family(name: str) -> type[RecorderDriver]:
    for cls in DRIVERS:
        if cls.family == name:
            return cls
    raise DriverError(f"unknown driver family {name!r}; known: {[c.family for c in DRIVERS]}")


def driver_for(root: Path, prefer: str | None = None, **options: Any) -> RecorderDriver:
    """Open ``root`` with the first family whose probe succeeds, or with ``prefer`` only.

    Each family receives the options it accepts (``serial=`` reaches the folder driver, not a
    mass-storage volume that has its own label); an option no family accepts is a TypeError.
    """
    known = frozenset().union(*(cls.accepted_options for cls in DRIVERS))
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"no driver family accepts options {sorted(unknown)}")
    candidates = [family(prefer)] if prefer else list(DRIVERS)
    for cls in candidates:
        own = {k: v for k, v in options.items() if k in cls.accepted_options}
        if cls.probe(Path(root), **own):
            return cls(Path(root), **own)
    wanted = f"a {prefer} volume" if prefer else "any known recorder family"
    raise DriverError(f"{root} does not look like {wanted}")


def known_families() -> list[tuple[str, str]]:
    """``(family, title)`` of every recorder family this station software reads: the volume families,
    then each shipped USB vendor profile (the family a USB recorder's identity carries)."""
    from device_drivers.usb.profiles import shipped_profiles

    families = [
        (cls.family, (sys.modules[cls.__module__].__doc__ or cls.family).strip().splitlines()[0]) for cls in DRIVERS
    ]
    families += [(name, profile.title) for name, profile in sorted(shipped_profiles().items())]
    return families
