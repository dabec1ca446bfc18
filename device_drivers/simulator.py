"""A recorder volume with real video, made by ffmpeg: for tests, demos and benchmarks.

The volume ``<out_dir>/<label>`` holds ``DCIM/<YYYYMMDD>/<serial>_<officer_no>_<YYYYMMDDHHMMSS>_<seq>.MP4``
(device local time, Asia/Shanghai), fixed-length segments with consecutive start times, the MP4
``creation_time`` set to the segment start (UTC), the container encoder tag set to the family's
firmware string, and each file's mtime at its segment's end. Variants: a gap, an edited segment,
a half-written last segment, extra non-video files, and large files for benchmarks.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from device_drivers.mp4tags import set_encoder_tag
from device_drivers.names import DEVICE_TZ, format_name, to_device_utc

#: What the simulated recorder's firmware writes as the container encoder tag.
DEVICE_ENCODERS = {"h264": "ZFY-SIM DSJ H.264 V1.0", "h265": "ZFY-SIM DSJ H.265 V1.0"}
_CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "h265": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1"],
}
_X265_LOG = "log-level=error"
_EDIT_TRIM_SECONDS = 0.5


class SimulatorError(RuntimeError):
    """ffmpeg is missing or failed, or the options make no sense."""


@dataclass(frozen=True)
class SimulatedSegment:
    seq: int
    path: str | None  # relative path on the volume; None for the gap, which was never written
    started_at: datetime  # UTC
    ended_at: datetime  # UTC, nominal (start + segment length)
    gap: bool = False
    edited: bool = False
    half_written: bool = False
    encoder: str | None = None  # container encoder tag written (None for the gap)


@dataclass
class SimulatedVolume:
    root: Path
    label: str
    serial: str
    officer_no: str
    officer_name: str | None
    codec: str
    segments: list[SimulatedSegment] = field(default_factory=list)  # by sequence, gap included
    extra_files: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[SimulatedSegment]:
        return [s for s in self.segments if not s.gap]

    @property
    def gaps(self) -> list[SimulatedSegment]:
        return [s for s in self.segments if s.gap]

    @property
    def edited(self) -> list[SimulatedSegment]:
        return [s for s in self.segments if s.edited]

    @property
    def half_written(self) -> list[SimulatedSegment]:
        return [s for s in self.segments if s.half_written]

    def file(self, segment: SimulatedSegment) -> Path:
        """Absolute path of a written segment."""
        if segment.path is None:
            raise ValueError(f"segment {segment.seq} is the gap; it has no file")
        return self.root / segment.path


def _ffmpeg(*args: str) -> None:
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SimulatorError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _codec_args(codec: str, extra_x265: str = "") -> list[str]:
    args = list(_CODECS[codec])
    if codec == "h265":
        args += ["-x265-params", _X265_LOG + extra_x265]
    return args


def _sources(resolution: str, fps: int, seconds: float, tone_hz: int, noise: bool = False) -> list[str]:
    video = f"testsrc2=size={resolution}:rate={fps}:duration={seconds:.3f}"
    if noise:  # incompressible frames: large files from a short encode
        video += ",noise=alls=100:allf=t"
    audio = f"sine=frequency={tone_hz}:sample_rate=16000:duration={seconds:.3f}"
    return ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio]


def _device_tags(started_at: datetime, encoder: str, comment: str) -> list[str]:
    """Muxer options making the file look written by the recorder, not by libavformat."""
    flags = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
    metadata = {"creation_time": _iso(started_at), "comment": comment}
    return [*flags, *_metadata_args(metadata), "-metadata:s:v", f"encoder={encoder}"]


def _metadata_args(metadata: dict[str, str]) -> list[str]:
    return [arg for key, value in metadata.items() for arg in ("-metadata", f"{key}={value}")]


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_options(
    codec: str, resolution: str, segments: int, segment_seconds: float, gap_at: int | None, edited: int | None
) -> None:
    if codec not in _CODECS:
        raise SimulatorError(f"codec must be one of {sorted(_CODECS)}, not {codec!r}")
    if not re.fullmatch(r"\d{2,5}x\d{2,5}", resolution):
        raise SimulatorError(f"resolution must look like 320x240, not {resolution!r}")
    if segments < 1 or segment_seconds <= 0:
        raise SimulatorError("need at least one segment of positive length")
    for name, seq in (("gap_at", gap_at), ("edited", edited)):
        if seq is not None and not 1 <= seq <= segments:
            raise SimulatorError(f"{name} must be a segment number between 1 and {segments}")
    if gap_at is not None and gap_at == edited:
        raise SimulatorError("the gap cannot also be the edited segment")
    if shutil.which("ffmpeg") is None:
        raise SimulatorError("ffmpeg is not installed (apt-get install ffmpeg)")


def simulate_device(
    out_dir: Path,
    *,
    serial: str = "DSJ0001",
    officer_no: str = "102345",
    officer_name: str | None = "测试警员",
    label: str | None = None,
    start: datetime | None = None,
    segments: int = 3,
    segment_seconds: float = 2.0,
    codec: str = "h264",
    resolution: str = "320x240",
    fps: int = 15,
    gap_at: int | None = None,
    edited: int | None = None,
    edited_encoder: str | None = None,
    half_written: bool = False,
    extra_files: bool = False,
    big_bytes: int | None = None,
    encoder: str | None = None,
    tz: str = DEVICE_TZ,
) -> SimulatedVolume:
    """Write a recorder volume ``out_dir/<label>`` (label default ``ZFY_<serial>``) and describe it.

    ``segments`` counts sequence numbers 1..segments; ``gap_at`` leaves one out, file and time slot.
    ``start`` naive means device local time; default one minute before the recording would end now.
    ``edited`` re-encodes that segment with ffmpeg (container tag ``Lavf..``, or ``edited_encoder``),
    0.5 s shorter, same name and mtime. ``half_written`` cuts the last written file to half its
    bytes with mtime now. ``big_bytes`` makes every segment at least that large by stream-copy
    looping a 1 s incompressible clip; its length then is whole seconds, not ``segment_seconds``.
    """
    _check_options(codec, resolution, segments, segment_seconds, gap_at, edited)
    label = label or f"ZFY_{serial}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Work next to the volume (same filesystem, hidden from watchers), then move finished files in.
    tmp = Path(tempfile.mkdtemp(prefix=".custodia-sim-", dir=out_dir))
    volume = SimulatedVolume(out_dir / label, label, serial, officer_no, officer_name, codec)
    volume.root.mkdir(parents=True, exist_ok=True)
    plan = _Plan(
        serial=serial,
        officer_no=officer_no,
        codec=codec,
        resolution=resolution,
        fps=fps,
        seconds=segment_seconds,
        encoder=encoder or DEVICE_ENCODERS[codec],
        comment=" ".join(x for x in (serial, officer_no, officer_name) if x),
        edited=edited,
        edited_encoder=edited_encoder,
        tz=tz,
    )
    try:
        if big_bytes:
            plan.seed = _encode_seed(tmp / "seed.mp4", codec, resolution, fps)
            plan.loops = max(1, math.ceil(big_bytes / plan.seed.stat().st_size))
            plan.seconds = float(plan.loops)
        length = timedelta(seconds=plan.seconds)
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0) - length * segments - timedelta(minutes=1)
        first = to_device_utc(start, tz)
        for seq in range(1, segments + 1):
            began = first + length * (seq - 1)
            if seq == gap_at:
                volume.segments.append(SimulatedSegment(seq, None, began, began + length, gap=True))
            else:
                volume.segments.append(_write_segment(plan, volume, tmp, seq, began))
        if half_written:
            _half_write(volume)
        if extra_files:
            _write_extra_files(volume)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return volume


@dataclass
class _Plan:
    """How every segment of one simulated volume is made."""

    serial: str
    officer_no: str
    codec: str
    resolution: str
    fps: int
    seconds: float
    encoder: str
    comment: str
    edited: int | None
    edited_encoder: str | None
    tz: str
    seed: Path | None = None  # a 1 s incompressible clip looped into large segments
    loops: int = 0


def _write_segment(plan: _Plan, volume: SimulatedVolume, tmp: Path, seq: int, began: datetime) -> SimulatedSegment:
    """Encode one segment as the recorder would (tags, name, mtime), edited if asked, into the volume."""
    length = timedelta(seconds=plan.seconds)
    day, name = format_name(plan.serial, plan.officer_no, began, seq, tz=plan.tz)
    work = tmp / name
    tags = _device_tags(began, plan.encoder, plan.comment)
    if plan.seed is not None:
        _ffmpeg("-stream_loop", str(plan.loops - 1), "-i", str(plan.seed), "-c", "copy", *tags, str(work))
    else:
        sources = _sources(plan.resolution, plan.fps, plan.seconds, 300 + 40 * seq)
        _ffmpeg(*sources, *_codec_args(plan.codec), "-c:a", "aac", "-b:a", "32k", *tags, str(work))
    set_encoder_tag(work, plan.encoder)
    written_encoder = plan.encoder
    if seq == plan.edited:
        written_encoder = _edit(work, began, plan.codec, plan.seconds, plan.edited_encoder, copy=plan.seed is not None)
    target = volume.root / "DCIM" / day / name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, target)
    end_ns = int((began + length).timestamp() * 1e9)
    os.utime(target, ns=(end_ns, end_ns))
    rel = target.relative_to(volume.root).as_posix()
    return SimulatedSegment(seq, rel, began, began + length, edited=seq == plan.edited, encoder=written_encoder)


def _encode_seed(path: Path, codec: str, resolution: str, fps: int) -> Path:
    """One second of incompressible video (lossless-ish noise) to loop into large segments."""
    quality = ["-qp", "0"] if codec == "h264" else []
    sources = _sources(resolution, fps, 1.0, 997, noise=True)
    _ffmpeg(*sources, *_codec_args(codec, ":qp=0"), *quality, "-c:a", "aac", "-b:a", "32k", str(path))
    return path


def _edit(path: Path, began: datetime, codec: str, seconds: float, edited_encoder: str | None, copy: bool) -> str:
    """Re-encode ``path`` in place as an editing tool would: shorter, another encoder tag, same
    creation_time (a careful tamperer keeps it). Returns the encoder tag now in the file."""
    work = path.with_name("edited-" + path.name)
    cut = max(seconds - _EDIT_TRIM_SECONDS, seconds / 2)
    codec_args = ["-c", "copy"] if copy else [*_codec_args(codec), "-c:a", "aac", "-b:a", "48k"]
    bitexact = ["-fflags", "+bitexact"] if edited_encoder else []
    keep = _metadata_args({"creation_time": _iso(began)})
    _ffmpeg("-i", str(path), "-t", f"{cut:.3f}", *codec_args, *bitexact, *keep, str(work))
    if edited_encoder:
        set_encoder_tag(work, edited_encoder)
    os.replace(work, path)
    return edited_encoder or _lavf_version()


def _lavf_version() -> str:
    """The ``Lavf..`` tag this host's ffmpeg writes, e.g. ``Lavf59.27.100``."""
    out = subprocess.run(["ffmpeg", "-hide_banner", "-version"], capture_output=True, text=True, check=False)
    m = re.search(r"libavformat\s+(\d+)\.\s*(\d+)\.\s*(\d+)", out.stdout)
    return f"Lavf{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else "Lavf"


