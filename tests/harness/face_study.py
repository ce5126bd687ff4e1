"""The tables behind the face defaults: minimum face size, alignment and the readability flags.

Faces in scenes (core.evaluation.scenes) go through the one pipeline (core.pipeline.analyze, aligned) once per
minimum face size; the same detections are classified again with upright crops, so alignment is
compared on identical faces. Each truth face keeps its width, its crop's sharpness and brightness
and each model's predictions, from which the tables are cut. Detection time is measured apart, on a
640x480 photo and a large one.

    python -m tests.harness.face_study --scenes 120 --sizes 20 30 40
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from core.evaluation.scenes import Scene, match_detections
from core.faces.detection import MIN_ROLL_DEGREES, FaceDetector
from core.faces.quality import brightness, sharpness
from core.models.registry import LoadedModel
from core.paths import DATA_DEFAULT
from core.pipeline import analyze, classify_faces


@dataclass
class StudiedFace:
    """One truth face under one detector: width (photo px), label, what was found and predicted."""

    width: float
    label: int
    found_width: float | None  # the detected box's width, None when missed
    sharpness: float | None
    brightness: float | None
    aligned: dict[str, int | None]
    upright: dict[str, int | None]


def study_scenes(
    scenes: Sequence[Scene], models: Sequence[LoadedModel], detector: FaceDetector
) -> tuple[list[StudiedFace], float]:
    """Every truth face of the scenes through the pipeline, and the mean detection seconds per photo."""
    faces: list[StudiedFace] = []
    detect = 0.0
    for scene in scenes:
        analysis = analyze(scene.jpeg, list(models), detector, cam_method=None, max_faces=detector.max_faces)
        detect += analysis.timings["detect"]
        found = [result.face for result in analysis.faces]
        _, upright = classify_faces(analysis.image, [replace(f, roll=0.0) for f in found], list(models))
        matched = match_detections(scene.faces, [f.box for f in found])
        for truth, d in zip(scene.faces, matched, strict=True):
            result = None if d is None else analysis.faces[d]
            faces.append(
                StudiedFace(
                    width=truth.width,
                    label=truth.label,
                    found_width=None if result is None else result.face.box[2] - result.face.box[0],
                    sharpness=None if result is None else sharpness(result.crop),
                    brightness=None if result is None else brightness(result.crop),
                    aligned={
                        m.name: None if result is None else int(np.argmax(result.probabilities[m.name]))
                        for m in models
                    },
                    upright={
                        m.name: None if d is None else int(np.argmax(upright[m.name][d])) for m in models
                    },
                )
            )
    return faces, detect / max(len(scenes), 1)


def accuracy(faces: Sequence[StudiedFace], model: str, aligned: bool = True) -> float | None:
    """End-to-end accuracy (a missed face is wrong) of one model, None for no faces."""
    if not faces:
        return None
    predictions = [(f.aligned if aligned else f.upright)[model] for f in faces]
    return sum(p == f.label for p, f in zip(predictions, faces, strict=True)) / len(faces)


def binned(
    faces: Sequence[StudiedFace], value: str, edges: Sequence[float], models: Sequence[str]
) -> list[dict[str, Any]]:
    """Accuracy of the found faces per bin of one of their measures (found_width, sharpness, brightness)."""
    found = [f for f in faces if getattr(f, value) is not None]
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = [f for f in found if low <= getattr(f, value) < high]
        rows.append(
            {"low": low, "high": high, "faces": len(inside), **{m: accuracy(inside, m) for m in models}}
        )
    return rows


def detection_seconds(detector: FaceDetector, photo: Image.Image, repeats: int = 3) -> float:
    """The median seconds of one detection on a photo (after one warm-up)."""
    detector.detect_all(photo)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        detector.detect_all(photo)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def timing_photos() -> dict[str, Image.Image]:
    """The benchmark's 640x480 one-face photo and a 4000x3000 photo of several faces."""
    from core.faces.images import decode_image
    from tests.harness.bench import sample_photos

    photos = {name: decode_image(data) for name, data in sample_photos().items()}
    return {
        "640x480": photos["640x480, 1 face"],
        "4000x3000": photos["1920x1080, 4 faces"].resize((4000, 3000)),
    }


def aligned(detector: FaceDetector, min_roll: float) -> FaceDetector:
    """The detector set to align faces tilted by min_roll degrees or more."""
    detector.align, detector.min_roll = True, min_roll
    return detector


