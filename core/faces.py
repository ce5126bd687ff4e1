"""Find faces with MTCNN (facenet-pytorch; its weights ship in the wheel) and crop them like FER2013.

One box per face is used everywhere: for the classifier crop, the rectangle drawn on the
photo and the saliency overlay placed back on the photo.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.data import CROP_SIZE

# FER2013 faces fill the frame from hairline to chin. Measured by running this detector on
# 300 upscaled FER2013 val faces (`python -m core framing`): the median MTCNN box is
# 1.06 frames tall and 0.80 wide, centred 0.013 box heights below the frame's centre.
FRAME_SCALE = 0.95
FRAME_SHIFT_UP = 0.013


def as_box(values: Iterable[float]) -> tuple[float, float, float, float]:
    """Four numbers (x1, y1, x2, y2) as a box tuple; ValueError when there are not four."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Face:
    """A detected face: box (x1, y1, x2, y2) in photo pixels, 5 landmarks, detector score."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float

    def crop_box(self) -> tuple[int, int, int, int]:
        """The square FER2013-style crop around this face, in photo pixels (may exceed the photo)."""
        x1, y1, x2, y2 = self.box
        side = max(x2 - x1, y2 - y1) * FRAME_SCALE
        cx = (x1 + x2) / 2
        cy = (y1 + y2) / 2 - FRAME_SHIFT_UP * (y2 - y1)
        left, top = round(cx - side / 2), round(cy - side / 2)
        size = max(round(side), 1)
        return (left, top, left + size, top + size)

    def as_dict(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "crop_box": list(self.crop_box()),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
        }


class FaceDetector:
    """MTCNN on the CPU. Photos larger than `max_side` are detected on a downscaled copy.

    min_face_size is in the photo's pixels. The default of 40 halves detection time against
    MTCNN's 20 (fewer pyramid levels; `make bench`), and a face smaller than that carries
    too little detail for a 48x48 classifier anyway.
    """

    def __init__(
        self,
        min_face_size: int = 40,
        score_threshold: float = 0.9,
        max_faces: int = 20,
        max_side: int = 960,
    ) -> None:
        from facenet_pytorch import MTCNN  # heavy import, kept local to the detector

        self.min_face_size = min_face_size
        self.score_threshold = score_threshold
        self.max_faces = max_faces
        self.max_side = max_side
        self._mtcnn = MTCNN(keep_all=True, device="cpu", min_face_size=min_face_size)
        self._lock = threading.Lock()  # MTCNN keeps its min_face_size as state

    def detect(self, image: Image.Image) -> list[Face]:
        """Every face above the score threshold, largest first, at most max_faces."""
        return self.detect_all(image)[: self.max_faces]

    def detect_all(self, image: Image.Image) -> list[Face]:
        """Every face above the score threshold, largest first, however many (callers cut and say so)."""
        if min(image.size) == 0:
            return []
        scale = min(1.0, self.max_side / max(image.size))
        small = (
            image
            if scale == 1.0
            else image.resize(
                (max(round(image.width * scale), 1), max(round(image.height * scale), 1)),
                Image.Resampling.BILINEAR,
            )
        )
        min_face = max(int(self.min_face_size * scale), 12)
        if min(small.size) < min_face:
            # No face that large fits, and MTCNN fails on the empty pyramid such a photo gives.
            return []
        with self._lock, torch.inference_mode():
            self._mtcnn.min_face_size = min_face
            boxes, scores, points = self._mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        faces = [
            Face(
                box=as_box(float(v) / scale for v in box),
                landmarks=tuple((float(x) / scale, float(y) / scale) for x, y in marks),
                score=float(score),
            )
            for box, score, marks in zip(boxes, scores, points, strict=True)
            if score >= self.score_threshold
        ]
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces


def crop_face(image: Image.Image, face: Face, size: int = CROP_SIZE) -> np.ndarray:
    """The face as a size x size uint8 grayscale array, framed like FER2013.

    Parts of the crop outside the photo repeat the nearest edge pixel rather than
    turning black, since black means "removed" to the cluster-masked model.
    """
    gray = np.asarray(image.convert("L"))
    left, top, right, bottom = face.crop_box()
    pad = max(0, -left, -top, right - gray.shape[1], bottom - gray.shape[0])
    if pad:
        gray = np.pad(gray, pad, mode="edge")
    square = gray[top + pad : bottom + pad, left + pad : right + pad]
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def largest_face_crop(detector: FaceDetector, image: Image.Image) -> np.ndarray | None:
    """The crop of the largest face in a photo, or None when there is none."""
    faces = detector.detect(image)
    return crop_face(image, faces[0]) if faces else None


def measure_framing(detector: FaceDetector, crops: np.ndarray, upscale: int = 192) -> dict[str, float]:
    """How MTCNN boxes sit in FER2013-framed crops: the numbers behind FRAME_SCALE/FRAME_SHIFT_UP."""
    boxes = []
    for crop in crops:
        photo = Image.fromarray(crop).resize((upscale, upscale), Image.Resampling.BICUBIC).convert("RGB")
        faces = detector.detect(photo)
        if faces:
            boxes.append([v / upscale for v in faces[0].box])
    if not boxes:
        raise ValueError("no face found in any crop")
    x1, y1, x2, y2 = np.median(np.array(boxes), axis=0)
    height = y2 - y1
    return {
        "faces_found": len(boxes),
        "crops": len(crops),
        "frame_scale": float(1 / max(x2 - x1, height)),
        "frame_shift_up": float(((y1 + y2) / 2 - 0.5) / height),
    }
