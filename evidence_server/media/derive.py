"""Derived media: a thumbnail for every recording, and an H.264 proxy for those a browser cannot play.

Originals are never touched: ffmpeg reads a verified copy of them (each block checked against the
recording's block map as it is copied, see evidence_server/custody) and writes new files, which go to the object store
under ``derived/…`` (never ``blake3/…``, where evidence lives), each with its own fingerprint and a
row in ``derived_media`` that names the original it was made from. A derived file is marked as such
wherever it is served (``Custodia-Derived`` header) and never enters a court package.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from custodia_wire import fingerprint
from evidence_server.context import ServerContext
from evidence_server.custody import reads
from evidence_server.custody.damage import CopyDamaged
from evidence_server.media.models import DerivedMedia
from evidence_server.media.probe import probe_recording
from evidence_server.recordings.custody import MapUntrusted
from evidence_server.storage.base import derived_key

log = logging.getLogger(__name__)

KINDS = {"thumbnail": (".jpg", "image/jpeg"), "proxy": (".mp4", "video/mp4")}
#: containers (by file suffix) and codecs a browser plays without help
PLAYABLE = {
    ".mp4": ({"h264"}, {"aac", "mp3"}),
    ".m4v": ({"h264"}, {"aac", "mp3"}),
    ".webm": ({"vp8", "vp9", "av1"}, {"opus", "vorbis"}),
    ".m4a": (set(), {"aac", "mp3"}),
    ".mp3": (set(), {"mp3"}),
    ".wav": (set(), {"pcm_s16le", "pcm_u8"}),
}
BROWSER_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
STILL_IMAGE_CODECS = {"mjpeg", "png", "bmp"}


# --- decisions (pure) ------------------------------------------------------------------------------


def _streams(probe: dict[str, Any] | None, kind: str) -> list[dict[str, Any]]:
    return [s for s in (probe or {}).get("streams") or [] if s.get("codec_type") == kind]


def browser_playable(suffix: str, probe: dict[str, Any] | None) -> bool:
    """Whether a browser's <video>/<audio> plays the original as it is. Pure."""
    allowed = PLAYABLE.get(suffix.lower())
    if allowed is None or probe is None:
        return False
    video_codecs, audio_codecs = allowed
    videos, audios = _streams(probe, "video"), _streams(probe, "audio")
    if videos and (
        videos[0].get("codec_name") not in video_codecs
        or videos[0].get("pix_fmt", "yuv420p") not in BROWSER_PIXEL_FORMATS
    ):
        return False
    return all(a.get("codec_name") in audio_codecs for a in audios[:1]) and bool(videos or audios)


def plan(suffix: str, probe: dict[str, Any] | None, duration_s: float | None) -> dict[str, dict[str, Any]]:
    """What to make for one recording: per kind, ``{"make": bool, ...}``. Pure."""
    videos, audios = _streams(probe, "video"), _streams(probe, "audio")
    still = bool(videos) and videos[0].get("codec_name") in STILL_IMAGE_CODECS and not audios
    out: dict[str, dict[str, Any]] = {}
    if videos:
        at = 0.0 if still or not duration_s else round(min(1.0, duration_s / 2), 3)
        out["thumbnail"] = {"make": True, "at_s": at}
    else:
        out["thumbnail"] = {"make": False}
    needs = (videos or audios) and not still and not browser_playable(suffix, probe)
    out["proxy"] = {"make": bool(needs), "audio_only": not videos}
    return out


def thumbnail_args(src: str, dest: Path, at_s: float) -> list[str]:
    return [
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{at_s:.3f}",
        "-i",
        src,
        "-frames:v",
        "1",
        "-vf",
        "scale=320:-2",
        "-q:v",
        "5",
        "-f",
        "image2",
        str(dest),
    ]


def proxy_args(src: str, dest: Path, audio_only: bool) -> list[str]:
    """H.264/AAC in MP4, at most 720 lines, moov first so playback starts before the download ends."""
    video = (
        []
        if audio_only
        else [
            "-map",
            "0:v:0",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "26",
            "-pix_fmt",
            "yuv420p",
            "-vf",
            "scale=-2:'min(720,ih)'",
        ]
    )
    return [
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        src,
        *video,
        "-map",
        "0:a:0?",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(dest),
    ]


# --- the task -------------------------------------------------------------------------------------


@dataclass
class _Made:
    fp: fingerprint.Fingerprint
    key: str


def _ffmpeg_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except OSError:
        return "unknown"


def _run_ffmpeg(ctx: ServerContext, args: list[str], dest: Path, kind: str, source_hex: str) -> _Made:
    subprocess.run([ctx.settings.ffmpeg_bin, *args], check=True, capture_output=True, timeout=None)
    fp = fingerprint.of_file(dest)
    key = ctx.store.put_derived(dest, derived_key(kind, source_hex, fp.blake3_hex, KINDS[kind][0]))
    return _Made(fp, key)


