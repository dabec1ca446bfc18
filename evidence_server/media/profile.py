"""What a recorder writes into a file, as comparable properties (container brand and tags, codec
settings, time base, audio format, naming), from ffprobe's JSON. Pure; kept with each recording so
that the compliance rules compare devices' files without reading whole probes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DIGITS = re.compile(r"\d")


def _tags(d: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in ((d or {}).get("tags") or {}).items()}


def profile_of(probe: Mapping[str, Any] | None, path: str) -> dict[str, str]:
    """The comparable properties of one file, from ffprobe's ``-show_format -show_streams`` JSON."""
    name = path.rsplit("/", 1)[-1]
    out = {"naming": _DIGITS.sub("#", name)}
    if not probe:
        return out
    fmt = probe.get("format") or {}
    tags = _tags(fmt)
    streams = probe.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    out.update(
        container=str(fmt.get("format_name")),
        brand=tags.get("major_brand", "-"),
        compatible_brands=tags.get("compatible_brands", "-"),
        encoder=tags.get("encoder", "-"),
        metadata_keys=",".join(sorted(tags)),
        streams=",".join(str(s.get("codec_type")) for s in streams),
    )
    if video is not None:
        vt = _tags(video)
        out.update(
            video_codec=str(video.get("codec_name")),
            video_profile=str(video.get("profile", "-")),
            pixel_format=str(video.get("pix_fmt", "-")),
            frame_rate=str(video.get("avg_frame_rate") or video.get("r_frame_rate")),
            timescale=str(video.get("time_base")),
            video_handler=vt.get("handler_name", "-"),
            video_encoder=vt.get("encoder", "-"),
        )
    if audio is not None:
        at = _tags(audio)
        out.update(
            audio=f"{audio.get('codec_name')}/{audio.get('sample_rate')}/{audio.get('channels')}",
            audio_handler=at.get("handler_name", "-"),
        )
    else:
        out["audio"] = "none"
    return out
