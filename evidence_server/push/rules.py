"""Pure rules of the push-ingest API: names, metadata headers, capability document, tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

#: What this content destination takes (Axis Body Worn integration API, "Current capabilities").
CAPABILITIES: dict[str, dict[str, bool]] = {
    "Read": {},
    "Store": {"StoreBookmarks": True, "StoreGNSSTrackRecording": True, "StoreUserIDKey": True},
    "StoreAndRead": {"StoreReadSystemID": False},
}
SYSTEM_CONTAINERS = frozenset({"System", "Users", "Devices"})
CLIP_SUFFIXES = (".mkv", ".mp4")
TOKEN_PREFIX = "cus_p_"  # noqa: S105  (a prefix, not a secret; beside cus_u_ and cus_s_)


def capability_body() -> bytes:
    return json.dumps(CAPABILITIES, sort_keys=True, separators=(",", ":")).encode()


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def meta_from_headers(headers: Iterable[tuple[str, str]], kind: str) -> dict[str, str]:
    """``X-<Kind>-Meta-Foo: v%20w`` → ``{"foo": "v w"}`` (keys lower case, values URL-decoded)."""
    prefix = f"x-{kind}-meta-"
    return {k.lower()[len(prefix) :]: unquote(v) for k, v in headers if k.lower().startswith(prefix)}


def object_kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith(CLIP_SUFFIXES):
        return "clip"
    if lower.startswith("bookmark_"):
        return "bookmark"
    if lower.endswith("_gpstrail.json"):
        return "track"
    if lower.endswith(".key"):
        return "key"
    return "other"


@dataclass(frozen=True)
class ContainerName:
    user_uuid: str
    device_serial: str
    started_at: datetime | None


_NAME_TIME_FORMATS = ("%Y%m%d_%H%M%S", "%Y-%m-%d_%H-%M-%S", "%Y-%m-%d_%H%M%S", "%Y%m%d_%H%M%SZ")


def parse_container_name(name: str) -> ContainerName | None:
    """``<userid>_<deviceid>_<date>_<time>``; None when it has not that shape."""
    parts = name.rsplit("_", 2)
    if len(parts) != 3:
        return None
    head, date, time = parts
    user, sep, serial = head.partition("_")
    if not sep or not user or not serial or not date or not time:
        return None
    started = None
    for fmt in _NAME_TIME_FORMATS:
        try:
            started = datetime.strptime(f"{date}_{time}", fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    return ContainerName(user, serial, started)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time, or epoch seconds, as an aware UTC datetime; None if absent or unreadable."""
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def mint_token(key: bytes, account_id: int, expires: int) -> str:
    body = f"{account_id}_{expires}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{TOKEN_PREFIX}{body}_{mac}"


def token_account(key: bytes, token: str | None, now: float) -> int | None:
    """The account a token was minted for, if it is genuine and not expired."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    try:
        account_s, expires_s, mac = token[len(TOKEN_PREFIX) :].split("_")
        account_id, expires = int(account_s), int(expires_s)
    except ValueError:
        return None
    good = mint_token(key, account_id, expires)
    if not hmac.compare_digest(good.encode(), token.encode()) or expires <= now:
        return None
    return account_id


def connection_file(
    *, site: str, base_url: str, username: str, key: str, version: str, certificates: list[str]
) -> dict[str, object]:
    """The JSON connection file the body-worn manager imports (Connection API)."""
    return {
        "ConnectionFileVersion": "1.0",
        "SiteName": site[:64],
        "ApplicationName": "Custodia",
        "ApplicationVersion": version,
        "ContentDestinationAsNTPServer": False,
        "AuthenticationTokenURI": [base_url.rstrip("/") + "/auth/v1.0"],
        "HTTPSCertificate": certificates,
        "BlobAPIKey": key,
        "BlobAPIUserName": username,
        "ContainerType": "mp4",
        "FullStoreAndReadSupport": False,
        "WantEncryption": False,
    }
