"""Decode and encode video files with PyAV (its wheels carry FFmpeg): frames are streamed, never stored.

mp4/mov/m4v, webm/mkv, avi and animated GIF (VIDEO_FORMATS); VideoLimits(formats=None) lets
FFmpeg read any container it knows. Nothing else is ever opened: FFmpeg may not follow a file's
references to other files or the network (an "ffconcat" list, an SDP session), and limits are
counted on the decoded frames, not on what the header says. Memory does not grow with the length
of a video: iter_frames is a generator and VideoWriter encodes each frame as it comes.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from core.faces.images import FORMATS as PHOTO_FORMATS

MAX_BYTES = 500 * 1024 * 1024
MAX_SECONDS = 10 * 60.0
MAX_PIXELS = 3840 * 2160
# Decoded frames may come at most this fast on average: max_seconds x MAX_FPS frames in all
# (a header's rate and length are not trusted: joined MPEG-TS segments restart their clocks).
MAX_FPS = 60.0
# Decoded pixels per second of the length limit: as much as 1080p at 30 frames/s (a 10-minute 4K
# video stops at 2.5 minutes; a 4K GIF of 3,000 frames at 60 s is refused at frame 450).
PIXEL_RATE = 1920 * 1080 * 30

# The containers an upload may be, as FFmpeg's demuxers are named: what the app says it reads. Any
# other (concat lists, SDP sessions, HLS playlists, image sequences...) is refused before its header
# is read, so it never opens another file or a socket. "mov" is mp4/mov/m4v, "matroska" webm/mkv.
VIDEO_FORMATS = ("mov", "matroska", "avi", "gif")
FORMATS_SHOWN = "mp4, mov, m4v, webm, mkv, avi or animated GIF"

# Video files are detected on every 3rd frame by default and the faces followed in between:
# `python -m core bench --video-only` measured this against every frame (docs/video-and-live.md).
DEFAULT_EVERY = 3

# FFmpeg also opens single still images as one-frame "videos"; those belong to `predict`.
STILL_IMAGE_FORMATS = ("image2", "_pipe")


class VideoError(ValueError):
    """An input that is not a usable video; the message is meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame size, frame rate, length (seconds; None when unknown)."""

    path: str
    width: int
    height: int
    fps: float
    duration: float | None
    frame_count: int | None
    codec: str
    container: str


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its number from 0, its time in seconds, and the picture."""

    index: int
    time: float
    image: Image.Image
    pts: int | None = None  # its presentation timestamp in the stream (read_frame seeks to it)


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be: file size, length, frame size, decoded frames and pixels, container.

    formats: FFmpeg demuxer names allowed (None: any FFmpeg reads; still only the file itself)."""

    max_bytes: int = MAX_BYTES
    max_seconds: float = MAX_SECONDS
    max_pixels: int = MAX_PIXELS
    max_fps: float = MAX_FPS
    pixel_rate: float = PIXEL_RATE
    formats: tuple[str, ...] | None = VIDEO_FORMATS

    @property
    def max_frames(self) -> int:
        """Decoded frames allowed: max_seconds at max_fps."""
        return math.ceil(self.max_seconds * self.max_fps)

    @property
    def max_total_pixels(self) -> float:
        """Decoded pixels allowed, all frames together: max_seconds at pixel_rate."""
        return self.max_seconds * self.pixel_rate


DEFAULT_LIMITS = VideoLimits()


VideoSource = str | Path | bytes  # a file path, or an upload's bytes (kept in memory)


def _open(source: VideoSource, limits: VideoLimits) -> tuple[av.container.InputContainer, VideoInfo]:
    target: str | io.BytesIO
    if isinstance(source, bytes):
        label, size, target = "upload", len(source), io.BytesIO(source)
    else:
        label, file = str(source), Path(source)
        if not file.is_file():
            raise VideoError(f"{label}: no such file")
        # "file:" so that a name such as "concat:a|b" or "subfile,..." is only ever a file name.
        size, target = file.stat().st_size, f"file:{file.resolve()}"
    if size == 0:
        raise VideoError(f"{label}: file is empty")
    if size > limits.max_bytes:
        raise VideoError(f"{label}: file is larger than {limits.max_bytes // 2**20} MB")
    try:
        container = av.open(target, mode="r", container_options=_container_options(source, limits))
    except av.error.ArgumentError as err:  # FFmpeg recognised the format, and it is not on the list
        raise VideoError(_refused(label, source, limits)) from err
    except (av.FFmpegError, UnicodeDecodeError) as err:
        if _still_image(source):
            raise VideoError(f"{label}: a still image, not a video (use `predict` for photos)") from err
        raise VideoError(f"{label}: not a readable video ({err.__class__.__name__})") from err
    try:
        info = _info(label, container)
        _check(label, info, limits)
    except BaseException:
        container.close()
        raise
    return container, info


def _container_options(source: VideoSource, limits: VideoLimits) -> dict[str, str]:
    """FFmpeg's own allow-lists: the demuxers of `limits.formats`, and no protocol but the file
    itself (an upload in memory is read through PyAV, which no protocol list restricts), so a
    demuxer that follows references inside the file (other files, URLs) cannot open them."""
    options = {"protocol_whitelist": "" if isinstance(source, bytes) else "file"}
    if limits.formats is not None:
        options["format_whitelist"] = ",".join(limits.formats)
    return options


def _refused(label: str, source: VideoSource, limits: VideoLimits) -> str:
    if _still_image(source):
        return f"{label}: a still image, not a video (use `predict` for photos)"
    if limits.formats is None:
        return f"{label}: not a readable video (it refers to other files or to the network)"
    return f"{label}: not a video format this app opens (it opens {FORMATS_SHOWN})"


def _still_image(source: VideoSource) -> bool:
    """Whether Pillow reads the file as one picture (it only reads the header here)."""
    try:
        file = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(file, formats=PHOTO_FORMATS) as image:
            return not getattr(image, "is_animated", False)
    except Exception:  # noqa: BLE001 - anything Pillow does not read is not a still image
        return False


def _info(label: str, container: av.container.InputContainer) -> VideoInfo:
    if not container.streams.video:
        raise VideoError(f"{label}: no video stream in this file")
    if any(part in container.format.name for part in STILL_IMAGE_FORMATS):
        raise VideoError(f"{label}: a still image, not a video (use `predict` for photos)")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 25.0
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    frames = stream.frames or (round(duration * fps) if duration else None)
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise VideoError(f"{label}: the video stream has no frame size (damaged file?)")
    return VideoInfo(
        label, width, height, fps, duration, frames, stream.codec_context.name, container.format.name
    )


def _check(label: str, info: VideoInfo, limits: VideoLimits) -> None:
    """The header's size and length (decoding checks again what actually comes: _Budget)."""
    if info.width * info.height > limits.max_pixels:
        raise VideoError(
            f"{label}: frames are {info.width}x{info.height}; the limit is {limits.max_pixels / 1e6:.1f} megapixels"
        )
    if info.duration is not None and info.duration > limits.max_seconds:
        raise VideoError(
            f"{label}: video is {info.duration:.0f} s long; the limit is {limits.max_seconds:.0f} s"
        )
    if info.frame_count is not None and info.frame_count > limits.max_frames:
        raise VideoError(_too_many_frames(label, limits))