def _save(session: Session, row: DerivedMedia) -> None:
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # made meanwhile by a duplicate delivery of the task: theirs stands
        session.rollback()


def derived_of(session: Session, recording_id: int) -> dict[str, DerivedMedia]:
    return {d.kind: d for d in session.scalars(select(DerivedMedia).where(DerivedMedia.recording_id == recording_id))}


def _verified_copy(ctx: ServerContext, session: Session, rec: Any, folder: Path) -> Path:
    """The original's bytes, each block checked as it is read, in a file ffmpeg reads: ffmpeg never sees
    bytes that were not verified (raises CopyDamaged, after recording the damage, when they are not)."""
    src = reads.original(ctx, session, rec, "derivation")
    dest = folder / ("original" + Path(rec.original_name).suffix.lower()[:16])
    with open(dest, "wb") as out:
        for block in reads.chunks(ctx, src, "derivation"):
            out.write(block)
    return dest


def derive_recording(ctx: ServerContext, recording_id: int) -> dict[str, str]:
    """Make the thumbnail and, when needed, the proxy of a recording. Idempotent.

    Nothing is made from a damaged copy: the derivation stops, the damage is recorded, and a repair
    (a fresh upload of the same bytes) queues the derivation again.
    """
    from evidence_server.recordings.models import Recording

    probe_recording(ctx, recording_id)  # idempotent: the decision needs the codecs
    with ctx.sessionmaker() as session:
        rec = session.get(Recording, recording_id)
        if rec is None:
            return {}
        have = derived_of(session, recording_id)
        suffix = "." + rec.original_name.rsplit(".", 1)[-1].lower() if "." in rec.original_name else ""
        todo = plan(suffix, rec.probe if rec.probe_state == "done" else None, rec.duration_s)
        source_hex = rec.blake3.split(":", 1)[1]
        states: dict[str, str] = {kind: have[kind].state for kind in todo if kind in have}
        todo = {kind: what for kind, what in todo.items() if kind not in have}
        if not todo:
            return states
        assert ctx.settings.data_dir is not None
        work = ctx.settings.data_dir / "derive-tmp"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            src = ""
            if any(what["make"] for what in todo.values()):
                try:
                    src = str(_verified_copy(ctx, session, rec, Path(tmp)))
                except (CopyDamaged, MapUntrusted) as exc:
                    log.error("nothing derived from recording %s: %s", rec.id, exc)
                    return {**states, **{kind: "damaged" for kind in todo}}
            version = None
            for kind, what in todo.items():
                row = DerivedMedia(recording_id=rec.id, kind=kind, source_blake3=rec.blake3, state="not_needed")
                if what["make"]:
                    version = version or _ffmpeg_version(ctx.settings.ffmpeg_bin)
                    dest = Path(tmp) / f"{kind}{KINDS[kind][0]}"
                    args = (
                        thumbnail_args(src, dest, what["at_s"])
                        if kind == "thumbnail"
                        else proxy_args(src, dest, what["audio_only"])
                    )
                    row.params = {"ffmpeg": version, "args": [a if a != src else "<original>" for a in args[:-1]]}
                    try:
                        made = _run_ffmpeg(ctx, args, dest, kind, source_hex)
                    except (subprocess.CalledProcessError, OSError) as exc:
                        stderr = getattr(exc, "stderr", b"") or b""
                        row.state, row.error = "failed", (stderr.decode("utf-8", "replace") or str(exc))[-2000:]
                        log.warning("could not make the %s of recording %s: %s", kind, rec.id, row.error)
                    else:
                        row.state, row.storage_key, row.media_type = "done", made.key, KINDS[kind][1]
                        row.blake3, row.sha256, row.size = made.fp.blake3, made.fp.sha256, made.fp.size
                _save(session, row)
                states[kind] = row.state
        return states


def thumbnails_made(session: Session, ids: list[int]) -> set[int]:
    """The recordings among ``ids`` whose thumbnail is made (the others show a placeholder)."""
    if not ids:
        return set()
    q = select(DerivedMedia.recording_id).where(
        DerivedMedia.recording_id.in_(ids), DerivedMedia.kind == "thumbnail", DerivedMedia.state == "done"
    )
    return set(session.scalars(q))


def never_derived(session: Session, ids: list[int]) -> list[int]:
    """The recordings among ``ids`` that no derivation was ever started for (ingested before it existed)."""
    if not ids:
        return []
    have = set(session.scalars(select(DerivedMedia.recording_id).where(DerivedMedia.recording_id.in_(ids))))
    return [rid for rid in ids if rid not in have]
