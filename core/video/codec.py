"""Decode and encode video files with PyAV (its wheels carry FFmpeg): frames are streamed, never stored.

mp4/H.264, webm/VP8-VP9, mov, avi, animated GIF and whatever else FFmpeg reads. Memory does
not grow with the length of a video: iter_frames is a generator and VideoWriter encodes
each frame as it comes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

MAX_BYTES = 500 * 1024 * 1024
MAX_SECONDS = 10 * 60.0
MAX_PIXELS = 3840 * 2160

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


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be: file size, length and frame size."""

    max_bytes: int = MAX_BYTES
    max_seconds: float = MAX_SECONDS
    max_pixels: int = MAX_PIXELS


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
        size, target = file.stat().st_size, str(file)
    if size == 0:
        raise VideoError(f"{label}: file is empty")
    if size > limits.max_bytes:
        raise VideoError(f"{label}: file is larger than {limits.max_bytes // 2**20} MB")
    try:
        container = av.open(target, mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoError(f"{label}: not a readable video ({err.__class__.__name__})") from err
    try:
        info = _info(label, container)
        _check(label, info, limits)
    except BaseException:
        container.close()
        raise
    return container, info


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
    if info.width * info.height > limits.max_pixels:
        raise VideoError(
            f"{label}: frames are {info.width}x{info.height}; the limit is {limits.max_pixels / 1e6:.1f} megapixels"
        )
    if info.duration is not None and info.duration > limits.max_seconds:
        raise VideoError(
            f"{label}: video is {info.duration:.0f} s long; the limit is {limits.max_seconds:.0f} s"
        )


def probe(path: VideoSource, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """The file's VideoInfo, or VideoError (one readable line) if it is not a usable video."""
    container, info = _open(path, limits)
    container.close()
    return info


def iter_frames(path: VideoSource, limits: VideoLimits = DEFAULT_LIMITS) -> Iterator[VideoFrame]:
    """Every frame of the first video stream as RGB, one at a time.

    Raises VideoError for files that are not videos, are too large or too long (also when the
    length was not in the header and only shows while decoding), or break while decoding.
    """
    container, info = _open(path, limits)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-parallel decoding; a few frames of delay, all still come
        # AVI keeps no presentation times: FFmpeg hands out decode-order ones there.
        by_index = info.container == "avi"
        index = 0
        try:
            for frame in container.decode(stream):
                seconds = index / info.fps if by_index or frame.time is None else float(frame.time)
                if seconds > limits.max_seconds:
                    raise VideoError(
                        f"{info.path}: video is longer than the limit of {limits.max_seconds:.0f} s"
                    )
                yield VideoFrame(index, seconds, frame.to_image())
                index += 1
        except av.FFmpegError as err:
            raise VideoError(
                f"{info.path}: video breaks off at frame {index} ({err.__class__.__name__})"
            ) from err
    if index == 0:
        raise VideoError(f"{info.path}: no frame could be decoded")


def read_frame(path: VideoSource, index: int, limits: VideoLimits = DEFAULT_LIMITS) -> VideoFrame:
    """Frame number `index` (from 0), decoded by streaming up to it (exact for every codec)."""
    for frame in iter_frames(path, limits):
        if frame.index == index:
            return frame
    raise VideoError(f"{'upload' if isinstance(path, bytes) else path}: no frame {index}")


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
        # H.264 in yuv420p needs even sides.
        self._stream.width = width - width % 2 if codec != "gif" else width
        self._stream.height = height - height % 2 if codec != "gif" else height
        self._stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if codec == "libx264":
            self._stream.options = {"preset": "veryfast", "crf": "23"}
        self.frames = 0

    def write(self, image: Image.Image | np.ndarray) -> None:
        """Encode one RGB frame (cropped to even sides when the codec needs it)."""
        array = np.asarray(image)[: self._stream.height, : self._stream.width]
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
