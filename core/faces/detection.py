"""Find faces with MTCNN (facenet-pytorch; its weights ship in the wheel) and crop them like FER2013.

One crop square per face is used everywhere: for the classifier crop, the square drawn on the
photo and the saliency overlay placed back on the photo. A tilted face's square is turned with
the face (its roll, from MTCNN's eye landmarks), so that the crop shows the eyes level, as in
FER2013.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from core.labels import CROP_SIZE

# FER2013 faces fill the frame from hairline to chin. Measured by running this detector on
# 300 upscaled FER2013 val faces (`python -m core framing`): the median MTCNN box is
# 1.06 frames tall and 0.80 wide, centred 0.013 box heights below the frame's centre.
FRAME_SCALE = 0.95
FRAME_SHIFT_UP = 0.013
# Tilts smaller than this are left as they are: the crop barely changes and skips a resampling.
MIN_ROLL_DEGREES = 3.0
# Faces 20-40 px wide are still read better than missed: on faces in scenes (`python -m tests.harness.face_study`)
# 20 px found 3.6 % more of the faces than 40 px and, with upright crops, raised end-to-end accuracy
# (misses wrong) from 40.6 % to 44.2 % (baseline) and 41.2 % to 43.0 % (masked), for about 1.8x the
# detection time at 640x480 (103 against 57 ms of CPU). Large photos are searched on
# a copy at most max_side wide with MTCNN's 12 px floor, so there the floor is 1.25 % of the long side.
PHOTO_MIN_FACE_SIZE = 20
# Video frames are searched on a 320-px copy, where that 12 px floor makes 20 and 30 find the faces 40
# does (`python -m tests.harness.face_study --video`); 40 is the cheapest per frame.
VIDEO_MIN_FACE_SIZE = 40


class CropFrame(NamedTuple):
    """A face's crop square in photo pixels: centre, side and its turn in degrees (clockwise on screen,
    as the eyes' slope with y pointing down); angle 0 is an upright square."""

    cx: float
    cy: float
    side: float
    angle: float

    def axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The crop's right and down directions as unit vectors in photo pixels."""
        cos, sin = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        return (cos, sin), (-sin, cos)

    def corners(self) -> list[tuple[float, float]]:
        """The square's corners in photo pixels: top left, top right, bottom right, bottom left."""
        (rx, ry), (dx, dy) = self.axes()
        half = self.side / 2
        return [
            (self.cx + u * rx + v * dx, self.cy + u * ry + v * dy)
            for u, v in ((-half, -half), (half, -half), (half, half), (-half, half))
        ]

    def to_crop(self, points: Sequence[tuple[float, float]], size: int = CROP_SIZE) -> np.ndarray:
        """Photo points (N, 2) in the size x size crop's coordinates (x right, y down; pixel i spans
        i to i + 1): where a landmark lands on the crop that crop_face cuts."""
        (rx, ry), (dx, dy) = self.axes()
        offsets = np.asarray(points, dtype=np.float64).reshape(-1, 2) - (self.cx, self.cy)
        scale = size / self.side
        across = offsets @ np.array([rx, ry]) * scale + size / 2
        down = offsets @ np.array([dx, dy]) * scale + size / 2
        return np.stack([across, down], axis=1)

    def bounds(self) -> tuple[int, int, int, int]:
        """The whole-pixel rectangle (left, top, right, bottom) that holds the square."""
        xs, ys = zip(*self.corners(), strict=True)
        return math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))