def _too_many_frames(label: str, limits: VideoLimits) -> str:
    return (
        f"{label}: video has more than {limits.max_frames} frames; the limit is "
        f"{limits.max_seconds:.0f} s at {limits.max_fps:.0f} frames/s"
    )


class _Budget:
    """Counts what decoding actually gives (frames, pixels, time) and stops at the limits with a
    VideoError: a header can say anything."""

    def __init__(self, info: VideoInfo, limits: VideoLimits) -> None:
        self.info, self.limits = info, limits
        self.frames = 0
        self.pixels = 0

    def take(self, frame: av.VideoFrame) -> None:
        label, limits = self.info.path, self.limits
        self.frames += 1
        if self.frames > limits.max_frames:
            raise VideoError(_too_many_frames(label, limits))
        if frame.width * frame.height > limits.max_pixels:
            raise VideoError(
                f"{label}: frame {self.frames - 1} is {frame.width}x{frame.height}; the limit is "
                f"{limits.max_pixels / 1e6:.1f} megapixels"
            )
        self.pixels += frame.width * frame.height
        if self.pixels > limits.max_total_pixels:
            raise VideoError(
                f"{label}: too much video to decode: {self.frames} frames of {frame.width}x{frame.height} "
                f"pass the limit of {limits.max_total_pixels / 1e9:.1f} gigapixels "
                f"({limits.max_seconds:.0f} s of 1080p at 30 frames/s)"
            )


