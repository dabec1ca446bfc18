"""Device paths as they travel between station and server: relative, POSIX, and harmless."""

from __future__ import annotations

import re
import unicodedata

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
#: Control characters (Unicode category Cc: U+0000-001F, U+007F-009F) and the bidirectional
#: embeddings, overrides and isolates (U+202A-202E, U+2066-2069), which make a name read differently.
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class UnsafePathError(ValueError):
    """A device path that could escape a directory or confuse a reader."""


def check_device_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path on a device volume, else raise.

    Refuses absolute paths, ``..`` and ``.`` components, empty components, NUL and other control
    characters (bidirectional overrides too), backslashes, names longer than 255 bytes and paths
    longer than 1024 characters.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError("empty path")
    if len(path) > MAX_PATH_CHARS:
        raise UnsafePathError(f"path longer than {MAX_PATH_CHARS} characters")
    bad = _UNSAFE_CHARS.search(path)
    if bad is not None and unicodedata.category(bad.group()) == "Cc":
        raise UnsafePathError(f"control character (e.g. NUL) in path {path!r}")
    if bad is not None:
        raise UnsafePathError(f"bidirectional control character (shows the name reversed) in path {path!r}")
    if "\\" in path:
        raise UnsafePathError(f"backslash in path {path!r}")
    if path.startswith("/"):
        raise UnsafePathError(f"absolute path {path!r}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"path component {part!r} not allowed in {path!r}")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise UnsafePathError(f"name longer than {MAX_NAME_BYTES} bytes in {path!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafePathError(f"path is not valid Unicode: {path!r}") from exc
    return path
