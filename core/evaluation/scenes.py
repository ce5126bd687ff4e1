"""Faces in scenes: FER2013 faces composed into photo-like scenes and scored end to end.

A scene is a photo (640x480 to 1600x1200, landscape or portrait) holding 1 to 6 labelled
faces, each tilted (up to ±30°), scaled (face width 20-200 px), lit (gain, gamma), tinted,
blurred and blended in with a soft-edged mask, on a background of gradients, noise textures
and shapes; the whole photo is JPEG-compressed. Everything follows from a seed.

Scoring runs each photo through core.pipeline.analyze (detect → crop → classify, whatever the
pipeline does) and matches detections to the truth by centre: a detection belongs to the
truth face whose frame square holds its centre (nearest centre first, one each). A face that
is not found counts as wrong; detections that match no face are counted apart.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.faces.detection import FaceDetector
from core.labels import EMOTIONS
from core.models.registry import LoadedModel
from core.pipeline import analyze

# A FER2013 face (MTCNN's box) is 0.80 of its 48x48 frame wide (core.faces.detection: `python -m core framing`).
FACE_SHARE = 0.80
FACE_WIDTHS = (20.0, 200.0)  # face widths in photo pixels, drawn log-uniformly
WIDTH_BINS = ((20, 30), (30, 40), (40, 60), (60, 100), (100, 200))
PHOTO_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200))
MAX_FACES = 6
MAX_TILT = 30.0
GAIN = (0.55, 1.3)
GAMMA = (0.7, 1.5)
BLUR_SIGMA = (0.0, 1.2)  # photo pixels
JPEG_QUALITY = (50, 95)
FEATHER = 0.14  # the soft edge of the face mask, in frame sides
SKIN_TONES = ((1.08, 0.96, 0.86), (1.12, 0.94, 0.78), (1.05, 0.98, 0.95), (1.15, 0.92, 0.72))


@dataclass(frozen=True)
class SceneFace:
    """A face placed in a scene: its FER2013-style frame square in photo pixels, label and source."""

    box: tuple[float, float, float, float]
    label: int
    index: int  # position in the dataset the face came from

    @property
    def width(self) -> float:
        """The face's width in photo pixels (FACE_SHARE of its frame)."""
        return (self.box[2] - self.box[0]) * FACE_SHARE

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass
class Scene:
    """A composed photo (JPEG bytes, as a visitor would upload it) and its faces."""

    jpeg: bytes
    size: tuple[int, int]
    faces: list[SceneFace]

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")


