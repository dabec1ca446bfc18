"""Reading a volume that may be hostile: fd-relative walking and opening, no symlink ever followed.

Every access starts from a file descriptor of the volume root and descends one component at a time
with ``O_NOFOLLOW``, so nothing a volume contains can lead outside it.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custodia_wire.paths import UnsafePathError, check_device_path
from device_drivers.base import RejectedEntry
from device_drivers.errors import DeviceGoneError, UnsafeEntryError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: OS and host junk, skipped silently (compared case-insensitively); ``._*`` and ``.Trash-*`` too.
JUNK_NAMES = frozenset(
    n.casefold()
    for n in (
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        "System Volume Information",
        ".Trashes",
        ".Spotlight-V100",
        ".fseventsd",
        ".TemporaryItems",
        "$RECYCLE.BIN",
    )
)
DEFAULT_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".ts", ".wav", ".mp3", ".jpg", ".jpeg"})
#: errno values meaning the medium went away under an open file or directory.
GONE_ERRNOS = frozenset({errno.EIO, errno.ENODEV, errno.ENXIO, errno.ESTALE, errno.ENOTCONN})

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def is_junk(name: str) -> bool:
    folded = name.casefold()
    return folded in JUNK_NAMES or name.startswith("._") or folded.startswith(".trash-")


def printable(path: str) -> str:
    """``path`` itself if printable, else its escaped repr (control chars, undecodable bytes)."""
    return path if path.isprintable() else repr(path)


def kind_of(mode: int) -> str:
    """A rejection reason naming a non-regular file type."""
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device node"
    return "not a regular file"


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime_ns: int


class VolumeRoot:
    """The root directory of a volume, pinned by (st_dev, st_ino) so a swap or unmount is noticed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        st = self._stat_root()
        if not stat.S_ISDIR(st.st_mode):
            raise DeviceGoneError(f"{self.root} is not a directory")
        self.identity = (st.st_dev, st.st_ino)

    def _stat_root(self) -> os.stat_result:
        try:
            return os.stat(self.root)
        except OSError as exc:
            raise DeviceGoneError(f"volume {self.root} is gone: {exc.strerror}") from exc

    def gone(self) -> bool:
        """True when the root no longer exists or is no longer the directory first seen."""
        try:
            st = os.stat(self.root)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self.identity

    @contextmanager
    def fd(self) -> Iterator[int]:
        """An fd of the root, checked to be the volume first seen."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise DeviceGoneError(f"volume {self.root} is gone: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.identity:
                raise DeviceGoneError(f"volume {self.root} was unmounted or replaced")
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def parent_fd(self, path: str) -> Iterator[tuple[int, str]]:
        """``(fd of the parent directory, last component)`` of a checked relative path."""
        try:
            check_device_path(path)
        except UnsafePathError as exc:
            raise UnsafeEntryError(f"unsafe name: {exc}") from exc
        *dirs, name = path.split("/")
        with self.fd() as root_fd:
            fd = os.dup(root_fd)
            try:
                for part in dirs:
                    try:
                        child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        raise self._error(path, exc) from exc
                    os.close(fd)
                    fd = child
                yield fd, name
            finally:
                os.close(fd)

    def _error(self, path: str, exc: OSError) -> Exception:
        """Translate an OSError met under the root: gone volume, unsafe entry, or the error itself."""
        if exc.errno in GONE_ERRNOS or self.gone():
            return DeviceGoneError(f"volume {self.root} is gone ({exc.strerror}) while reaching {path!r}")
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return UnsafeEntryError(f"{printable(path)}: a component is a symlink or not a directory")
        return exc

    def open_file(self, path: str) -> DeviceFile:
        with self.parent_fd(path) as (dir_fd, name):
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise self._error(path, exc) from exc
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise UnsafeEntryError(f"{printable(path)}: {kind_of(mode)}, not a regular file")
            os.set_blocking(fd, True)
            return DeviceFile(fd, self)
        except BaseException:
            os.close(fd)
            raise

    def lstat_file(self, path: str) -> os.stat_result:
        with self.parent_fd(path) as (dir_fd, name):
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                raise self._error(path, exc) from exc
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeEntryError(f"{printable(path)}: {kind_of(st.st_mode)}, not a regular file")
        return st

    def unlink_file(self, path: str) -> None:
        with self.parent_fd(path) as (dir_fd, name):
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafeEntryError(f"{printable(path)}: {kind_of(st.st_mode)}, not a regular file")
                os.unlink(name, dir_fd=dir_fd)
            except OSError as exc:
                raise self._error(path, exc) from exc

    def walk(self, extensions: frozenset[str]) -> tuple[list[FoundFile], list[RejectedEntry]]:
        """All regular files with an allowed extension, and what was rejected; junk is skipped."""
        found: list[FoundFile] = []
        rejected: list[RejectedEntry] = []
        with self.fd() as root_fd:
            dev = os.fstat(root_fd).st_dev
            try:
                self._walk_dir(root_fd, "", dev, extensions, found, rejected)
            except OSError as exc:
                if exc.errno in GONE_ERRNOS or self.gone():
                    raise DeviceGoneError(f"volume {self.root} is gone: {exc.strerror}") from exc
                raise
        found.sort(key=lambda f: f.path)
        rejected.sort(key=lambda r: r.path)
        return found, rejected

    def _walk_dir(
        self,
        dir_fd: int,
        prefix: str,
        dev: int,
        extensions: frozenset[str],
        found: list[FoundFile],
        rejected: list[RejectedEntry],
    ) -> None:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if is_junk(entry.name):
                    continue
                path = prefix + entry.name
                try:
                    check_device_path(path)
                except UnsafePathError as exc:
                    rejected.append(RejectedEntry(printable(path), f"unsafe name: {exc}"))
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != dev:
                        rejected.append(RejectedEntry(path, "other filesystem mounted here"))
                        continue
                    try:
                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                    except OSError as exc:
                        if exc.errno in GONE_ERRNOS:
                            raise
                        rejected.append(RejectedEntry(path, f"unreadable directory: {exc.strerror}"))
                        continue
                    try:
                        self._walk_dir(child, path + "/", dev, extensions, found, rejected)
                    finally:
                        os.close(child)
                elif not stat.S_ISREG(st.st_mode):
                    rejected.append(RejectedEntry(path, kind_of(st.st_mode)))
                elif os.path.splitext(entry.name)[1].lower() not in extensions:
                    rejected.append(RejectedEntry(path, "not a recording (extension)"))
                else:
                    found.append(FoundFile(path, st.st_size, st.st_mtime_ns))


class DeviceFile(io.FileIO):
    """An unbuffered read-only file on a volume; an I/O error after unplugging is DeviceGoneError."""

    def __init__(self, fd: int, volume: VolumeRoot) -> None:
        super().__init__(fd, "rb", closefd=True)
        self._volume = volume

    def _gone(self, exc: OSError) -> Exception:
        if exc.errno in GONE_ERRNOS:
            return DeviceGoneError(f"volume {self._volume.root} is gone: {exc.strerror}")
        return exc

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except OSError as exc:
            raise self._gone(exc) from exc

    def readall(self) -> bytes:
        try:
            return super().readall()
        except OSError as exc:
            raise self._gone(exc) from exc

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        try:
            return super().readinto(buffer)
        except OSError as exc:
            raise self._gone(exc) from exc
