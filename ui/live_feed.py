"""Feed a LiveProcessor as a camera would, through streamlit-webrtc's own frame-dropping track.

Frames are produced at a fixed rate in real time by an aiortc track and pulled through
streamlit_webrtc.process.AsyncVideoProcessTrack, the track the Live page's stream runs on,
so what is measured (frames analysed, frames dropped, latency) is what a browser's stream
gets. Used by the live benchmark and its tests. In ui/, not core/: streamlit-webrtc imports
Streamlit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack
from PIL import Image
from skimage import data as skimage_data
from streamlit_webrtc.models import CallbackAttachableProcessor
from streamlit_webrtc.process import AsyncVideoProcessTrack

from core.live import LiveProcessor


def portrait_frames(fps: int = 30, width: int = 640, height: int = 480) -> Iterator[np.ndarray]:
    """Endless RGB frames of the bundled portrait drifting back and forth on grey: one face."""
    side = min(400, height - 40)
    portrait = Image.fromarray(skimage_data.astronaut()).resize((side, side))
    background = Image.new("RGB", (width, height), (128, 128, 128))
    index = 0
    while True:
        frame = background.copy()
        frame.paste(portrait, (round((width - side) / 2 + 100 * np.sin(index / fps)), 40))
        yield np.asarray(frame)
        index += 1


class PacedTrack(MediaStreamTrack):
    """A video track that gives the next frame when it is due, `fps` per second in real time."""

    kind = "video"

    def __init__(self, frames: Iterator[np.ndarray], fps: int) -> None:
        super().__init__()
        self.frames = frames
        self.fps = fps
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.sent / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(next(self.frames), format="rgb24")
        frame.pts, frame.time_base = self.sent, Fraction(1, self.fps)
        self.sent += 1
        return frame


@dataclass(frozen=True)
class FeedResult:
    """What a paced feed did: frames sent and analysed, seconds, and the annotated frames returned."""

    sent: int
    analysed: int
    dropped: int
    seconds: float
    returned: list[np.ndarray]  # the last few frames the track returned, as RGB arrays

    @property
    def analysed_per_s(self) -> float:
        return self.analysed / self.seconds if self.seconds else 0.0


def feed(processor: LiveProcessor, seconds: float, fps: int = 30, keep: int = 5) -> FeedResult:
    """Stream `seconds` of portrait_frames at `fps` through the processor as the Live page does."""

    async def run() -> FeedResult:
        source = PacedTrack(portrait_frames(fps), fps)
        track = AsyncVideoProcessTrack(
            source, CallbackAttachableProcessor(None, processor.recv_queued, processor.close)
        )
        returned: list[np.ndarray] = []
        started = time.monotonic()
        try:
            while source.sent < round(seconds * fps):
                out = await track.recv()
                returned = [*returned[-(keep - 1) :], out.to_ndarray(format="rgb24")] if keep else []
        finally:
            track.stop()  # ends the worker thread after the analysis in progress
        elapsed = time.monotonic() - started
        status = processor.status()
        return FeedResult(source.sent, status.analysed, status.dropped, elapsed, returned)

    return asyncio.run(run())
