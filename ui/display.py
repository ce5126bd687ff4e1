"""Plain helpers behind the web app's pages (no Streamlit here): defaults, sample, tables, texts."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np
from PIL import Image

from core.faces.images import SUFFIXES, fit_within
from core.labels import EMOTIONS

PREFERRED_PAIR = ("baseline", "masked")
UPLOAD_TYPES = tuple(suffix.lstrip(".") for suffix in SUFFIXES)  # what decode_image accepts

EMOJI = {
    "angry": "😠",
    "disgust": "🤢",
    "fear": "😨",
    "happy": "😄",
    "sad": "😢",
    "surprise": "😲",
    "neutral": "😐",
}

NO_FACE_TIPS = (
    "Use a photo where the face is at least about 40 pixels tall and faces the camera.",
    "Good, even light helps; strong back-light or deep shadow hides the face.",
    "Sunglasses, masks or a face turned far to the side can stop the detector.",
    "Very large group photos: crop to the people you care about.",
)

HOW_TO_GET_MODELS = (
    "Train one on the **Train** page, or from a terminal: "
    "`python -m core train --run-dir runs/baseline --save-as baseline`, then "
    "`python -m core train --run-dir runs/masked --scheme masked --attention-model baseline "
    "--save-as masked` for the cluster-masked one. Trained models are saved under `$FER_STUDIO_HOME/models` "
    "and appear here automatically."
)


def default_pair(names: Sequence[str]) -> tuple[str | None, str | None]:
    """Default models A and B: `baseline` and `masked` when registered, else the first two.

    With one model B is None; with none both are None.
    """
    names = list(names)
    chosen: list[str | None] = [name for name in PREFERRED_PAIR if name in names]
    for name in names:
        if len(chosen) >= 2:
            break
        if name not in chosen:
            chosen.append(name)
    chosen += [None, None]
    return chosen[0], chosen[1]


def model_keys(
    cards: Sequence[Mapping[str, Any]], names: Sequence[str | None]
) -> tuple[tuple[str, float], ...]:
    """(name, weights mtime) for each chosen name that is registered, without repeats.

    The mtime makes a cache keyed by it pick up a retrained model.
    """
    mtimes = {card["name"]: float(card["mtime"]) for card in cards}
    keys: list[tuple[str, float]] = []
    for name in names:
        if name is not None and name in mtimes and name not in [k for k, _ in keys]:
            keys.append((name, mtimes[name]))
    return tuple(keys)


@lru_cache(maxsize=1)
def sample_png() -> bytes:
    """The built-in sample photo (scikit-image's astronaut portrait, public domain) as PNG bytes.

    Read straight from the file scikit-image ships: importing skimage.data costs half a second.
    """
    return files("skimage").joinpath("data", "astronaut.png").read_bytes()


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Encode an image (PIL or uint8 array) as PNG, in memory."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def enlarge(array: np.ndarray, size: int = 192, smooth: bool = True) -> np.ndarray:
    """A small uint8 picture (H, W) or (H, W, 3) scaled up to size x size for display."""
    resample = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(np.asarray(array, dtype=np.uint8)).resize((size, size), resample))


def preview(image: Image.Image, side: int = 360) -> Image.Image:
    """A copy that fits in side x side pixels for display, never less than 1 pixel on a side.

    Streamlit's own downscaling rounds a very thin photo (721x1 shown 360 wide) to 0 rows and fails.
    """
    return fit_within(image, side)


def file_stem(name: str) -> str:
    """A file name without folders and extension, safe to reuse in download names."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-")
    return cleaned or "image"