def eye_roll(landmarks: Sequence[tuple[float, float]]) -> float:
    """How far the line from the left eye to the right eye (MTCNN's first two landmarks) slopes, in
    degrees, clockwise on screen; 0 without landmarks."""
    if len(landmarks) < 2:
        return 0.0
    (lx, ly), (rx, ry) = landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def as_box(values: Iterable[float]) -> tuple[float, float, float, float]:
    """Four numbers (x1, y1, x2, y2) as a box tuple; ValueError when there are not four."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Face:
    """A detected face: box (x1, y1, x2, y2) in photo pixels, 5 landmarks, detector score, and the roll
    (degrees, see eye_roll) its crop is turned by to level the eyes: 0 crops upright."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float
    roll: float = 0.0

    def crop_box(self) -> tuple[int, int, int, int]:
        """The square FER2013-style crop around this face before turning it by the roll, in photo pixels
        (may exceed the photo)."""
        x1, y1, x2, y2 = self.box
        side = max(x2 - x1, y2 - y1) * FRAME_SCALE
        cx = (x1 + x2) / 2
        cy = (y1 + y2) / 2 - FRAME_SHIFT_UP * (y2 - y1)
        left, top = round(cx - side / 2), round(cy - side / 2)
        size = max(round(side), 1)
        return (left, top, left + size, top + size)

    def crop_frame(self) -> CropFrame:
        """The crop square turned with the face: what crop_face cuts, the overlay covers and is drawn."""
        left, top, right, bottom = self.crop_box()
        if not self.roll:
            return CropFrame((left + right) / 2, (top + bottom) / 2, right - left, 0.0)
        x1, y1, x2, y2 = self.box
        up = FRAME_SHIFT_UP * (y2 - y1)  # along the face's own up, not the photo's
        angle = math.radians(self.roll)
        cx = (x1 + x2) / 2 + up * math.sin(angle)
        cy = (y1 + y2) / 2 - up * math.cos(angle)
        return CropFrame(cx, cy, max(x2 - x1, y2 - y1) * FRAME_SCALE, self.roll)

    def as_dict(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "crop_box": list(self.crop_box()),
            "roll": round(self.roll, 1),
            "crop_corners": [[round(x, 1), round(y, 1)] for x, y in self.crop_frame().corners()],
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
        }


