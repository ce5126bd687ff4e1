"""Compare where two models look on one face: facial parts, agreement, and whether each map is faithful.

Parts come from MTCNN's five landmarks mapped into the crop (eyes, nose, mouth, the rest). A map is
checked by deletion: its highest-ranked pixels are replaced step by step and the model's probability
for the explained class is read after each step, beside the same for random maps. grad-cam's own
metrics (pytorch_grad_cam/metrics) score one threshold per forward pass on raw logits and have no
deletion curve or AUC (jacobgil/pytorch-grad-cam#178), so the curve is written here: every step of
every map in one forward pass, on calibrated probabilities. See docs/saliency.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from core.explain.saliency import explain
from core.labels import CROP_SIZE, EMOTIONS
from core.models.predict import inference_copy, predict_proba
from core.models.preprocess import centre_offset
from core.models.registry import LoadedModel

FACE_PARTS = ("left_eye", "right_eye", "nose", "mouth", "rest")
# Where MTCNN puts the five landmarks (left eye, right eye, nose, left and right mouth corner, as seen
# in the picture) on a FER2013 val crop, as fractions of its side: the median over the faces found
# in 300 val crops upscaled to 192 px (241 found; `python -m core framing`, "landmarks").
DEFAULT_LANDMARKS = np.array(
    [[0.3207, 0.4017], [0.6899, 0.3958], [0.5072, 0.6124], [0.3486, 0.7955], [0.6584, 0.7902]]
)
# Part sizes as fractions of the inter-ocular distance d: each eye an ellipse (with its brow, so
# centred a little above the eye), the nose from between the eyes to just below its tip, the mouth
# from corner to corner with some margin, centred a little below the corners' line (the lower lip).
# Drawn in that order, each taking only what the ones before left.
EYE_AXES = (0.45, 0.36)
EYE_RAISE = 0.10
NOSE_AXES = (0.28, 0.45)
NOSE_RAISE = 0.30
MOUTH_MARGIN = 0.18
MOUTH_HALF_HEIGHT = 0.26
MOUTH_LOWER = 0.05
# What replaces removed pixels: the crop blurred (keeps brightness, drops detail), FER2013's mean
# gray, or black (what the cluster-masked training shows its model as "removed").
FILLS = ("blur", "mean", "black")
BLUR_RADIUS = 4.0
FER_MEAN_GRAY = 129
TOP_FRACTION = 0.2  # the CAM paper's threshold for the top-pixel IoU
RANDOM_GRID = 6  # random maps are noise on a 6x6 grid upscaled: blobs about as coarse as a CAM


def default_landmarks(size: int = CROP_SIZE) -> np.ndarray:
    """Typical landmark positions (5, 2) on a size x size FER2013-style crop, for crops without a photo."""
    return DEFAULT_LANDMARKS * size


def _ellipse(size: int, centre: np.ndarray, axes: tuple[float, float], angle: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    x, y = xs - centre[0], ys - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = x * cos + y * sin, -x * sin + y * cos
    return (u / max(axes[0], 1e-6)) ** 2 + (v / max(axes[1], 1e-6)) ** 2 <= 1.0


def part_masks(landmarks: np.ndarray, size: int = CROP_SIZE) -> dict[str, np.ndarray]:
    """One boolean mask (size, size) per FACE_PARTS, disjoint and together covering the crop.

    landmarks are MTCNN's five points (5, 2) in crop pixel coordinates (CropFrame.to_crop); parts
    are ellipses turned with the eye line and sized by the inter-ocular distance.
    """
    marks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    eye_line = right_eye - left_eye
    d = max(float(np.hypot(*eye_line)), 1.0)
    angle = math.atan2(eye_line[1], eye_line[0])
    up = np.array([math.sin(angle), -math.cos(angle)])  # the face's own up, in crop pixels
    eyes = [
        _ellipse(size, eye + EYE_RAISE * d * up, (EYE_AXES[0] * d, EYE_AXES[1] * d), angle)
        for eye in (left_eye, right_eye)
    ]
    mouth_centre = (mouth_left + mouth_right) / 2 - MOUTH_LOWER * d * up
    mouth_half = float(np.hypot(*(mouth_right - mouth_left))) / 2 + MOUTH_MARGIN * d
    mouth = _ellipse(size, mouth_centre, (mouth_half, MOUTH_HALF_HEIGHT * d), angle)
    nose_mask = _ellipse(size, nose + NOSE_RAISE * d * up, (NOSE_AXES[0] * d, NOSE_AXES[1] * d), angle)
    masks: dict[str, np.ndarray] = {}
    taken = np.zeros((size, size), dtype=bool)
    for name, mask in (("left_eye", eyes[0]), ("right_eye", eyes[1]), ("nose", nose_mask), ("mouth", mouth)):
        masks[name] = mask & ~taken
        taken |= masks[name]
    masks["rest"] = ~taken
    return {name: masks[name] for name in FACE_PARTS}


def part_shares(cam: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """The share of a map's mass (negatives clipped) on each part; they sum to 1. A map with no mass
    counts as flat: each part's share is its area."""
    values = np.clip(np.asarray(cam, dtype=np.float64), 0, None)
    total = values.sum()
    if total <= 0:
        values, total = np.ones_like(values), values.size
    return {name: float(values[mask].sum() / total) for name, mask in masks.items()}


