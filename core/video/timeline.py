"""A video's results per frame and face track: raw and smoothed probabilities, summaries, CSV and JSON.

Results hold numbers only (boxes and probability vectors), never frames, so they stay small
for long videos.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.labels import EMOTIONS
from core.video.codec import FramePositions


@dataclass
class FacePoint:
    """One face in one frame: where, which track, each model's raw and smoothed probabilities."""

    frame: int
    time: float
    track: int
    box: tuple[float, float, float, float]
    detected: bool  # False: the box was followed from an earlier detection
    raw: dict[str, np.ndarray]
    smoothed: dict[str, np.ndarray]

    def label(self, model: str) -> tuple[str, float]:
        """A model's smoothed emotion and its probability."""
        probs = self.smoothed[model]
        index = int(np.argmax(probs))
        return EMOTIONS[index], float(probs[index])


@dataclass
class VideoResult:
    """Everything found in a video: the face points of every frame, in frame order."""

    source: str
    width: int
    height: int
    fps: float
    models: list[str]
    smoothing: str
    every: int
    frames: int = 0  # frames processed
    points: list[FacePoint] = field(default_factory=list)
    stopped: bool = False  # stopped before the end
    positions: FramePositions = field(default_factory=FramePositions, repr=False)  # to seek a frame again
    _exports: dict[str, tuple[tuple[int, int, bool], bytes]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def tracks(self) -> list[int]:
        """Track ids in order of first appearance."""
        return list(dict.fromkeys(point.track for point in self.points))

    def track_points(self, track: int) -> list[FacePoint]:
        return [point for point in self.points if point.track == track]

    def track_series(self, track: int) -> tuple[list[float], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """A track's times and, per model, its raw and smoothed probabilities as (frames, 7) arrays."""
        points = self.track_points(track)
        raw = {m: np.array([p.raw[m] for p in points]).reshape(-1, len(EMOTIONS)) for m in self.models}
        smoothed = {
            m: np.array([p.smoothed[m] for p in points]).reshape(-1, len(EMOTIONS)) for m in self.models
        }
        return [p.time for p in points], raw, smoothed

    def frame_points(self, frame: int) -> list[FacePoint]:
        return [point for point in self.points if point.frame == frame]

    def summary(self) -> list[dict[str, Any]]:
        """Per track: when it is seen, and per model the share of time in each smoothed emotion,
        the dominant emotion and how many times the smoothed emotion changes."""
        rows = []
        for track in self.tracks():
            points = self.track_points(track)
            row: dict[str, Any] = {
                "track": track,
                "frames": len(points),
                "first_s": round(points[0].time, 3),
                "last_s": round(points[-1].time, 3),
                "models": {},
            }
            for model in self.models:
                labels = [point.label(model)[0] for point in points]
                share = {e: labels.count(e) / len(labels) for e in EMOTIONS}
                row["models"][model] = {
                    "dominant": max(EMOTIONS, key=lambda e: share[e]),
                    "share": {e: round(v, 4) for e, v in share.items()},
                    "changes": sum(a != b for a, b in zip(labels, labels[1:], strict=False)),
                }
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the video, the settings, the per-track summary and every face point."""
        return {
            "source": self.source,
            "size": [self.width, self.height],
            "fps": round(self.fps, 3),
            "frames": self.frames,
            "models": self.models,
            "smoothing": self.smoothing,
            "every": self.every,
            "stopped": self.stopped,
            "tracks": self.summary(),
            "faces": [
                {
                    "frame": p.frame,
                    "time": round(p.time, 4),
                    "track": p.track,
                    "box": [round(v, 1) for v in p.box],
                    "detected": p.detected,
                    "predictions": {
                        m: {
                            "emotion": p.label(m)[0],
                            "confidence": round(p.label(m)[1], 4),
                            "raw": [round(float(v), 4) for v in p.raw[m]],
                            "smoothed": [round(float(v), 4) for v in p.smoothed[m]],
                        }
                        for m in self.models
                    },
                }
                for p in self.points
            ],
        }

    def csv_bytes(self) -> bytes:
        """to_csv as UTF-8, built once and kept with the result (again only if frames were added)."""
        return self._kept("csv", lambda: self.to_csv().encode())

    def json_bytes(self) -> bytes:
        """to_dict as indented JSON, built once and kept with the result."""
        return self._kept("json", lambda: json.dumps(self.to_dict(), indent=2).encode())

    def _kept(self, kind: str, build: Callable[[], bytes]) -> bytes:
        # A 60 s clip with 20 faces gives 41 MB of CSV and JSON: 48 s to build, once.
        key = (self.frames, len(self.points), self.stopped)
        kept = self._exports.get(kind)
        if kept is None or kept[0] != key:
            kept = (key, build())
            self._exports[kind] = kept
        return kept[1]

    def to_csv(self) -> str:
        """One row per frame, face and model: time, track, box, smoothed emotion, raw and smoothed probabilities."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "frame",
                "time",
                "track",
                "x1",
                "y1",
                "x2",
                "y2",
                "detected",
                "model",
                "emotion",
                "confidence",
                *(f"raw_{e}" for e in EMOTIONS),
                *(f"smoothed_{e}" for e in EMOTIONS),
            ]
        )
        for p in self.points:
            for model in self.models:
                emotion, confidence = p.label(model)
                writer.writerow(
                    [
                        p.frame,
                        f"{p.time:.4f}",
                        p.track,
                        *(round(v) for v in p.box),
                        int(p.detected),
                        model,
                        emotion,
                        f"{confidence:.4f}",
                        *(f"{v:.4f}" for v in p.raw[model]),
                        *(f"{v:.4f}" for v in p.smoothed[model]),
                    ]
                )
        return buffer.getvalue()