def background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A busy, photo-like background: a colour gradient, a cloudy texture, shapes and fine noise."""
    width, height = size
    start, end = rng.uniform(20, 235, (2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs * np.cos(angle) + ys * np.sin(angle)) / max(width, height)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    pixels = start + (end - start) * ramp[..., None]
    cells = int(rng.integers(3, 12))
    clouds = Image.fromarray(rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )
    pixels += (np.asarray(clouds, np.float32) - 128) * rng.uniform(0.1, 0.45)
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture, "RGBA")
    for _ in range(int(rng.integers(3, 15))):
        colour = (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(90, 256)))
        x1, x2 = sorted(rng.uniform(-0.1, 1.1, 2) * width)
        y1, y2 = sorted(rng.uniform(-0.1, 1.1, 2) * height)
        kind = rng.integers(4)
        if kind == 0:
            draw.rectangle((x1, y1, x2, y2), fill=colour)
        elif kind == 1:
            draw.ellipse((x1, y1, x2, y2), fill=colour)
        elif kind == 2:
            draw.line((x1, y1, x2, y2), fill=colour, width=int(rng.integers(2, 30)))
        else:
            points = [tuple(p) for p in rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * (width, height)]
            draw.polygon(points, fill=colour)
    noisy = np.asarray(picture, np.float32) + rng.normal(0, rng.uniform(0, 8), (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def soft_mask(side: int) -> Image.Image:
    """A rounded square that fades out over its outer FEATHER, so no square edge shows."""
    grid = (np.arange(side, dtype=np.float32) + 0.5) / side * 2 - 1
    radius = (np.abs(grid)[None, :] ** 4 + np.abs(grid)[:, None] ** 4) ** 0.25
    alpha = np.clip((1 - radius) / (2 * FEATHER), 0, 1)
    return Image.fromarray(np.rint(alpha * 255).astype(np.uint8))


def face_patch(
    face: np.ndarray, side: int, angle: float, rng: np.random.Generator
) -> tuple[Image.Image, Image.Image]:
    """A 48x48 face lit, tinted, scaled to `side`, blurred and tilted: (RGB patch, mask), both
    grown by the tilt (the patch's centre stays the face's centre)."""
    gain, gamma = rng.uniform(*GAIN), rng.uniform(*GAMMA)
    lit = np.clip(255 * (face.astype(np.float32) / 255) ** gamma * gain, 0, 255)
    tone = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], np.float32)
    rgb = np.clip(lit[..., None] * tone, 0, 255).astype(np.uint8)
    patch = Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC)
    sigma = rng.uniform(*BLUR_SIGMA)
    if sigma > 0.2:
        patch = patch.filter(ImageFilter.GaussianBlur(sigma))
    mask = soft_mask(side)
    return (
        patch.rotate(angle, Image.Resampling.BICUBIC, expand=True),
        mask.rotate(angle, Image.Resampling.BICUBIC, expand=True),
    )


def compose_scene(
    faces: np.ndarray, labels: Sequence[int], indices: Sequence[int], rng: np.random.Generator
) -> Scene:
    """One photo holding the given 48x48 faces (those that fit without overlapping) at random
    sizes, tilts and places."""
    width, height = PHOTO_SIZES[int(rng.integers(len(PHOTO_SIZES)))]
    if rng.random() < 0.25:
        width, height = height, width
    photo = background((width, height), rng)
    placed: list[SceneFace] = []
    for face, label, index in zip(faces, labels, indices, strict=True):
        face_width = float(np.exp(rng.uniform(*np.log(FACE_WIDTHS))))
        side = max(round(face_width / FACE_SHARE), 8)
        angle = float(rng.uniform(-MAX_TILT, MAX_TILT))
        reach = side * (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle)))) / 2
        spot = _free_spot(placed, side, reach, (width, height), rng)
        if spot is None:
            continue
        patch, mask = face_patch(face, side, angle, rng)
        cx, cy = spot
        photo.paste(patch, (round(cx - patch.width / 2), round(cy - patch.height / 2)), mask)
        half = side / 2
        placed.append(SceneFace((cx - half, cy - half, cx + half, cy + half), int(label), int(index)))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return Scene(buffer.getvalue(), (width, height), placed)


def _free_spot(
    placed: Sequence[SceneFace], side: int, reach: float, size: tuple[int, int], rng: np.random.Generator
) -> tuple[float, float] | None:
    """A centre where a face of this frame side (tilted: `reach` from centre to edge) lies wholly
    inside the photo and clear of every face placed, or None after 50 tries."""
    width, height = size
    if 2 * reach + 2 > min(width, height):
        return None
    for _ in range(50):
        cx, cy = rng.uniform(reach + 1, width - reach - 1), rng.uniform(reach + 1, height - reach - 1)
        clear = all(
            abs(cx - other.centre[0]) > reach + (other.box[2] - other.box[0]) * 0.75
            or abs(cy - other.centre[1]) > reach + (other.box[3] - other.box[1]) * 0.75
            for other in placed
        )
        if clear:
            return cx, cy
    return None


def make_scenes(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> Iterator[Scene]:
    """`count` scenes of labelled 48x48 faces (N, 48, 48), each face used at most once while
    faces last, deterministic from the seed."""
    if len(images) == 0:
        raise ValueError("no faces to compose scenes from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    taken = 0
    for _ in range(count):
        number = int(rng.integers(1, MAX_FACES + 1))
        chosen = order[np.arange(taken, taken + number) % len(order)]
        taken += number
        yield compose_scene(images[chosen], labels[chosen].tolist(), chosen.tolist(), rng)


def save_scenes(scenes: Sequence[Scene], folder: Path) -> Path:
    """Write each scene as scene_NNN.jpg and the truth (boxes, labels, widths) as truth.json."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for number, scene in enumerate(scenes):
        name = f"scene_{number:03d}.jpg"
        (folder / name).write_bytes(scene.jpeg)
        truth[name] = [
            {
                "box": [round(v, 1) for v in face.box],
                "emotion": EMOTIONS[face.label],
                "width": round(face.width, 1),
            }
            for face in scene.faces
        ]
    path = folder / "truth.json"
    path.write_text(json.dumps(truth, indent=1) + "\n")
    return path