def _half_write(volume: SimulatedVolume) -> None:
    """Cut the last written segment to half its bytes, mtime now: a file the device is still writing."""
    last = volume.written[-1]
    path = volume.file(last)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    now = time.time_ns()
    os.utime(path, ns=(now, now))
    volume.segments[volume.segments.index(last)] = dataclasses.replace(last, half_written=True)


def _write_extra_files(volume: SimulatedVolume) -> None:
    """Files recorders keep next to their footage that are not recordings."""
    first = volume.written[0] if volume.written else volume.segments[0]
    day_dir = (volume.root / first.path).parent if first.path else volume.root / "DCIM"
    log_lines = [f"{s.started_at.isoformat()} REC seq={s.seq:04d}\n" for s in volume.written]
    extras = {
        volume.root / "LOG" / "DEVICE.LOG": "".join(log_lines).encode(),
        day_dir / "INDEX.DAT": bytes(range(256)) * 4,
    }
    for path, data in extras.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        volume.extra_files.append(path.relative_to(volume.root).as_posix())


def main(argv: list[str] | None = None) -> int:
    """``custodia simulate-device``: write a simulated recorder volume and print what was written."""
    p = argparse.ArgumentParser(prog="custodia simulate-device", description=__doc__.split("\n")[0])
    p.add_argument("out_dir", type=Path, help="mount root; the volume is created as OUT_DIR/LABEL")
    p.add_argument("--serial", default="DSJ0001")
    p.add_argument("--officer-no", default="102345")
    p.add_argument("--officer-name", default="测试警员")
    p.add_argument("--label", help="volume label (default ZFY_<serial>)")
    p.add_argument("--start", type=datetime.fromisoformat, help="ISO 8601; without offset: device local time")
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--segment-seconds", type=float, default=2.0)
    p.add_argument("--codec", choices=sorted(_CODECS), default="h264")
    p.add_argument("--resolution", default="320x240")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--gap-at", type=int, metavar="SEQ", help="leave this segment out (file and time)")
    p.add_argument("--edited", type=int, metavar="SEQ", help="re-encode this segment with another tool")
    p.add_argument("--edited-encoder", help="encoder tag of the edited segment (default: ffmpeg's Lavf..)")
    p.add_argument("--half-written", action="store_true", help="cut the last segment to half its bytes")
    p.add_argument("--extra-files", action="store_true", help="add non-video files (log, index)")
    p.add_argument("--big-bytes", type=int, metavar="N", help="make each segment at least N bytes")
    p.add_argument("--encoder", help=f"device encoder tag (default {DEVICE_ENCODERS['h264']!r} / h265)")
    args = p.parse_args(argv)
    try:
        options = {k: v for k, v in vars(args).items() if k != "out_dir"}
        vol = simulate_device(args.out_dir, **options)
    except SimulatorError as exc:
        print(f"simulate-device: {exc}", file=sys.stderr)
        return 2
    print(f"volume {vol.root} (label {vol.label}, serial {vol.serial}, officer {vol.officer_no})")
    for s in vol.segments:
        flags = [f for f, on in (("GAP", s.gap), ("EDITED", s.edited), ("HALF-WRITTEN", s.half_written)) if on]
        size = "-" if s.path is None else str(vol.file(s).stat().st_size)
        where = s.path or "(not written)"
        when = f"{s.started_at:%Y-%m-%dT%H:%M:%SZ}"
        print(f"{s.seq:04d} {when} {size:>12} {where} {s.encoder or ''} {' '.join(flags)}".rstrip())
    for extra in vol.extra_files:
        print(f"extra {extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
