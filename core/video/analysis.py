"""Emotion over time in a video: decode → detect (every k-th frame) → track → crop → classify → smooth.

Each step is the one the photos use (core.faces.detection, core.pipeline.classify_faces, core.explain.saliency);
this module only runs them frame after frame. Frames are streamed and dropped: the result
holds numbers only, and the annotated video is encoded while the frames go by.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from core.explain.compare import FaceComparison, compare_face
from core.explain.saliency import attention_maps, overlay_on_photo
from core.faces.detection import VIDEO_MIN_FACE_SIZE, Face, FaceDetector, crop_face
from core.faces.drawing import draw_labels
from core.models.predict import inference_copy
from core.models.registry import LoadedModel
from core.pipeline import PAGE_RANDOM_MAPS, PAGE_STEPS, classify_faces
from core.serving.memory import release_free_memory
from core.video.codec import (
    DEFAULT_EVERY,
    DEFAULT_LIMITS,
    VideoFrame,
    VideoLimits,
    VideoSource,
    VideoWriter,
    iter_frames,
    probe,
    read_frame,
)
from core.video.smoothing import DEFAULT_SMOOTHING, make_smoother
from core.video.timeline import FacePoint, VideoResult
from core.video.tracking import FaceTracker

# Video frames are detected on a copy at most this wide/high (MTCNN's time grows with the pixels);
# with min_face_size 40 a 640x480 frame is searched at 320x240 for faces of 20 pixels and up.
DETECT_SIDE = 320
# Detection threads for video files, each with its own MTCNN: with faces detected on every frame
# two keep one model's classifying fed (one model, every frame: 37.7 → 41.5 frames/s); otherwise
# the second idles.
DETECT_WORKERS = 2
TRACK_MEMORY_SECONDS = 1.0  # a face that is lost for less than this keeps its id when it comes back
# analyze_video decodes this many frames ahead of the one it classifies, so the detector (in its own
# thread) works on a coming frame meanwhile. Frames held: at most this many.
LOOKAHEAD = 8
# Every this many frames the C heap's free pages go back to the system: the frames, tensors and
# detector buffers freed on each frame otherwise leave glibc's heap fragmented, and peak memory
# crept up by about 100 MB over a 2-minute clip (`make bench`).
RELEASE_EVERY = 30


def video_detector(
    min_face_size: int = VIDEO_MIN_FACE_SIZE, max_faces: int = 20, detect_side: int = DETECT_SIDE
) -> FaceDetector:
    """The photo detector, searching a copy of each frame downscaled to `detect_side` pixels."""
    return FaceDetector(min_face_size=min_face_size, max_faces=max_faces, max_side=detect_side)


@dataclass(frozen=True)
class VideoSettings:
    """How a video is analysed: detect every `every`-th frame, the smoothing, how long (seconds) a lost
    face keeps its track, and the limits on the file."""

    every: int = DEFAULT_EVERY
    smoothing: str = DEFAULT_SMOOTHING
    track_memory: float = TRACK_MEMORY_SECONDS
    limits: VideoLimits = DEFAULT_LIMITS


class FrameAnalyzer:
    """One frame after another: detect (every `every`-th frame), track, crop, classify with every
    model, smooth per track. The one per-frame step of video files and the live camera.

    track_memory: frames a lost face keeps its id.
    """

    def __init__(
        self,
        models: list[LoadedModel],
        detector: FaceDetector,
        every: int = 1,
        smoothing: str = DEFAULT_SMOOTHING,
        track_memory: int = 30,
    ) -> None:
        if every < 1:
            raise ValueError("--every must be 1 or more")
        self.models = models
        # Predictions run on copies with batch norm folded in; Grad-CAM (frame_saliency) on the originals.
        self.classifiers = [inference_copy(model) for model in models]
        self.detector = detector
        self.every = every
        self.smoother = make_smoother(smoothing)
        self.tracker = FaceTracker(max_missed=track_memory)

    def detects(self, index: int) -> bool:
        """Whether frame `index` is one that detection runs on by default."""
        return index % self.every == 0

    def step(
        self,
        index: int,
        time: float,
        image: Image.Image | np.ndarray,
        detect: bool | None = None,
        faces: list[Face] | None = None,
    ) -> list[FacePoint]:
        """The faces of frame `index` (shown at `time` seconds) with raw and smoothed probabilities.

        image: a Pillow image or an RGB array (H, W, 3). detect None detects on every `every`-th
        frame; True or False decides for this frame. faces: this frame's detections when they were
        already found (analyze_video detects in another thread); detect is then ignored.
        """
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if faces is None:
            if detect is None:
                detect = self.detects(index)
            faces = self.detector.detect(image) if detect else None
        followed = self.tracker.update(index, faces)
        found: list[Face] = [face for _, face, _ in followed]
        _, probabilities = classify_faces(image, found, self.classifiers)
        return [
            FacePoint(
                frame=index,
                time=time,
                track=track,
                box=face.box,
                detected=detected,
                raw={name: probs[i] for name, probs in probabilities.items()},
                smoothed={
                    name: self.smoother.update((track, name), time, probs[i])
                    for name, probs in probabilities.items()
                },
            )
            for i, (track, face, detected) in enumerate(followed)
        ]


def analyze_video(
    path: VideoSource,
    models: list[LoadedModel],
    detector: FaceDetector,
    settings: VideoSettings = VideoSettings(),
    annotated: str | Path | BinaryIO | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoResult:
    """Every face of every frame with each model's raw and smoothed probabilities, per track.

    annotated: write the video with boxes and smoothed labels (the first model's) there.
    on_frame(done, total) is called after each frame (total None when the header does not say);
    should_stop() True ends early with `stopped` set in the result.
    Raises VideoError for files that are not usable videos.
    """
    if settings.every < 1:
        raise ValueError("--every must be 1 or more")  # before the file is read
    info = probe(path, settings.limits)
    analyzer = FrameAnalyzer(
        models, detector, settings.every, settings.smoothing, max(1, round(settings.track_memory * info.fps))
    )
    names = [model.name for model in models]
    result = VideoResult(
        info.path, info.width, info.height, info.fps, names, settings.smoothing, settings.every
    )
    writer = VideoWriter(annotated, info.fps, info.width, info.height) if annotated is not None else None
    try:
        for frame, points in _analyzed_frames(analyzer, iter_frames(path, settings.limits)):
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            result.points.extend(points)
            result.positions.add(frame.pts)
            result.frames = frame.index + 1
            if result.frames % RELEASE_EVERY == 0:
                release_free_memory()
            if writer is not None:
                writer.write(annotate_frame(frame.image, points, names))
            if on_frame is not None:
                on_frame(result.frames, info.frame_count)
    finally:
        if writer is not None:
            writer.close()
    return result


def _analyzed_frames(
    analyzer: FrameAnalyzer, frames: Iterator[VideoFrame]
) -> Iterator[tuple[VideoFrame, list[FacePoint]]]:
    """Each frame with its faces, in order. Detection runs in DETECT_WORKERS threads (frames taken in
    turn) up to LOOKAHEAD frames ahead while this thread decodes and classifies, so they share the
    machine's cores (PyTorch and PyAV release the GIL); each gets half of PyTorch's threads rather
    than all of them."""
    pending: deque[tuple[VideoFrame, Future[list[Face]] | None]] = deque()
    detectors = [analyzer.detector, *(analyzer.detector.twin() for _ in range(DETECT_WORKERS - 1))]
    pool = ThreadPoolExecutor(len(detectors), "detect")
    submitted = 0
    try:
        with half_torch_threads():
            for frame in frames:
                found = None
                if analyzer.detects(frame.index):
                    found = pool.submit(detectors[submitted % len(detectors)].detect, frame.image)
                    submitted += 1
                pending.append((frame, found))
                while len(pending) > LOOKAHEAD:
                    yield _step(analyzer, *pending.popleft())
            while pending:
                yield _step(analyzer, *pending.popleft())
    finally:
        pool.shutdown(cancel_futures=True)  # stopped early: skip the detections not begun


def _step(
    analyzer: FrameAnalyzer, frame: VideoFrame, found: Future[list[Face]] | None
) -> tuple[VideoFrame, list[FacePoint]]:
    faces = found.result() if found is not None else None
    return frame, analyzer.step(frame.index, frame.time, frame.image, detect=False, faces=faces)


class _HalfTorchThreads:
    """Halves PyTorch's intra-op threads while any video or live stream runs, and restores them when
    the last one ends, so runs in parallel sessions do not undo each other's setting.

    PyTorch's thread count is an OpenMP setting of each thread, taken from the process-wide value
    when a thread first computes; so the thread that enters computes with half, as do threads
    started while any run lasts. On 2 cores this keeps one video or stream from stalling on a core
    that a second analysis, or a browser, is also using.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._before = 1

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._runs == 0:
                self._before = torch.get_num_threads()
            self._runs += 1
            torch.set_num_threads(max(1, self._before // 2))  # the calling thread's own setting too
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0:
                    torch.set_num_threads(self._before)


half_torch_threads = _HalfTorchThreads()


def annotate_frame(image: Image.Image, points: list[FacePoint], models: list[str]) -> Image.Image:
    """The frame with each face boxed and labelled '#track emotion confidence' (first model, smoothed);
    green where all models agree, yellow where not."""
    picture = image.copy()
    labels = []
    for point in points:
        emotion, confidence = point.label(models[0]) if models else ("", 0.0)
        agree = len({point.label(m)[0] for m in models}) <= 1
        labels.append((point.box, f"#{point.track} {emotion} {confidence:.0%}", agree))
    draw_labels(picture, labels)
    return picture


def frame_saliency(
    path: VideoSource,
    result: VideoResult,
    frame: int,
    models: list[LoadedModel],
    method: str = "gradcam",
    limits: VideoLimits = DEFAULT_LIMITS,
) -> tuple[Image.Image, dict[str, Image.Image]]:
    """One frame of an analysed video and, per model, that frame with each face's Grad-CAM
    (for the model's smoothed emotion) laid over it."""
    points = result.frame_points(frame)
    image = read_frame(path, frame, limits, pts=result.positions.pts(frame)).image
    faces = [Face(box=p.box, landmarks=(), score=1.0) for p in points]
    if not faces:
        return image, {model.name: image for model in models}
    crops = np.stack([crop_face(image, face) for face in faces])
    overlays = {}
    for model in models:
        classes = [int(np.argmax(p.smoothed[model.name])) for p in points]
        heatmaps = attention_maps(model, crops, classes, method=method)
        overlays[model.name] = overlay_on_photo(image, faces, list(heatmaps))
    return image, overlays


def frame_comparison(
    path: VideoSource,
    result: VideoResult,
    frame: int,
    track: int,
    model_a: LoadedModel,
    model_b: LoadedModel,
    method: str = "gradcam",
    limits: VideoLimits = DEFAULT_LIMITS,
) -> FaceComparison:
    """Where two models look on one tracked face of one frame, each explaining its smoothed emotion.

    Video keeps no landmarks, so the facial parts sit where they typically are on a FER2013-framed
    crop (core.explain.compare.default_landmarks). ValueError when the track is not in that frame.
    """
    point = next((p for p in result.frame_points(frame) if p.track == track), None)
    if point is None:
        raise ValueError(f"face #{track} is not in frame {frame}")
    image = read_frame(path, frame, limits).image
    crop = crop_face(image, Face(box=point.box, landmarks=(), score=1.0))
    targets = {model.name: int(np.argmax(point.smoothed[model.name])) for model in (model_a, model_b)}
    return compare_face(
        crop,
        model_a,
        model_b,
        targets=targets,
        method=method,
        steps=PAGE_STEPS,
        random_count=PAGE_RANDOM_MAPS,
    )
