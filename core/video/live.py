"""The live camera: each frame through the one per-frame step (FrameAnalyzer), labelled, measured.

One LiveProcessor serves one stream. streamlit-webrtc calls it from its own thread
(async_processing, the default; streamlit_webrtc.process.AsyncMediaProcessTrack): the frames
that arrive while one is being analysed are collected, and when the analysis ends
recv_queued gets all of them, analyses only the newest and counts the others as dropped;
meanwhile the browser keeps receiving the last annotated frame. So a slow server analyses
fewer frames, never older ones. A frame given to process() while another call is
analysing is dropped too: it is passed back at once with the last labels drawn on it.

A stream that is refused (no live place free) or reaches its time limit gets one frame with a
notice, and then its connection is closed (the hang-up the page connects, streamlit-webrtc's
worker.stop): the server decodes, draws and encodes nothing more for it.

Frames are numbers only once analysed: the processor keeps the last `history_seconds` of
each track's probabilities for a chart, and running counts for the status line.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from PIL import Image

from core.faces.detection import FaceDetector
from core.faces.drawing import draw_labels
from core.models.registry import LoadedModel
from core.video.analysis import TRACK_MEMORY_SECONDS, FrameAnalyzer, half_torch_threads
from core.video.smoothing import DEFAULT_SMOOTHING
from core.video.timeline import FacePoint

HISTORY_SECONDS = 10.0  # the live chart's span
STREAM_FPS = 30  # frame numbers for the tracker are counted at this rate from the frame's time
RATE_WINDOW = 60  # frames/s and latency over the last this many analysed frames

BUSY = "Every live place on this server is taken: press Stop and try again in a minute."

Frame = np.ndarray | av.VideoFrame


def live_labels(points: list[FacePoint], models: list[str]) -> list[tuple[tuple[float, ...], str, bool]]:
    """(box, label, all models agree) per face: '#track' and every model's smoothed emotion, one per line."""
    labels: list[tuple[tuple[float, ...], str, bool]] = []
    for point in points:
        lines = [f"{name}: {emotion} {confidence:.0%}" for name in models
                 for emotion, confidence in [point.label(name)]]  # fmt: skip
        if lines:
            lines[0] = f"#{point.track} {lines[0]}"
        agree = len({point.label(name)[0] for name in models}) <= 1
        labels.append((point.box, "\n".join(lines) if lines else f"#{point.track}", agree))
    return labels


@dataclass
class TrackHistory:
    """The last seconds of one track: times, and per model the raw and smoothed probabilities."""

    times: deque[float] = field(default_factory=deque)
    raw: dict[str, deque[np.ndarray]] = field(default_factory=dict)
    smoothed: dict[str, deque[np.ndarray]] = field(default_factory=dict)

    def add(self, point: FacePoint) -> None:
        self.times.append(point.time)
        for name in point.smoothed:
            self.raw.setdefault(name, deque()).append(point.raw[name])
            self.smoothed.setdefault(name, deque()).append(point.smoothed[name])

    def forget_before(self, start: float) -> None:
        while self.times and self.times[0] < start:
            self.times.popleft()
            for values in (*self.raw.values(), *self.smoothed.values()):
                values.popleft()


@dataclass(frozen=True)
class LiveStatus:
    """What the page shows: counts, speed, latency, the faces of the latest analysed frame."""

    analysed: int  # frames analysed
    dropped: int  # frames skipped: arrived during another frame's analysis
    frames_per_s: float  # analysed frames per second, recently
    latency_ms: float  # median time from a frame's arrival to its labelled copy, recently
    faces: list[str]  # '#track model: emotion confidence' per face and model, latest frame
    expired: bool  # the stream reached its maximum length
    refused: bool  # every live place of the server was taken when the stream started
    seconds: float  # since the first frame
    hung_up: bool = False  # refused or expired: its connection was told to close


