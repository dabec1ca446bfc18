"""Device family profiles: everything vendor-specific about a recorder, as data.

A profile is a JSON file (see ``profiles/*.json`` and docs/vendor-profiles.md): how to find the
device (USB VID:PID, SCSI inquiry strings), how to reach it (transport, interface, endpoints,
socket), how its frames look, its command codes, the ZFY_INFO size, its timeouts, and how its
disk-mode volume is recognised. A new vendor is a new profile, not new code, as long as it speaks
one of the known dialects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from device_drivers.marks import DEFAULT_MARKS, MarkRules, MarkRulesError

TRANSPORTS = ("scsi", "bulk", "socket")
#: dialect -> (transport it runs on, commands it cannot do without)
DIALECTS: dict[str, tuple[str, frozenset[str]]] = {
    "dv16": (
        "scsi",
        frozenset(
            {"init", "get_info", "set_time", "enter_mass_storage", "sd_status", "read_password", "return_status"}
        ),
    ),
    "ascii_frames": ("bulk", frozenset({"probe", "get_id_code", "enter_mass_storage"})),
    "e12": ("socket", frozenset({"init", "get_info", "set_time", "enter_mass_storage", "login"})),
}
_VIDPID = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


class ProfileError(ValueError):
    """A profile file that cannot be used, with the file and the key at fault."""


def normalize_scsi(text: str) -> str:
    """SCSI vendor/product strings as profiles compare them: lowercased, spaces removed."""
    return re.sub(r"\s+", "", text).lower()


def parse_vidpid(text: str) -> tuple[int, int]:
    m = _VIDPID.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not VID:PID in hex (e.g. 4255:0001)")
    return int(m.group(1), 16), int(m.group(2), 16)


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    transport: str
    dialect: str
    usb_ids: frozenset[tuple[int, int]]
    scsi_ids: frozenset[str]
    timeouts: Mapping[str, float]
    time_zone: str
    info_size: int
    password: Mapping[str, Any]
    frame: Mapping[str, Any]
    commands: Mapping[str, Mapping[str, Any]]
    volume: Mapping[str, Any]
    usb: Mapping[str, int] = field(default_factory=dict)
    socket: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""
    source: str = ""
    #: where this family writes its important mark (重要文件标记): ``device_drivers.marks.MarkRules``
    important: MarkRules = field(default_factory=MarkRules)

    def timeout(self, kind: str) -> float:
        return float(self.timeouts.get(kind, self.timeouts.get("read", 3.0)))

    def command(self, name: str) -> Mapping[str, Any] | None:
        return self.commands.get(name)

    @property
    def needs_password(self) -> bool:
        return str(self.password.get("check", "none")) != "none"

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with some top-level sections replaced (tests shorten timeouts, stations set addresses)."""
        values = {**self.__dict__, **changes}
        return Profile(**values)


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ProfileError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProfileError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, not {value!r}")
    return value


def profile_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Profile:
    """Validate and build a profile; every problem names ``source`` and the key."""
    name = _need(data, "name", str, source)
    where = f"{source} ({name})"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,40}", name):
        raise ProfileError(f"{where}: name must be lowercase letters, digits, '-' or '_'")
    transport = _need(data, "transport", str, where)
    if transport not in TRANSPORTS:
        raise ProfileError(f"{where}: transport must be one of {TRANSPORTS}, not {transport!r}")
    dialect = _need(data, "dialect", str, where)
    if dialect not in DIALECTS:
        raise ProfileError(f"{where}: dialect must be one of {sorted(DIALECTS)}, not {dialect!r}")
    wants_transport, required = DIALECTS[dialect]
    if wants_transport != transport:
        raise ProfileError(f"{where}: dialect {dialect} runs over {wants_transport}, not {transport}")
    commands = _need(data, "commands", dict, where)
    missing = sorted(required - set(commands))
    if missing:
        raise ProfileError(f"{where}: commands {missing} are required by dialect {dialect}")
    for cname, spec in commands.items():
        if not isinstance(spec, dict):
            raise ProfileError(f"{where}: command {cname!r} must be an object")
    match = data.get("match", {})
    try:
        usb_ids = frozenset(parse_vidpid(x) for x in match.get("usb", []))
    except ValueError as exc:
        raise ProfileError(f"{where}: match.usb: {exc}") from None
    scsi_ids = frozenset(normalize_scsi(x) for x in match.get("scsi", []))
    timeouts = _need(data, "timeouts", dict, where)
    for key, value in timeouts.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ProfileError(f"{where}: timeouts.{key} must be a number of seconds >= 0")
    info_size = data.get("info_size", 94)
    if info_size not in (94, 89):
        raise ProfileError(f"{where}: info_size must be 94 or 89, not {info_size!r}")
    tz = data.get("time_zone", "Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError(f"{where}: unknown time_zone {tz!r}") from None
    usb = data.get("usb", {})
    if transport in ("scsi", "bulk"):
        for key in ("interface", "endpoint_out", "endpoint_in"):
            _need(usb, key, int, f"{where} usb")
    socket = data.get("socket", {})
    if transport == "socket":
        _need(socket, "port", int, f"{where} socket")
        if socket.get("framing", "length_prefixed") not in ("length_prefixed", "json_lines"):
            raise ProfileError(f"{where}: socket.framing must be length_prefixed or json_lines")
    volume = data.get("volume", {})
    if not isinstance(volume.get("labels", []), list):
        raise ProfileError(f"{where}: volume.labels must be a list of label templates")
    try:
        # no ``important`` key: the volume families' defaults; ``{}``: the family marks nothing
        important = MarkRules.from_dict(data["important"], where) if "important" in data else DEFAULT_MARKS
    except MarkRulesError as exc:
        raise ProfileError(str(exc)) from None
    return Profile(
        name=name,
        title=data.get("title", name),
        transport=transport,
        dialect=dialect,
        usb_ids=usb_ids,
        scsi_ids=scsi_ids,
        timeouts=dict(timeouts),
        time_zone=tz,
        info_size=info_size,
        password=dict(data.get("password", {"check": "none"})),
        frame=dict(data.get("frame", {})),
        commands=dict(commands),
        volume=dict(volume),
        usb=dict(usb),
        socket=dict(socket),
        notes=data.get("notes", ""),
        source=source,
        important=important,
    )


def load_profile(path: Path) -> Profile:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a JSON object")
    return profile_from_dict(data, str(path))


def shipped_profiles() -> dict[str, Profile]:
    """The profiles that come with Custodia (one per family in RECORDER-PROTOCOLS.md)."""
    out = {}
    for entry in sorted(resources.files("device_drivers.usb").joinpath("profiles").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            p = profile_from_dict(data, f"shipped:{entry.name}")
            out[p.name] = p
    return out


def load_profiles(extra_dirs: Iterable[Path] = ()) -> dict[str, Profile]:
    """Shipped profiles, then each ``*.json`` of ``extra_dirs`` (a bureau's own; same name replaces)."""
    out = shipped_profiles()
    for d in extra_dirs:
        for path in sorted(Path(d).glob("*.json")):
            p = load_profile(path)
            out[p.name] = p
    return out