def match_detections(truth: Sequence[SceneFace], boxes: Sequence[Sequence[float]]) -> list[int | None]:
    """For each truth face, the index of the detection matched to it, or None (missed).

    A detection matches a face when its centre lies inside the face's frame square; each
    detection and each face is matched at most once, nearest centres first.
    """
    pairs = []
    for t, face in enumerate(truth):
        x1, y1, x2, y2 = face.box
        for d, box in enumerate(boxes):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if x1 <= cx <= x2 and y1 <= cy <= y2:
                pairs.append((float(np.hypot(cx - face.centre[0], cy - face.centre[1])), t, d))
    matched: list[int | None] = [None] * len(truth)
    used: set[int] = set()
    for _, t, d in sorted(pairs):
        if matched[t] is None and d not in used:
            matched[t] = d
            used.add(d)
    return matched


@dataclass
class FaceOutcome:
    """One truth face after the pipeline: its width, label and each model's prediction (None: missed)."""

    width: float
    label: int
    predictions: dict[str, int | None]


def run_scenes(
    scenes: Iterator[Scene] | Sequence[Scene], models: Sequence[LoadedModel], detector: FaceDetector
) -> tuple[list[FaceOutcome], dict[str, Any]]:
    """Every scene through the one pipeline: the outcome of each truth face, and per-photo
    totals (photos, false detections, detection seconds, pipeline CPU seconds)."""
    outcomes: list[FaceOutcome] = []
    photos = false_detections = 0
    detect_seconds = cpu_seconds = 0.0
    started = time.perf_counter()
    for scene in scenes:
        cpu = time.process_time()
        analysis = analyze(scene.jpeg, list(models), detector, cam_method=None)
        cpu_seconds += time.process_time() - cpu
        boxes = [result.face.box for result in analysis.faces]
        matched = match_detections(scene.faces, boxes)
        for face, d in zip(scene.faces, matched, strict=True):
            predictions: dict[str, int | None] = {
                model.name: None if d is None else int(np.argmax(analysis.faces[d].probabilities[model.name]))
                for model in models
            }
            outcomes.append(FaceOutcome(face.width, face.label, predictions))
        photos += 1
        false_detections += len(boxes) - sum(d is not None for d in matched)
        detect_seconds += analysis.timings["detect"]
    totals = {
        "photos": photos,
        "false_detections": false_detections,
        "detect_seconds_per_photo": detect_seconds / max(photos, 1),
        # CPU time of the whole pipeline (every thread; detection dominates): steadier than the
        # wall clock on a shared machine
        "cpu_seconds_per_photo": cpu_seconds / max(photos, 1),
        "seconds": time.perf_counter() - started,
    }
    return outcomes, totals


def _tally(outcomes: Sequence[FaceOutcome], model: str) -> dict[str, Any]:
    faces = len(outcomes)
    found = sum(o.predictions[model] is not None for o in outcomes)
    correct = sum(o.predictions[model] == o.label for o in outcomes)
    return {
        "faces": faces,
        "found": found,
        "correct": correct,
        "accuracy": correct / faces if faces else None,  # misses count as wrong
        "recall": found / faces if faces else None,
        "found_accuracy": correct / found if found else None,
    }


def score_outcomes(outcomes: Sequence[FaceOutcome], model: str) -> dict[str, Any]:
    """End-to-end accuracy (misses wrong), detection recall and accuracy of found faces for one
    model, overall and per face-width bin (WIDTH_BINS, in photo pixels; the last includes its top)."""
    result = _tally(outcomes, model)
    last = WIDTH_BINS[-1][1]
    result["bins"] = [
        {
            "low": low,
            "high": high,
            **_tally([o for o in outcomes if low <= o.width < high or o.width == high == last], model),
        }
        for low, high in WIDTH_BINS
    ]
    return result


def score_scenes(
    scenes: Iterator[Scene] | Sequence[Scene], models: Sequence[LoadedModel], detector: FaceDetector
) -> dict[str, Any]:
    """Scenes scored end to end: {"models": {name: score_outcomes(...)}, photos, false_detections,
    detect_seconds_per_photo, cpu_seconds_per_photo, seconds, min_face_size, matching}."""
    outcomes, totals = run_scenes(scenes, models, detector)
    return {
        **totals,
        "min_face_size": detector.min_face_size,
        "matching": "detection centre inside the face's frame square",
        "models": {model.name: score_outcomes(outcomes, model.name) for model in models},
    }
