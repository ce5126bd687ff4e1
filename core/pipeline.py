"""The one pipeline: decode → detect → crop → classify (every model) → explain.

The app, the CLI and the benchmark all call analyze(); none re-implements a step.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from core.explain.compare import FaceComparison, compare_face
from core.explain.saliency import attention_maps, explain
from core.faces.detection import Face, FaceDetector, crop_face
from core.faces.drawing import draw_labels
from core.faces.images import decode_image, fit_within, to_rgb
from core.faces.quality import FLAG_TEXT, readability_flags
from core.labels import EMOTIONS
from core.models.predict import inference_copy, predict_proba
from core.models.registry import LoadedModel
from core.serving.public import Limits

CSV_COLUMNS = ("image", "face", "x1", "y1", "x2", "y2", "model", "emotion", "confidence", *EMOTIONS, "flags")


@dataclass
class FaceResult:
    """One face: where it is, its 48x48 crop, each model's probabilities and heatmap, and why it may be
    read wrongly (core.faces.quality flags: "small", "blurred"; empty when nothing is wrong)."""

    face: Face
    crop: np.ndarray
    probabilities: dict[str, np.ndarray]
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    def warning(self) -> str:
        """The flags in words ("too small to read reliably"), empty when there are none."""
        return "; ".join(FLAG_TEXT[flag] for flag in self.flags)

    def top(self, model: str) -> tuple[str, float]:
        """The predicted emotion of a model and its probability."""
        probs = self.probabilities[model]
        index = int(np.argmax(probs))
        return EMOTIONS[index], float(probs[index])

    def agree(self) -> bool:
        """Whether every model predicts the same emotion."""
        return len({self.top(name)[0] for name in self.probabilities}) <= 1


@dataclass
class Analysis:
    """Everything the pipeline found in one photo.

    faces_left_out counts the faces found beyond the max_faces read (the smallest ones).
    """

    image: Image.Image
    faces: list[FaceResult]
    models: list[str]
    flip_tta: bool = False
    cam_method: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    faces_left_out: int = 0
    cam_layer: str | None = None  # the Grad-CAM layer of the heatmaps (None: each model's last block)
    cam_class: int | None = None  # the class every heatmap explains (None: each model's own prediction)

    def nbytes(self) -> int:
        """Bytes this result holds in arrays and pixels: what keeping it in a cache costs."""
        arrays = [result.crop for result in self.faces]
        for result in self.faces:
            arrays += [*result.probabilities.values(), *result.heatmaps.values()]
        pixels = self.image.width * self.image.height * len(self.image.getbands())
        return pixels + sum(np.asarray(a).nbytes for a in arrays)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result: boxes, landmarks and per-class probabilities per model."""
        return {
            "image_size": list(self.image.size),
            "faces_left_out": self.faces_left_out,
            "models": self.models,
            "flip_tta": self.flip_tta,
            "faces": [
                {
                    **result.face.as_dict(),
                    "flags": list(result.flags),
                    "predictions": {
                        name: {
                            "emotion": result.top(name)[0],
                            "confidence": round(result.top(name)[1], 4),
                            "probabilities": {
                                e: round(float(p), 4) for e, p in zip(EMOTIONS, probs, strict=True)
                            },
                        }
                        for name, probs in result.probabilities.items()
                    },
                }
                for result in self.faces
            ],
        }

    def to_csv(self, source: str = "") -> str:
        """One row per face and model: box, top emotion, confidence and every class probability."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(self.csv_rows(source))
        return buffer.getvalue()

    def csv_rows(self, source: str = "") -> list[list[Any]]:
        """The rows of to_csv, without the header (CSV_COLUMNS)."""
        rows = []
        for number, result in enumerate(self.faces, start=1):
            for name, probs in result.probabilities.items():
                emotion, confidence = result.top(name)
                rows.append(
                    [
                        source,
                        number,
                        *(round(v) for v in result.face.box),
                        name,
                        emotion,
                        f"{confidence:.4f}",
                        *(f"{p:.4f}" for p in probs),
                        " ".join(result.flags),
                    ]
                )
        return rows


def analyze(
    source: Image.Image | bytes,
    models: list[LoadedModel],
    detector: FaceDetector,
    cam_method: str | None = "gradcam",
    cam_class: int | None = None,
    flip_tta: bool = False,
    max_faces: int | None = None,
    max_pixels: int | None = None,
    work_side: int | None = None,
    cam_layer: str | None = None,
) -> Analysis:
    """Find every face, classify it with every model and (if cam_method) explain each prediction.

    source is encoded bytes (see decode_image; ImageError when unusable) or a Pillow image of
    any mode. cam_class None explains each model's own predicted class. Bytes of more than
    max_pixels are refused (ImageError); a photo longer than work_side is scaled down right
    after decoding, and boxes are in that copy's pixels. Only the max_faces largest faces
    (default: the detector's max_faces) are read; faces_left_out counts the rest. cam_layer names
    the layer Grad-CAM reads (core.models.architectures.cam_layer_choices; None: the last block).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    image = to_rgb(source) if isinstance(source, Image.Image) else decode_image(source, max_pixels=max_pixels)
    if work_side:
        image = fit_within(image, work_side)
    timings["decode"] = time.perf_counter() - started

    mark = time.perf_counter()
    found = detector.detect_all(image)
    faces = found[: detector.max_faces if max_faces is None else max_faces]
    timings["detect"] = time.perf_counter() - mark

    mark = time.perf_counter()
    crops = np.stack([crop_face(image, face) for face in faces]) if faces else np.zeros((0, 48, 48), np.uint8)
    timings["crop"] = time.perf_counter() - mark

    probabilities: dict[str, np.ndarray] = {}
    heatmaps: dict[str, np.ndarray] = {}
    timings["classify"] = timings["saliency"] = 0.0
    one_pass = bool(cam_method and faces and cam_class is None and not flip_tta)
    for model in models:
        mark = time.perf_counter()
        if one_pass and cam_method:  # cam_method: for the type checker, one_pass implies it
            # One forward and backward pass: the prediction and its Grad-CAM together.
            heatmaps[model.name], probabilities[model.name] = explain(
                model, crops, None, cam_method, layer=cam_layer
            )
            timings["saliency"] += time.perf_counter() - mark
        else:
            # Predictions only: the model's copy with batch norms folded (core.models.predict.inference_copy).
            probabilities[model.name] = predict_proba(inference_copy(model), crops, flip_tta)
            timings["classify"] += time.perf_counter() - mark

    results = [
        FaceResult(
            face=face,
            crop=crops[i],
            probabilities={name: probs[i] for name, probs in probabilities.items()},
            heatmaps={name: maps[i] for name, maps in heatmaps.items()},
            flags=readability_flags(face, crops[i]),
        )
        for i, face in enumerate(faces)
    ]
    analysis = Analysis(image, results, [m.name for m in models], flip_tta, cam_method if one_pass else None)
    analysis.faces_left_out = len(found) - len(faces)
    analysis.cam_layer = cam_layer if one_pass else None
    if cam_method and not one_pass:
        analysis = add_saliency(analysis, models, cam_method, cam_class, cam_layer)
    timings["saliency"] += analysis.timings.get("saliency", 0.0)
    timings["total"] = time.perf_counter() - started
    analysis.timings = timings
    return analysis


def classify_faces(
    image: Image.Image, faces: list[Face], models: list[LoadedModel]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Crop already found faces from a decoded photo or video frame and classify them with every
    model, all faces in one batch: the crops (N, 48, 48) and {model name: probabilities (N, 7)}."""
    crops = np.stack([crop_face(image, face) for face in faces]) if faces else np.zeros((0, 48, 48), np.uint8)
    return crops, {model.name: predict_proba(model, crops) for model in models}


def analyze_within(
    source: Image.Image | bytes,
    models: list[LoadedModel],
    detector: FaceDetector,
    limit: Limits,
    flip_tta: bool = False,
) -> Analysis:
    """analyze() without saliency, under a visitor's limits (pixels, working size, faces)."""
    return analyze(
        source,
        models,
        detector,
        None,
        None,
        flip_tta,
        max_faces=limit.max_faces,
        max_pixels=limit.max_pixels,
        work_side=limit.work_side,
    )


def add_saliency(
    analysis: Analysis,
    models: list[LoadedModel],
    cam_method: str,
    cam_class: int | None = None,
    cam_layer: str | None = None,
) -> Analysis:
    """A copy of an analysis with each model's heatmaps added (the app shows predictions first).

    cam_class None explains the class each model predicted in `analysis`; cam_layer as in analyze.
    """
    started = time.perf_counter()
    heatmaps: dict[str, np.ndarray] = {}
    if analysis.faces:
        crops = np.stack([result.crop for result in analysis.faces])
        for model in models:
            classes = (
                [cam_class] * len(crops)
                if cam_class is not None
                else [int(np.argmax(result.probabilities[model.name])) for result in analysis.faces]
            )
            heatmaps[model.name] = attention_maps(model, crops, classes, method=cam_method, layer=cam_layer)
    faces = [
        replace(result, heatmaps={name: maps[i] for name, maps in heatmaps.items()})
        for i, result in enumerate(analysis.faces)
    ]
    timings = {**analysis.timings, "saliency": time.perf_counter() - started}
    return replace(
        analysis,
        faces=faces,
        cam_method=cam_method,
        timings=timings,
        cam_layer=cam_layer,
        cam_class=cam_class,
    )


# The Analyze page's comparison: fewer deletion steps and one random map, so that one face's
# comparison costs two small forward passes (tests/harness/bench.py prints the time).
PAGE_STEPS = 5
PAGE_RANDOM_MAPS = 1


def compare_in_analysis(
    analysis: Analysis,
    face: int,
    model_a: LoadedModel,
    model_b: LoadedModel,
    cam_method: str | None = None,
    cam_layer: str | None = None,
    steps: int = PAGE_STEPS,
    random_count: int = PAGE_RANDOM_MAPS,
    fill: str = "blur",
) -> FaceComparison:
    """Compare where two models look on face number `face` (0-based) of an analysis.

    The heatmaps and probabilities the analysis holds are reused when they were made with the same
    method and layer (cam_method None: the analysis's own, else gradcam), so Grad-CAM runs only for a
    model without them; each map explains the class the analysis's map explains (the model's
    prediction, or cam_class). Parts come from the face's MTCNN landmarks mapped into its crop.
    """
    if not 0 <= face < len(analysis.faces):
        raise IndexError(f"face {face + 1} is not in this photo ({len(analysis.faces)} faces)")
    result = analysis.faces[face]
    method = cam_method or analysis.cam_method or "gradcam"
    same = analysis.cam_method == method and analysis.cam_layer == cam_layer
    maps = {name: heat for name, heat in result.heatmaps.items() if same}
    # The classes the stored maps explain; probabilities averaged with the mirrored face (flip_tta)
    # are not what the deletion steps measure, so then they are read again without.
    targets = {
        name: int(np.argmax(probs)) if analysis.cam_class is None else analysis.cam_class
        for name, probs in result.probabilities.items()
        if name in maps
    }
    probabilities = {} if analysis.flip_tta else {name: result.probabilities[name] for name in maps}
    landmarks = result.face.crop_frame().to_crop(result.face.landmarks, result.crop.shape[0])
    return compare_face(
        result.crop,
        model_a,
        model_b,
        landmarks,
        maps,
        probabilities,
        targets,
        method,
        cam_layer,
        steps,
        random_count,
        fill,
    )


def annotate(analysis: Analysis, model: str | None = None) -> Image.Image:
    """The photo with every face boxed and labelled with a model's emotion (default: the first)."""
    picture = analysis.image.copy()
    model = model or (analysis.models[0] if analysis.models else None)
    labels = []
    for number, result in enumerate(analysis.faces, start=1):
        label = f"{number}"
        if model is not None:
            emotion, confidence = result.top(model)
            label = f"{number}: {emotion} {confidence:.0%}"
        if result.flags:
            label += f" ({', '.join(result.flags)})"  # e.g. "(small)": too small to read reliably
        labels.append((result.face.crop_frame().corners(), label, result.agree()))
    draw_labels(picture, labels)
    return picture