def model_summary(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card fields a person wants first: what the model is and how it was made."""
    training = card.get("training") or {}
    return {
        "name": card.get("name"),
        "scheme": card.get("scheme", "?"),
        "architecture": card.get("architecture", "?"),
        "input size": (card.get("preprocessing") or {}).get("input_size"),
        "epochs": training.get("epochs"),
        "best epoch": card.get("best_epoch"),
        "created": card.get("created"),
        "evaluations": len(card.get("evaluations") or {}),
    }


def evaluation_keys(evaluations: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every dataset key any model was evaluated on, in first-seen order.

    `evaluations` maps a model name to its card's "evaluations" dict.
    """
    keys: list[str] = []
    for per_model in evaluations.values():
        keys += [k for k in per_model if k not in keys]
    return keys


def metrics_rows(evaluations: Mapping[str, Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per model evaluated on `key`: accuracy with its 95 % interval, macro-F1, images."""
    rows = []
    for name, per_model in evaluations.items():
        metrics = per_model.get(key)
        if not metrics:
            continue
        low, high = metrics.get("accuracy_95ci", (float("nan"), float("nan")))
        rows.append(
            {
                "model": name,
                "accuracy": round(100 * metrics["accuracy"], 2),
                "95% interval": f"{100 * low:.1f} to {100 * high:.1f}",
                "macro-F1": round(100 * metrics["macro_f1"], 2),
                "images": metrics.get("count"),
            }
        )
    return rows


def per_class_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per emotion: precision, recall and F1 in percent, and support."""
    return [
        {
            "emotion": emotion,
            "precision": round(100 * metrics["per_class"][emotion]["precision"], 1),
            "recall": round(100 * metrics["per_class"][emotion]["recall"], 1),
            "F1": round(100 * metrics["per_class"][emotion]["f1"], 1),
            "support": metrics["per_class"][emotion]["support"],
        }
        for emotion in EMOTIONS
    ]


def support_counts(metrics: Mapping[str, Any]) -> dict[str, int]:
    """Images per class in an evaluation (its per-class support)."""
    return {emotion: int(metrics["per_class"][emotion]["support"]) for emotion in EMOTIONS}


def calibration_rows(calibrations: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per calibrated model (its card's "calibration"): temperature and ECE in percent."""

    def percent(value: Any) -> float | None:
        return None if value is None else round(100 * float(value), 2)

    return [
        {
            "model": name,
            "temperature": round(float(entry["temperature"]), 3),
            "fitted on": entry.get("fitted_on"),
            "ECE before": percent(entry.get("ece_before")),
            "ECE after": percent(entry.get("ece_after")),
            "ECE after (2-fold cross-fitted)": percent(entry.get("ece_cross_fitted")),
        }
        for name, entry in calibrations.items()
    ]


PART_LABELS = {
    "left_eye": "eye on the left",
    "right_eye": "eye on the right",
    "nose": "nose",
    "mouth": "mouth",
    "rest": "rest of the crop",
}


def part_share_labels(parts: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per model, its share on each facial part under a readable name (PART_LABELS), order kept."""
    return {
        name: {PART_LABELS.get(part, part.replace("_", " ")): float(share) for part, share in shares.items()}
        for name, shares in parts.items()
    }


def agreement_figures(agreement: Mapping[str, float]) -> list[tuple[str, str, str]]:
    """(label, value, help) for each agreement number of two maps; a missing or undefined one is "—"."""

    def shown(key: str, form: str) -> str:
        value = agreement.get(key)
        return "—" if value is None or value != value else format(value, form)

    return [
        (
            "Spearman ρ",
            shown("spearman", ".2f"),
            "Spearman's rank correlation of the two maps: 1, they rank the pixels alike; 0, unrelated; "
            "−1, opposite. — when a map is flat.",
        ),
        (
            "Top-20 % IoU",
            shown("top20_iou", ".0%"),
            "Intersection over union of each map's 20 % most attended pixels: 100 % is the same spot.",
        ),
    ]


# The stored saliency study (core.evaluation.saliency_study): its summary dict and mean maps, for the
# Saliency page.
STUDY_SUBSETS = {"all": "All faces", "correct": "Correctly classified only"}


@dataclass
class Curve:
    """A mean deletion curve from a stored study, in the shape ui.charts.deletion_chart reads."""

    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float


def study_command(a: str, b: str) -> str:
    """The command that computes and stores the study of models a and b."""
    return f"python -m core saliency-study --models {a} {b} --record"


def study_mean_maps(
    maps: Mapping[str, np.ndarray], names: Sequence[str], subset: str
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """From a study's arrays ("a_all", "difference_correct", ... each (7, S, S) in EMOTIONS order):
    {model: {emotion: mean map}} for A and B, and {emotion: mean of B − A}."""
    per_model = {
        name: dict(zip(EMOTIONS, maps[f"{role}_{subset}"], strict=True))
        for name, role in zip(names, ("a", "b"), strict=True)
    }
    return per_model, dict(zip(EMOTIONS, maps[f"difference_{subset}"], strict=True))


def study_counts(summary: Mapping[str, Any], subset: str) -> dict[str, str]:
    """Faces behind each emotion's mean maps: all of them, or those A and those B got right ("A/B")."""
    counts = summary["counts"]
    if subset == "all":
        return {e: str(counts["all"][e]) for e in EMOTIONS}
    a, b = summary["models"]
    return {e: f"{counts[f'correct {a}'][e]}/{counts[f'correct {b}'][e]}" for e in EMOTIONS}


def study_part_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per model, emotion (then "all") and facial part: mean share and its 95 % interval."""
    return [
        {
            "model": name,
            "emotion": emotion,
            "part": PART_LABELS.get(part, part),
            "share": interval["mean"],
            "low": interval["lo"],
            "high": interval["hi"],
        }
        for name in summary["models"]
        for emotion, parts in summary["parts"][name].items()
        for part, interval in parts.items()
    ]


def _points(interval: Mapping[str, float]) -> str:
    return f"{100 * interval['mean']:+.1f} ({100 * interval['lo']:+.1f} to {100 * interval['hi']:+.1f})"


def part_difference_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per emotion, B's share minus A's on each part in points, with the 95 % interval."""
    return [
        {"emotion": emotion, **{PART_LABELS.get(part, part): _points(i) for part, i in parts.items()}}
        for emotion, parts in summary["part_difference"].items()
    ]


def _auc(interval: Mapping[str, float]) -> str:
    return f"{interval['mean']:.3f} ({interval['lo']:.3f} to {interval['hi']:.3f})"


def faithfulness_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per model: deletion AUC of its maps and of random maps (95 % intervals), the gap, how often
    its map beats random on a face."""
    return [
        {
            "model": name,
            "faces": row["faces"],
            "deletion AUC (lower: faithful)": _auc(row["deletion_auc"]),
            "random maps' AUC": _auc(row["random_deletion_auc"]),
            "random − map": _auc(row["gap"]),
            "map beats random on": f"{row['beats_random']:.0%} of faces",
        }
        for name, row in summary["faithfulness"].items()
    ]


def layer_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per model and Grad-CAM layer: deletion AUC, the gap to random maps, how often it beats random."""
    return [
        {
            "model": name,
            "layer": layer,
            "deletion AUC": _auc(row["deletion_auc"]),
            "random − map": _auc(row["gap"]),
            "map beats random on": f"{row['beats_random']:.0%} of faces",
        }
        for name, rows in summary["layers"]["rows"].items()
        for layer, row in rows.items()
    ]


def study_curves(summary: Mapping[str, Any]) -> tuple[dict[str, Curve], dict[str, Curve]]:
    """Each model's mean deletion curve for its own maps and for random maps."""

    def curve(values: Sequence[float], auc: Mapping[str, float]) -> Curve:
        return Curve(np.linspace(0.0, 1.0, len(values)), np.asarray(values, dtype=float), float(auc["mean"]))

    rows = summary["faithfulness"]
    return (
        {name: curve(row["curve"], row["deletion_auc"]) for name, row in rows.items()},
        {name: curve(row["random_curve"], row["random_deletion_auc"]) for name, row in rows.items()},
    )


def sanity_sentence(name: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """What the randomisation check says about one model's maps, in words."""
    if not rows:
        return f"{name}: no layer with weights was reset."
    top, last = rows[0], rows[-1]
    spread = f"{last['mean']:.2f} ({last['lo']:.2f} to {last['hi']:.2f})"
    if last["hi"] < 0.5:
        verdict = "the maps depend on what the model learned, as they should"
    else:
        verdict = "the maps stay alike without the learned weights: they show the picture more than the model"
    return (
        f"{name}: resetting the top layer leaves a rank correlation of {top['mean']:.2f} with the trained "
        f"maps; resetting every layer leaves {spread}: {verdict}."
    )