class FaceDetector:
    """MTCNN on the CPU. Photos larger than `max_side` are detected on a downscaled copy.

    min_face_size is in the photo's pixels (see PHOTO_MIN_FACE_SIZE). With align, each face's
    roll is its eyes' slope (tilts under MIN_ROLL_DEGREES count as upright), so its crop shows
    the eyes level; without, every crop is upright. Alignment is off by default: on faces in scenes
    and on tilted val faces it did not measure better than upright crops (docs/results.md, "Alignment"),
    FER2013's own faces being unaligned.
    """

    def __init__(
        self,
        min_face_size: int = PHOTO_MIN_FACE_SIZE,
        score_threshold: float = 0.9,
        max_faces: int = 20,
        max_side: int = 960,
        align: bool = False,
        min_roll: float = MIN_ROLL_DEGREES,
    ) -> None:
        from facenet_pytorch import MTCNN  # heavy import, kept local to the detector

        self.align = align
        self.min_roll = min_roll
        self.min_face_size = min_face_size
        self.score_threshold = score_threshold
        self.max_faces = max_faces
        self.max_side = max_side
        self._mtcnn = MTCNN(keep_all=True, device="cpu", min_face_size=min_face_size)
        # PyTorch's CPU max pooling is about ten times slower on channels-first tensors than on
        # channels-last ones, and MTCNN pools after most convolutions: channels-last nets find the same
        # boxes in about two thirds of the time (`python -m core bench`). Its stages run in
        # core.faces.mtcnn (same boxes as MTCNN.detect, cheaper resampling), which keeps no state:
        # one detector serves threads at once.
        for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def twin(self) -> FaceDetector:
        """A detector with the same settings and its own MTCNN, to detect in parallel."""
        return FaceDetector(
            self.min_face_size, self.score_threshold, self.max_faces, self.max_side, self.align, self.min_roll
        )

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
        from core.faces.mtcnn import detect_faces  # facenet-pytorch: imported with the first detector

        boxes, scores, points = detect_faces(np.asarray(small.convert("RGB")), self._mtcnn, min_face)
        faces = [
            self._face(
                as_box(float(v) / scale for v in box),
                tuple((float(x) / scale, float(y) / scale) for x, y in marks),
                float(score),
            )
            for box, score, marks in zip(boxes, scores, points, strict=True)
            if score >= self.score_threshold
        ]
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces

    def detect_same_size(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        """Faces in each of several photos of one size (at most max_side, e.g. upscaled crops), in one
        batched MTCNN pass: per photo every face above the threshold, largest first."""
        if not images:
            return []
        if len({image.size for image in images}) != 1 or max(images[0].size) > self.max_side:
            raise ValueError(f"detect_same_size needs photos of one size, at most {self.max_side} px")
        # facenet-pytorch's own batched detect; the min_face_size it reads is set to the same value
        # by every call, and detect_all does not read it (core.faces.mtcnn takes the size it is given).
        self._mtcnn.min_face_size = max(self.min_face_size, 12)
        with torch.inference_mode():
            boxes, scores, points = self._mtcnn.detect(list(images), landmarks=True)
        found = []
        for photo_boxes, photo_scores, photo_points in zip(boxes, scores, points, strict=True):
            faces = []
            if photo_boxes is not None:
                faces = [
                    self._face(as_box(box), tuple((float(x), float(y)) for x, y in marks), float(score))
                    for box, score, marks in zip(photo_boxes, photo_scores, photo_points, strict=True)
                    if score >= self.score_threshold
                ]
            faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
            found.append(faces)
        return found

    def _face(
        self, box: tuple[float, float, float, float], landmarks: tuple[tuple[float, float], ...], score: float
    ) -> Face:
        roll = eye_roll(landmarks) if self.align else 0.0
        return Face(box, landmarks, score, roll if abs(roll) >= self.min_roll else 0.0)


def crop_face(image: Image.Image, face: Face, size: int = CROP_SIZE) -> np.ndarray:
    """The face as a size x size uint8 grayscale array, framed like FER2013 and turned by its roll.

    Parts of the crop outside the photo repeat the nearest edge pixel rather than
    turning black, since black means "removed" to the cluster-masked model. Only the pixels
    around the face are read, so the cost does not grow with the photo.
    """
    frame = face.crop_frame()
    left, top, right, bottom = frame.bounds() if frame.angle else face.crop_box()
    region = gray_region(image, (left, top, right, bottom))
    if frame.angle:
        # One resampling from the region straight onto the upright square (Pillow maps output to
        # input pixels), at the face's own size; the reduction to `size` follows, antialiased.
        side = max(round(frame.side), 1)
        (rx, ry), (dx, dy) = frame.axes()
        step = frame.side / side
        origin_x = frame.cx - left - frame.side / 2 * (rx + dx)
        origin_y = frame.cy - top - frame.side / 2 * (ry + dy)
        coefficients = (step * rx, step * dx, origin_x, step * ry, step * dy, origin_y)
        region = region.transform(
            (side, side), Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC
        )
    return np.asarray(region.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def gray_region(image: Image.Image, bounds: tuple[int, int, int, int]) -> Image.Image:
    """The grayscale pixels of a photo within (left, top, right, bottom), which may reach past the photo:
    parts outside repeat the nearest edge pixel."""
    left, top, right, bottom = bounds
    rows = np.clip(np.arange(top, max(bottom, top + 1)), 0, image.height - 1)
    cols = np.clip(np.arange(left, max(right, left + 1)), 0, image.width - 1)
    x1, y1 = int(cols[0]), int(rows[0])
    inside = np.asarray(image.crop((x1, y1, int(cols[-1]) + 1, int(rows[-1]) + 1)).convert("L"))
    return Image.fromarray(np.ascontiguousarray(inside[np.ix_(rows - y1, cols - x1)]))


def largest_face_crop(detector: FaceDetector, image: Image.Image) -> np.ndarray | None:
    """The crop of the largest face in a photo, or None when there is none."""
    faces = detector.detect(image)
    return crop_face(image, faces[0]) if faces else None


def measure_framing(detector: FaceDetector, crops: np.ndarray, upscale: int = 192) -> dict[str, Any]:
    """How MTCNN boxes sit in FER2013-framed crops: the numbers behind FRAME_SCALE/FRAME_SHIFT_UP, and
    the median landmarks as fractions of the crop's side (core.explain.compare.DEFAULT_LANDMARKS)."""
    boxes, marks = [], []
    for crop in crops:
        photo = Image.fromarray(crop).resize((upscale, upscale), Image.Resampling.BICUBIC).convert("RGB")
        faces = detector.detect(photo)
        if faces:
            boxes.append([v / upscale for v in faces[0].box])
            marks.append(np.asarray(faces[0].landmarks) / upscale)
    if not boxes:
        raise ValueError("no face found in any crop")
    x1, y1, x2, y2 = np.median(np.array(boxes), axis=0)
    height = y2 - y1
    return {
        "faces_found": len(boxes),
        "crops": len(crops),
        "frame_scale": float(1 / max(x2 - x1, height)),
        "frame_shift_up": float(((y1 + y2) / 2 - 0.5) / height),
        "landmarks": np.round(np.median(np.array(marks), axis=0), 4).tolist(),
    }