def main(argv: Sequence[str] | None = None) -> int:
    from core.data.datasets import load_dataset
    from core.evaluation.scenes import make_scenes
    from core.video.analysis import video_detector
    from tests.harness.bench import default_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA_DEFAULT, help="FER2013 folder or fer2013.csv")
    parser.add_argument("--scenes", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 30, 40])
    parser.add_argument("--video", action="store_true", help="also score the video detector")
    parser.add_argument("--out", default=None, help="write the per-face records here (JSON)")
    parser.add_argument(
        "--rotation",
        type=int,
        default=0,
        help="instead: this many val faces, tilted, detected, aligned or not",
    )
    parser.add_argument("--min-roll", type=float, default=MIN_ROLL_DEGREES, help="align tilts from this on")
    parser.add_argument("--angles", type=float, nargs="+", default=[0.0, 10.0, 20.0, 30.0])
    args = parser.parse_args(argv)

    models = default_models()
    names = [m.name for m in models]
    val = load_dataset(args.data, "val")
    if args.rotation:
        chosen = np.random.default_rng(args.seed).choice(len(val.labels), args.rotation, replace=False)
        rotation_study(val.images[chosen], val.labels[chosen], models, args.angles, args.seed, args.min_roll)
        return 0
    scenes = list(make_scenes(val.images, val.labels, args.scenes, args.seed))
    photos = timing_photos()
    report: dict[str, Any] = {"scenes": len(scenes), "faces": sum(len(s.faces) for s in scenes), "rows": []}
    records: dict[str, list[dict[str, Any]]] = {}
    kinds = [("photo", lambda size: FaceDetector(min_face_size=size, align=True, min_roll=args.min_roll))]
    if args.video:
        kinds.append(("video", lambda size: aligned(video_detector(size), args.min_roll)))
    for kind, make in kinds:
        for size in args.sizes:
            detector = make(size)
            started = time.perf_counter()
            faces, detect = study_scenes(scenes, models, detector)
            row = {
                "detector": kind,
                "min_face_size": size,
                "recall": sum(f.found_width is not None for f in faces) / len(faces),
                **{f"{m} aligned": accuracy(faces, m) for m in names},
                **{f"{m} upright": accuracy(faces, m, aligned=False) for m in names},
                "scene detect ms": 1000 * detect,
                **{
                    f"detect ms {p}": 1000 * detection_seconds(detector, photo) for p, photo in photos.items()
                },
                "seconds": time.perf_counter() - started,
            }
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
            records[f"{kind} {size}"] = [f.__dict__ for f in faces]
            if kind == "photo" and size == min(args.sizes):
                report["by_width"] = binned(faces, "found_width", [12, 20, 25, 30, 40, 60, 100, 400], names)
                report["by_sharpness"] = binned(faces, "sharpness", [0, 5, 10, 20, 40, 80, 160, 1e9], names)
                report["by_brightness"] = binned(faces, "brightness", [0, 40, 60, 80, 100, 140, 256], names)
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump({"report": report, "faces": records}, file)
    return 0


def rotation_study(
    images: np.ndarray,
    labels: np.ndarray,
    models: Sequence[LoadedModel],
    angles: Sequence[float],
    seed: int = 0,
    min_roll: float = MIN_ROLL_DEGREES,
) -> list[dict[str, Any]]:
    """FER2013 faces (N, 48, 48) as 240x240 photos tilted by each angle (degrees; sign drawn at random),
    through detection, then cropped aligned and upright: accuracy of each (misses wrong) per angle."""
    detector = FaceDetector(min_face_size=40, align=True, min_roll=min_roll)
    rng = np.random.default_rng(seed)
    rows = []
    for angle in angles:
        found, aligned, upright = (
            0,
            dict.fromkeys([m.name for m in models], 0),
            dict.fromkeys([m.name for m in models], 0),
        )
        for face, label in zip(images, labels, strict=True):
            photo = Image.fromarray(np.pad(face, 24, mode="edge")).resize(
                (240, 240), Image.Resampling.BICUBIC
            )
            photo = photo.rotate(angle * rng.choice((-1, 1)), Image.Resampling.BICUBIC).convert("RGB")
            faces = detector.detect(photo)[:1]
            if not faces:
                continue
            found += 1
            _, turned = classify_faces(photo, faces, list(models))
            _, straight = classify_faces(photo, [replace(faces[0], roll=0.0)], list(models))
            for m in models:
                aligned[m.name] += int(np.argmax(turned[m.name][0]) == label)
                upright[m.name] += int(np.argmax(straight[m.name][0]) == label)
        count = len(images)
        rows.append(
            {
                "tilt": angle,
                "faces": count,
                "found": found,
                **{f"{m} aligned": aligned[m] / count for m in aligned},
                **{f"{m} upright": upright[m] / count for m in upright},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