def _decode(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.VideoFrame]:
    """The stream's frames as FFmpeg decodes them: the one place decoding happens."""
    yield from container.decode(stream)


def _seconds(info: VideoInfo, frame: av.VideoFrame, index: int) -> float:
    # AVI keeps no presentation times: FFmpeg hands out decode-order ones there.
    if info.container == "avi" or frame.time is None:
        return index / info.fps
    return float(frame.time)


def _opened_stream(container: av.container.InputContainer) -> av.VideoStream:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame-parallel decoding; a few frames of delay, all still come
    return stream


def probe(path: VideoSource, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """The file's VideoInfo, or VideoError (one readable line) if it is not a usable video."""
    container, info = _open(path, limits)
    container.close()
    return info


def iter_frames(path: VideoSource, limits: VideoLimits = DEFAULT_LIMITS) -> Iterator[VideoFrame]:
    """Every frame of the first video stream as RGB, one at a time.

    Raises VideoError for files that are not videos, are too large or too long (also when the
    length was not in the header and only shows while decoding: frames, pixels and time are counted
    as they come), or break while decoding.
    """
    container, info = _open(path, limits)
    with container:
        stream = _opened_stream(container)
        budget = _Budget(info, limits)
        index = 0
        try:
            for frame in _decode(container, stream):
                budget.take(frame)
                seconds = _seconds(info, frame, index)
                if seconds > limits.max_seconds:
                    raise VideoError(
                        f"{info.path}: video is longer than the limit of {limits.max_seconds:.0f} s"
                    )
                yield VideoFrame(index, seconds, frame.to_image(), frame.pts)
                index += 1
        except av.FFmpegError as err:
            raise VideoError(
                f"{info.path}: video breaks off at frame {index} ({err.__class__.__name__})"
            ) from err
    if index == 0:
        raise VideoError(f"{info.path}: no frame could be decoded")


class FramePositions:
    """Each decoded frame's presentation timestamp, in frame order, so read_frame can seek to one.

    Usable only when the timestamps all exist and rise (not in AVI's decode order, nor in joined
    segments whose clocks restart); otherwise read_frame decodes from the start.
    """

    def __init__(self) -> None:
        self._pts = array("q")
        self.usable = True

    def add(self, pts: int | None) -> None:
        if pts is None or (self._pts and pts <= self._pts[-1]):
            self.usable = False
        self._pts.append(-1 if pts is None else pts)

    def pts(self, index: int) -> int | None:
        """Frame `index`'s timestamp, or None when seeking cannot be trusted to find it."""
        return self._pts[index] if self.usable and 0 <= index < len(self._pts) else None

    def __len__(self) -> int:
        return len(self._pts)


def read_frame(
    path: VideoSource, index: int, limits: VideoLimits = DEFAULT_LIMITS, pts: int | None = None
) -> VideoFrame:
    """Frame number `index` (from 0). With its timestamp `pts` (FramePositions), seeks to the
    keyframe before it and decodes forward from there; otherwise (or if the seek misses) decodes
    from the start. Either way the same picture; only the wanted frame becomes an image."""
    if pts is not None:
        found = _seek_frame(path, index, pts, limits)
        if found is not None:
            return found
    container, info = _open(path, limits)
    with container:
        budget = _Budget(info, limits)
        try:
            for at, frame in enumerate(_decode(container, _opened_stream(container))):
                budget.take(frame)
                if at == index:
                    return VideoFrame(index, _seconds(info, frame, index), frame.to_image(), frame.pts)
        except av.FFmpegError as err:
            raise VideoError(f"{info.path}: video breaks off before frame {index} ({err})") from err
    raise VideoError(f"{info.path}: no frame {index}")


def _seek_frame(path: VideoSource, index: int, pts: int, limits: VideoLimits) -> VideoFrame | None:
    """The frame with timestamp `pts`, decoded from the keyframe before it; None if not found so."""
    container, info = _open(path, limits)
    with container:
        stream = _opened_stream(container)
        budget = _Budget(info, limits)
        try:
            container.seek(pts, stream=stream, backward=True, any_frame=False)
            for frame in _decode(container, stream):
                budget.take(frame)
                if frame.pts == pts:
                    return VideoFrame(index, _seconds(info, frame, index), frame.to_image(), frame.pts)
                if frame.pts is None or frame.pts > pts:
                    return None
        except av.FFmpegError:
            return None
    return None


class VideoWriter:
    """Encodes RGB frames one at a time into a video file (H.264 in mp4/mov/mkv, VP9 in webm) or,
    given a binary file object, into an H.264 mp4 in memory.

    Use as a context manager; the file is complete when the block ends.
    """

    CODECS = {".webm": "libvpx-vp9", ".gif": "gif"}

    def __init__(self, target: str | Path | BinaryIO, fps: float, width: int, height: int) -> None:
        in_memory = not isinstance(target, (str, Path))
        suffix = Path(target).suffix.lower() if isinstance(target, (str, Path)) else ".mp4"
        codec = self.CODECS.get(suffix, "libx264")
        try:
            # In memory: a fragmented mp4, which needs no second pass over the file to put its index first.
            self._container = (
                av.open(target, mode="w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"})
                if in_memory
                else av.open(str(target), mode="w")
            )
        except (av.FFmpegError, ValueError) as err:
            raise VideoError(f"{target}: cannot write a video here ({err})") from err
        rate = Fraction(fps).limit_denominator(1001)
        stream = self._container.add_stream(codec, rate=rate)
        if not isinstance(stream, av.VideoStream):
            raise VideoError(f"{target}: {codec} is not a video codec")
        self._stream: av.VideoStream = stream
        if width < 1 or height < 1:
            raise VideoError(f"{target}: cannot write {width}x{height} frames")
        # H.264 and VP9 in yuv420p need even sides: cropped by one pixel, or a side of 1 padded to 2.
        self._stream.width = _even(width) if codec != "gif" else width
        self._stream.height = _even(height) if codec != "gif" else height
        self._stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if codec == "libx264":
            self._stream.options = {"preset": "veryfast", "crf": "23"}
        self.frames = 0

    def write(self, image: Image.Image | np.ndarray) -> None:
        """Encode one RGB frame (cropped or padded to even sides when the codec needs it)."""
        array = np.asarray(image)[: self._stream.height, : self._stream.width]
        short = (self._stream.height - array.shape[0], self._stream.width - array.shape[1])
        if short[0] > 0 or short[1] > 0:
            array = np.pad(array, ((0, max(0, short[0])), (0, max(0, short[1])), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _even(side: int) -> int:
    """The even side nearest below `side`, and 2 for a side of 1."""
    return max(2, side - side % 2)
