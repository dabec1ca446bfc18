"""Device paths as they travel between station and server: relative, POSIX, and harmless."""

from __future__ import annotations

import re
import unicodedata

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
#: Unicode categories refused in a path: control characters (Cc: U+0000-001F, U+007F-009F), format
#: characters (Cf: the bidirectional marks, embeddings, overrides and isolates U+200E-200F, U+061C,
#: U+202A-202E, U+2066-2069 that make a name read differently, and the invisible ones such as U+200B,
#: U+2060, U+FEFF, U+00AD) and the line and paragraph separators (Zl, Zp), which split a name in two.
_UNSAFE_CATEGORIES = {"Cc": "control character", "Cf": "invisible or bidirectional format character"}
_UNSAFE_CATEGORIES |= {"Zl": "line separator", "Zp": "paragraph separator"}
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class UnsafePathError(ValueError):
    """A device path that could escape a directory or confuse a reader."""


def check_device_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path on a device volume, else raise.

    Refuses absolute paths, ``..`` and ``.`` components, empty components, NUL and other control
    characters, invisible and bidirectional format characters (U+200F too), line separators,
    backslashes, names longer than 255 bytes and paths longer than 1024 characters.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError("empty path")
    if len(path) > MAX_PATH_CHARS:
        raise UnsafePathError(f"path longer than {MAX_PATH_CHARS} characters")
    bad = next((c for c in path if unicodedata.category(c) in _UNSAFE_CATEGORIES), None)
    if bad is not None:
        what = _UNSAFE_CATEGORIES[unicodedata.category(bad)]
        name = unicodedata.name(bad, "")
        why = " (shows the name in another order)" if _BIDI.match(bad) else ""
        raise UnsafePathError(f"{what} U+{ord(bad):04X}{' ' + name if name else ''}{why} in path {path!r}")
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
