"""Redirect targets taken from the request (``next=``) may only be paths on this site."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a local absolute path (query allowed), else ``default``. Pure.

    Refuses scheme-relative ``//host``, backslashes (browsers read ``/\\host`` as ``//host``),
    whitespace and control characters (browsers drop tabs and newlines from URLs), and anything
    with a scheme or a host.
    """
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def here(request: Request) -> str:
    """The current page as a path with its query, for ``next=``."""
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def with_next(path: str, next_path: str) -> str:
    return f"{path}?next={quote(next_path, safe='/')}"