class LiveProcessor:
    """Analyse a live stream frame by frame; thread-safe, never queues a frame.

    max_seconds: after this long since the first frame, frames pass through unanalysed with a
    notice drawn on them, and on_expired (if given) is called once.
    every: detect faces on every `every`-th analysed frame and follow them in between.
    slots: the server's places for live streams; the stream takes one at its first frame (or, when
    none is free, passes its frames through with a notice) and gives it back at close() or expiry.
    window: frames/s and latency are over the last this many analysed frames.
    A refused or expired stream is hung up: see connect().
    """

    def __init__(
        self,
        models: list[LoadedModel],
        detector: FaceDetector,
        every: int = 1,
        smoothing: str = DEFAULT_SMOOTHING,
        history_seconds: float = HISTORY_SECONDS,
        max_seconds: float | None = None,
        on_expired: Callable[[], None] | None = None,
        slots: threading.Semaphore | None = None,
        window: int = RATE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._new_analyzer = lambda: FrameAnalyzer(
            models, detector, every, smoothing, max(1, round(TRACK_MEMORY_SECONDS * STREAM_FPS))
        )
        self.analyzer = self._new_analyzer()
        self.names = [model.name for model in models]
        self.history_seconds = history_seconds
        self.max_seconds = max_seconds
        self.on_expired = on_expired
        self.clock = clock
        self.slots = slots
        self._admitted: bool | None = None  # None: not asked yet (no frame)
        self._holding = False  # holds one of `slots`
        self._ended = False  # a stream ended: the next frame starts a new one
        self._busy = threading.Lock()  # held while a frame is analysed
        self._state = threading.Lock()  # guards everything below
        self._history: dict[int, TrackHistory] = {}
        self._points: list[FacePoint] = []
        self._analysed = 0
        self._dropped = 0
        self._index = -1
        self._started: float | None = None  # clock at the first frame
        self._offset: float | None = None  # smallest (arrival clock - frame time) seen
        self._expired = False
        self._done: deque[tuple[float, float]] = deque(maxlen=window)  # (finished, latency)
        self._hang_up: Callable[[], None] | None = None  # closes the stream's connection
        self._noticed = False  # the notice frame of a refused or expired stream was sent
        self._hung_up = False  # the connection was told to close

    def connect(self, hang_up: Callable[[], None]) -> None:
        """How to close this stream's connection (the page gives streamlit-webrtc's worker.stop).
        Called once, in a thread of its own, when the stream is refused or expires (at once if it
        already was)."""
        with self._state:
            self._hang_up = hang_up
            if self._over():
                self._end_connection()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        """streamlit-webrtc's video_frame_callback: the frame with boxes and labels drawn."""
        out = self.process(frame)
        assert isinstance(out, av.VideoFrame)
        return out

    async def recv_queued(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc's queued_video_frames_callback: the frames that arrived during the last
        analysis; only the newest is analysed, the others are counted as dropped. None once the
        stream was refused or expired and its notice sent: the browser keeps the notice until the
        connection closes."""
        with self._state:
            if self._over() and self._noticed:
                return []
            self._dropped += len(frames) - 1
        return [self(frames[-1])]

    def process(self, frame: Frame, time_s: float | None = None, arrived: float | None = None) -> Frame:
        """The frame (an RGB HxWx3 uint8 array or an av.VideoFrame) with each face boxed and
        labelled by every model; returned as the same kind.

        time_s: the frame's time in the stream (an av.VideoFrame's own time when None, else the
        clock since the first frame). arrived: when the frame reached the server (clock); when
        None it is estimated from the frame's time, on the least-delayed frame seen so far.
        A refused or expired stream's first frame after that gets a notice; later ones come back
        as they are, neither decoded nor drawn on.
        """
        now = self.clock()
        with self._state:
            started = self._begin(now) if self._started is None else self._started
            admitted = self._admitted
            if time_s is None:
                time_s = _frame_time(frame)
            if time_s is None:
                time_s = now - started
            self._offset = now - time_s if self._offset is None else min(self._offset, now - time_s)
            arrival = arrived if arrived is not None else time_s + self._offset
            expired = self._check_expired(now)
            over, noticed = not admitted or expired, self._noticed
            if over:
                self._noticed = True
                self._end_connection()
        if over:
            if noticed:
                return frame
            text = BUSY if not admitted else f"Live limit of {self.max_seconds:.0f} s reached."
            return _like(frame, _notice(_to_image(frame), text))
        image = _to_image(frame)
        if not self._busy.acquire(blocking=False):
            with self._state:
                self._dropped += 1
                points = list(self._points)
            return _like(frame, self._draw(image, points))
        try:
            with self._state:
                self._index = max(self._index + 1, round(time_s * STREAM_FPS))
                index, analysed = self._index, self._analysed
            # Half the intra-op threads while a frame is analysed: two stall whenever the other core
            # is busy (another session, or the browser on a small machine): 7.9 → 13.7 analysed
            # frames/s in the real-browser run on 2 cores (python -m tests.harness.live_browser_bench).
            with half_torch_threads():
                points = self.analyzer.step(index, time_s, image, detect=analysed % self.analyzer.every == 0)
            drawn = self._draw(image, points)
            finished = self.clock()
            with self._state:
                self._record(points, time_s, finished, finished - arrival)
        finally:
            self._busy.release()
        return _like(frame, drawn)

    def _begin(self, now: float) -> float:
        """The first frame of a stream: take a place, and start the tracks, chart and counts afresh
        (a new stream's frame times start anywhere). Under _state."""
        self._started = now
        self._admitted = self.slots is None or self.slots.acquire(blocking=False)
        self._holding = self.slots is not None and self._admitted
        if self._ended:
            self._ended = False
            self.analyzer = self._new_analyzer()
            self._history, self._points, self._done = {}, [], deque(maxlen=self._done.maxlen)
            self._analysed = self._dropped = 0
            self._index, self._offset = -1, None
            self._noticed = self._hung_up = False
        return now

    def _over(self) -> bool:
        """Refused, or expired. Under _state."""
        return self._admitted is False or self._expired

    def _end_connection(self) -> None:
        """Tell the connection to close, once per stream. In a thread of its own: closing joins the
        thread that calls process(). Under _state."""
        if self._hung_up or self._hang_up is None:
            return
        self._hung_up = True
        threading.Thread(target=self._hang_up, name="live-hang-up", daemon=True).start()

    def _check_expired(self, now: float) -> bool:
        """Whether the stream is past its maximum length; calls on_expired the first time. Under _state."""
        if self._expired or self.max_seconds is None or self._started is None:
            return self._expired
        if now - self._started >= self.max_seconds:
            self._expired = True
            self._release()
            if self.on_expired is not None:
                self.on_expired()
        return self._expired

    def close(self) -> None:
        """The stream ended (streamlit-webrtc's on_video_ended): give its place back. A frame after
        this starts a new stream, which asks for a place again (an expired processor stays expired)."""
        with self._state:
            self._release()
            if not self._expired and self._started is not None:
                self._started, self._ended = None, True

    def _release(self) -> None:
        if self._holding and self.slots is not None:
            self.slots.release()
        self._holding = False

    def _draw(self, image: Image.Image, points: list[FacePoint]) -> Image.Image:
        picture = image.copy()
        draw_labels(picture, live_labels(points, self.names))
        return picture

    def _record(self, points: list[FacePoint], time_s: float, finished: float, latency: float) -> None:
        self._analysed += 1
        self._points = points
        self._done.append((finished, latency))
        for point in points:
            self._history.setdefault(point.track, TrackHistory()).add(point)
        start = time_s - self.history_seconds
        for track in list(self._history):
            self._history[track].forget_before(start)
            if not self._history[track].times:
                del self._history[track]

    def history(self) -> dict[int, tuple[list[float], dict[str, np.ndarray], dict[str, np.ndarray]]]:
        """Per track (in order of first appearance): the last seconds' times and, per model, the raw
        and smoothed probabilities as (frames, 7) arrays; a copy, safe to read while frames go by."""
        with self._state:
            return {
                track: (
                    list(h.times),
                    {name: np.array(v) for name, v in h.raw.items()},
                    {name: np.array(v) for name, v in h.smoothed.items()},
                )
                for track, h in self._history.items()
            }

    def status(self) -> LiveStatus:
        """Counts and recent speed; safe to call from any thread."""
        with self._state:
            done = list(self._done)
            faces = [line for _, line, _ in live_labels(self._points, self.names)]
            rate = (
                (len(done) - 1) / (done[-1][0] - done[0][0])
                if len(done) > 1 and done[-1][0] > done[0][0]
                else 0.0
            )
            return LiveStatus(
                analysed=self._analysed,
                dropped=self._dropped,
                frames_per_s=rate,
                latency_ms=float(np.median([lat for _, lat in done]) * 1000) if done else 0.0,
                faces=faces,
                expired=self._expired,
                refused=self._admitted is False,
                seconds=0.0 if self._started is None else self.clock() - self._started,
                hung_up=self._hung_up,
            )

    def latencies(self) -> list[float]:
        """The recent frames' latencies in seconds (the last `window` analysed frames)."""
        with self._state:
            return [latency for _, latency in self._done]


def _to_image(frame: Frame) -> Image.Image:
    if isinstance(frame, av.VideoFrame):
        return frame.to_image()
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"a live frame is an RGB uint8 array of shape (H, W, 3), not {array.dtype} {array.shape}"
        )
    return Image.fromarray(array)


def _like(frame: Frame, image: Image.Image) -> Frame:
    """The picture as the kind of frame that came in, keeping a VideoFrame's timing."""
    if not isinstance(frame, av.VideoFrame):
        return np.asarray(image)
    out = av.VideoFrame.from_image(image)
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


def _frame_time(frame: Frame) -> float | None:
    if isinstance(frame, av.VideoFrame) and frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return None


def _notice(image: Image.Image, text: str) -> Image.Image:
    """The picture with a one-line notice on a strip at its top."""
    from PIL import ImageDraw, ImageFont

    picture = image.copy()
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(14, round(picture.width / 40)))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.rectangle((0, 0, picture.width, bottom - top + 16), fill=(20, 20, 20))
    draw.text((8, 8 - top), text, fill=(255, 255, 255), font=font)
    return picture