def _visible(cam: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    return np.ones(np.shape(cam), dtype=bool) if region is None else np.asarray(region, dtype=bool)


def _top(values: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the top `fraction` values (exactly that many; ties broken by position)."""
    count = max(1, round(fraction * values.size))
    return np.argsort(-values, kind="stable")[:count]


def agreement(cam_a: np.ndarray, cam_b: np.ndarray, region: np.ndarray | None = None) -> dict[str, float]:
    """How much two maps agree over `region` (default: the whole map): Spearman's rank correlation
    (nan when a map is flat) and the IoU of each map's top 20 % pixels."""
    from scipy.stats import spearmanr

    inside = _visible(cam_a, region)
    a = np.asarray(cam_a, dtype=np.float64)[inside]
    b = np.asarray(cam_b, dtype=np.float64)[inside]
    rho = float("nan") if a.std() == 0 or b.std() == 0 else float(spearmanr(a, b).statistic)
    top_a, top_b = set(_top(a, TOP_FRACTION).tolist()), set(_top(b, TOP_FRACTION).tolist())
    return {"spearman": rho, "top20_iou": len(top_a & top_b) / len(top_a | top_b)}


@dataclass
class DeletionCurve:
    """The model's probability for the explained class after removing each fraction of the pixels it
    sees, highest-ranked first; auc is the area under it (lower: the map found what the model uses)."""

    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float
    fill: str = "blur"

    def at(self, fraction: float) -> float:
        """The probability after removing `fraction` of the pixels (interpolated between steps)."""
        return float(np.interp(fraction, self.fractions, self.probabilities))

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": [round(float(f), 4) for f in self.fractions],
            "probabilities": [round(float(p), 4) for p in self.probabilities],
            "auc": round(self.auc, 4),
            "fill": self.fill,
        }


def fill_image(crop: np.ndarray, fill: str = "blur") -> np.ndarray:
    """What removed pixels are replaced with (see FILLS), as a uint8 image the crop's size."""
    crop = np.asarray(crop, dtype=np.uint8)
    if fill == "blur":
        blurred = Image.fromarray(crop).filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
        return np.asarray(blurred, dtype=np.uint8)
    if fill == "mean":
        return np.full_like(crop, FER_MEAN_GRAY)
    if fill == "black":
        return np.zeros_like(crop)
    raise ValueError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")


def seen_region(model: LoadedModel, size: int = CROP_SIZE) -> np.ndarray:
    """The crop pixels the network sees (its centre input); the rest are never ranked or removed."""
    offset = centre_offset(model.preprocessing)
    region = np.zeros((size, size), dtype=bool)
    region[offset : size - offset, offset : size - offset] = True
    return region


def random_maps(count: int, size: int = CROP_SIZE, seed: int = 0) -> np.ndarray:
    """Seeded random maps (count, size, size): uniform noise on a coarse grid, upscaled bilinearly."""
    rng = np.random.default_rng(seed)
    grids = rng.random((count, RANDOM_GRID, RANDOM_GRID)).astype(np.float32)
    return np.stack(
        [
            np.asarray(Image.fromarray(g, mode="F").resize((size, size), Image.Resampling.BILINEAR))
            for g in grids
        ]
    )


def deletion_probabilities(
    model: LoadedModel,
    crops: np.ndarray,
    cams: np.ndarray,
    targets: np.ndarray | Sequence[int],
    steps: int = 10,
    fill: str = "blur",
    starts: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Deletion curves of many (crop, map) pairs: the probability of each target (N, steps + 1) after
    replacing fractions 0, 1/steps, ..., 1 of the pixels the network sees with fill_image, the
    highest-ranked first (ties in random order, seeded). Every step of every pair goes through the
    network in one batch; starts (the probabilities on the whole faces, when known) and the last step
    (everything removed, the same for every map of a crop) are not computed twice.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    crops = np.asarray(crops, dtype=np.uint8)
    count, size = len(crops), crops.shape[-1]
    if count == 0:
        return np.zeros((0, steps + 1))
    flat_cams = np.asarray(cams, dtype=np.float64).reshape(count, -1)
    inside = np.flatnonzero(seen_region(model, size))
    removed_counts = np.round(np.linspace(0.0, 1.0, steps + 1) * inside.size).astype(int)
    tie_break = np.random.default_rng(seed).random(inside.size)
    # rank[i, j]: where pixel inside[j] of pair i comes in its map's order (0 = removed first)
    order = np.zeros((count, inside.size), dtype=np.int64)
    for i, row in enumerate(flat_cams):
        order[i] = np.lexsort((tie_break, -row[inside]))
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(inside.size)[None].repeat(count, 0), axis=1)
    # One filled image per distinct crop (a face's own maps and random maps share it)
    first_of: dict[bytes, int] = {}
    which = np.array([first_of.setdefault(c.tobytes(), len(first_of)) for c in crops], dtype=np.int64)
    firsts = np.unique(which, return_index=True)[1]  # numbered in order of first appearance
    filled = np.stack([fill_image(crops[i], fill) for i in firsts]).reshape(len(firsts), -1)
    flat = crops.reshape(count, -1)
    middle = np.repeat(flat[:, None], max(steps - 1, 0), axis=1)  # (N, steps - 1, S*S)
    for k, removed in enumerate(removed_counts[1:-1]):
        gone = rank < removed
        middle[:, k, inside] = np.where(gone, filled[which][:, inside], flat[:, inside])
    head = crops if starts is None else crops[:0]
    batch = np.concatenate(
        [head.reshape(-1, size, size), middle.reshape(-1, size, size), filled.reshape(-1, size, size)]
    )
    probabilities = predict_proba(inference_copy(model), batch)
    targets = np.asarray(targets, dtype=np.int64)
    first = probabilities[: len(head)] if starts is None else None
    steps_p = probabilities[len(head) : len(head) + middle.shape[0] * middle.shape[1]].reshape(count, -1, 7)
    last = probabilities[len(head) + middle.shape[0] * middle.shape[1] :][which]
    rows = np.arange(count)
    begin = first[rows, targets] if first is not None else np.asarray(starts, dtype=np.float64)
    return np.concatenate([begin[:, None], steps_p[rows, :, targets], last[rows, targets][:, None]], axis=1)


def curve_auc(probabilities: np.ndarray, steps: int) -> np.ndarray:
    """Area under deletion curves (..., steps + 1) over the fractions 0 to 1 (trapezoids)."""
    return np.trapezoid(probabilities, np.linspace(0.0, 1.0, steps + 1), axis=-1)


def deletion_curves(
    model: LoadedModel,
    crop: np.ndarray,
    cams: Sequence[np.ndarray],
    target: int,
    steps: int = 10,
    fill: str = "blur",
    start: float | None = None,
    seed: int = 0,
) -> list[DeletionCurve]:
    """Deletion curves of several maps of one crop in one forward pass (see deletion_probabilities)."""
    crop = np.asarray(crop, dtype=np.uint8)
    crops = np.repeat(crop[None], len(cams), axis=0)
    starts = None if start is None else np.full(len(cams), start)
    values = deletion_probabilities(
        model, crops, np.stack(cams), [target] * len(cams), steps, fill, starts, seed
    )
    fractions = np.linspace(0.0, 1.0, steps + 1)
    return [DeletionCurve(fractions, row, float(curve_auc(row, steps)), fill) for row in values]


def deletion_curve(
    model: LoadedModel,
    crop: np.ndarray,
    cam: np.ndarray,
    target: int,
    steps: int = 10,
    fill: str = "blur",
) -> DeletionCurve:
    """The deletion curve of one map (see deletion_curves)."""
    return deletion_curves(model, crop, [cam], target, steps, fill)[0]


def mean_curve(curves: Sequence[DeletionCurve]) -> DeletionCurve:
    """The pointwise mean of curves over the same fractions."""
    probabilities = np.mean([c.probabilities for c in curves], axis=0)
    fractions = curves[0].fractions
    return DeletionCurve(
        fractions, probabilities, float(np.trapezoid(probabilities, fractions)), curves[0].fill
    )


def random_deletion_curve(
    model: LoadedModel,
    crop: np.ndarray,
    target: int,
    steps: int = 10,
    fill: str = "blur",
    count: int = 3,
    seed: int = 0,
) -> DeletionCurve:
    """The mean deletion curve of `count` seeded random maps (random_maps): the baseline a map must beat."""
    maps = random_maps(count, np.shape(crop)[0], seed)
    return mean_curve(deletion_curves(model, crop, list(maps), target, steps, fill))


@dataclass
class FaceComparison:
    """Two models' maps of one face and what they say: parts, agreement, faithfulness, in words.

    maps share one colour scale (0 to vmax); difference is B - A. deletion/random_deletion hold each
    model's curve for its own map and for random maps; targets the class each map explains.
    """

    names: tuple[str, str]
    crop: np.ndarray
    maps: dict[str, np.ndarray]
    targets: dict[str, int]
    confidences: dict[str, float]
    landmarks: np.ndarray
    parts: dict[str, dict[str, float]]
    agreement: dict[str, float]
    deletion: dict[str, DeletionCurve]
    random_deletion: dict[str, DeletionCurve]
    method: str = "gradcam"
    layer: str | None = None
    sentence: str = ""
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def difference(self) -> np.ndarray:
        """B's map minus A's, in [-1, 1]."""
        a, b = self.names
        return self.maps[b] - self.maps[a]

    @property
    def vmax(self) -> float:
        """The top of the shared colour scale (the larger of the two maps' maxima, at least 1e-6)."""
        return max(float(np.max(m)) for m in self.maps.values()) or 1e-6

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (no maps): per model parts, deletion AUCs and curves; the agreement."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 4)

        return {
            "models": {
                name: {
                    "emotion": EMOTIONS[self.targets[name]],
                    "confidence": round(self.confidences[name], 4),
                    "parts": {p: round(v, 4) for p, v in self.parts[name].items()},
                    "deletion_auc": round(self.deletion[name].auc, 4),
                    "random_deletion_auc": round(self.random_deletion[name].auc, 4),
                    "deletion": self.deletion[name].to_dict(),
                    "random_deletion": self.random_deletion[name].to_dict(),
                }
                for name in self.names
            },
            "agreement": {key: number(value) for key, value in self.agreement.items()},
            "method": self.method,
            "layer": self.layer or "last",
            "fill": self.deletion[self.names[0]].fill,
            "sentence": self.sentence,
        }


PART_WORDS = {"eyes": "the eyes", "nose": "the nose", "mouth": "the mouth"}


def part_groups(shares: dict[str, float]) -> dict[str, float]:
    """Shares of the eyes together, the nose, the mouth and the rest (for words)."""
    return {
        "eyes": shares["left_eye"] + shares["right_eye"],
        "nose": shares["nose"],
        "mouth": shares["mouth"],
        "rest": shares["rest"],
    }


def describe_parts(name: str, shares: dict[str, float]) -> str:
    """Where a map's mass sits among the eyes, nose and mouth, in words: 'A looks mostly at the mouth
    (48%)' or 'A spreads over the eyes and the mouth (35%, 30%)', with the share outside them."""
    groups = part_groups(shares)
    outside = groups.pop("rest")
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    (first, s1), (second, s2) = ranked[:2]
    if s1 >= 1.5 * s2:
        words = f"{name} looks mostly at {PART_WORDS[first]} ({s1:.0%})"
    else:
        words = f"{name} spreads over {PART_WORDS[first]} and {PART_WORDS[second]} ({s1:.0%}, {s2:.0%})"
    return f"{words}, {outside:.0%} outside eyes, nose and mouth"


def describe_deletion(name: str, curve: DeletionCurve, random: DeletionCurve) -> str:
    """'removing A's top 10% drops A's confidence from 89% to 31%, a random 10% to 85%'."""
    fraction = float(curve.fractions[1])
    start, after, chance = curve.probabilities[0], curve.probabilities[1], random.probabilities[1]
    top = f"removing {name}'s top {fraction:.0%}"
    if round(after * 100) == round(start * 100):
        change = f"leaves {name}'s confidence at {start:.0%}"
    else:
        change = (
            f"{'drops' if after < start else 'raises'} {name}'s confidence from {start:.0%} to {after:.0%}"
        )
    return f"{top} {change}, a random {fraction:.0%} to {chance:.0%}"


def comparison_sentence(comparison: FaceComparison) -> str:
    """The comparison in words: where each model looks, then what removing its top pixels does."""
    a, b = comparison.names
    looks = f"{describe_parts(a, comparison.parts[a])}; {describe_parts(b, comparison.parts[b])}"
    deletions = "; ".join(
        describe_deletion(name, comparison.deletion[name], comparison.random_deletion[name])
        for name in comparison.names
    )
    return f"{looks}. {deletions[0].upper()}{deletions[1:]}."


def compare_face(
    crop: np.ndarray,
    model_a: LoadedModel,
    model_b: LoadedModel,
    landmarks: np.ndarray | None = None,
    maps: dict[str, np.ndarray] | None = None,
    probabilities: dict[str, np.ndarray] | None = None,
    targets: dict[str, int] | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    steps: int = 10,
    random_count: int = 3,
    fill: str = "blur",
    seed: int = 0,
) -> FaceComparison:
    """Compare two models' maps of one 48x48 crop, each explaining its own predicted class (or the
    class in targets, by model name).

    maps and probabilities (by model name) are reused when given (an Analysis already holds them):
    a model without a map gets one Grad-CAM pass, which gives both; one without probabilities a
    forward pass. A given map must explain the model's target. landmarks (5, 2) in crop
    pixels place the parts; None uses default_landmarks. Per model: one forward pass of steps - 1
    deletion images per map (its own and random_count random ones) and the crop fully filled.
    """
    if model_a.name == model_b.name:
        raise ValueError("compare two different models")
    if random_count < 1:
        raise ValueError("random_count must be at least 1: a map is judged against random maps")
    crop = np.asarray(crop, dtype=np.uint8)
    size = crop.shape[0]
    maps = dict(maps or {})
    probabilities = dict(probabilities or {})
    wanted = dict(targets or {})
    for model in (model_a, model_b):
        if model.name not in maps:
            classes = [wanted[model.name]] if model.name in wanted else None
            heat, probs = explain(model, crop[None], classes, method, layer=layer)
            maps[model.name] = heat[0]
            probabilities.setdefault(model.name, probs[0])
        elif model.name not in probabilities:
            probabilities[model.name] = predict_proba(inference_copy(model), crop[None])[0]
    marks = default_landmarks(size) if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    masks = part_masks(marks, size)
    names = (model_a.name, model_b.name)
    chosen = {name: np.asarray(maps[name], dtype=np.float32) for name in names}
    targets = {name: wanted.get(name, int(np.argmax(probabilities[name]))) for name in names}
    confidences = {name: float(probabilities[name][targets[name]]) for name in names}
    region = seen_region(model_a, size) & seen_region(model_b, size)
    random = random_maps(random_count, size, seed)
    deletion, random_deletion = {}, {}
    for model in (model_a, model_b):
        name = model.name
        curves = deletion_curves(
            model, crop, [chosen[name], *random], targets[name], steps, fill, confidences[name], seed
        )
        deletion[name] = curves[0]
        random_deletion[name] = mean_curve(curves[1:])
    comparison = FaceComparison(
        names=names,
        crop=crop,
        maps=chosen,
        targets=targets,
        confidences=confidences,
        landmarks=marks,
        parts={name: part_shares(chosen[name], masks) for name in names},
        agreement=agreement(chosen[names[0]], chosen[names[1]], region),
        deletion=deletion,
        random_deletion=random_deletion,
        method=method,
        layer=layer,
        masks=masks,
    )
    comparison.sentence = comparison_sentence(comparison)
    return comparison
