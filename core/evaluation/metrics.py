"""Metrics on labelled faces: accuracy, macro-F1, per-class report, confusion, occlusion."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from torch import nn

from core.data.datasets import FaceDataset
from core.labels import EMOTIONS
from core.models.predict import calibrated_softmax
from core.models.preprocess import to_tensor

# Rows of a 48x48 FER2013 crop covered by each occlusion, like the seed paper's
# drawn-on face mask (lower face) and its converse (eye band).
OCCLUSIONS: dict[str, tuple[int, int]] = {"eyes": (10, 24), "lower_face": (27, 48)}
# Faces per batch when a checkpoint is given: a shared server's gate gets a say about every second.
CHECKPOINT_BATCH = 32


@torch.inference_mode()
def dataset_logits(
    model: nn.Module,
    faces: FaceDataset | np.ndarray,
    preprocessing: dict | None = None,
    batch_size: int = 512,
    checkpoint: Callable[[], None] | None = None,
) -> np.ndarray:
    """The network's outputs (N, 7) for every face, in eval mode, before any softmax.

    `checkpoint()`, when given, is called before each batch (a server's gate: core.serving.gate.Turn),
    and batches are then at most CHECKPOINT_BATCH faces.
    """
    images = faces.images if isinstance(faces, FaceDataset) else faces
    if checkpoint is not None:
        batch_size = min(batch_size, CHECKPOINT_BATCH)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for i in range(0, len(images), batch_size):
            if checkpoint is not None:
                checkpoint()
            chunks.append(
                model(to_tensor(images[i : i + batch_size], preprocessing).to(device)).float().cpu().numpy()
            )
    finally:
        model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros((0, len(EMOTIONS)), dtype=np.float32)


def predict_dataset(
    model: nn.Module,
    faces: FaceDataset | np.ndarray,
    preprocessing: dict | None = None,
    batch_size: int = 512,
    temperature: float = 1.0,
    checkpoint: Callable[[], None] | None = None,
) -> np.ndarray:
    """Class probabilities (N, 7) for every face, in eval mode: softmax(logits / temperature)."""
    logits = torch.from_numpy(dataset_logits(model, faces, preprocessing, batch_size, checkpoint))
    return calibrated_softmax(logits, temperature).numpy()


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, log-loss, per-class precision/recall/F1/support and confusion matrix."""
    classes = list(range(len(EMOTIONS)))
    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1.0), labels=classes)),
        "count": int(len(labels)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(EMOTIONS)
        },
        "confusion": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


def accuracy_interval(accuracy: float, count: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95 % interval of an accuracy measured on `count` images."""
    if count == 0:
        return (0.0, 1.0)
    centre = (accuracy + z * z / (2 * count)) / (1 + z * z / count)
    half = z * np.sqrt(accuracy * (1 - accuracy) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return (float(centre - half), float(centre + half))


def paired_comparison(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> dict[str, Any]:
    """Two models' predictions on the same faces: who is right where, and the exact McNemar test.

    p_value is the two-sided exact binomial test on the faces exactly one model gets right:
    the chance of a split at least this uneven if both models were equally accurate.
    """
    from scipy.stats import binomtest

    labels, first, second = (np.asarray(a) for a in (labels, first, second))
    if not labels.shape == first.shape == second.shape:
        raise ValueError(f"shapes differ: labels {labels.shape}, {first.shape}, {second.shape}")
    first_right, second_right = first == labels, second == labels
    only_first = int((first_right & ~second_right).sum())
    only_second = int((second_right & ~first_right).sum())
    discordant = only_first + only_second
    return {
        "count": int(labels.size),
        "both_right": int((first_right & second_right).sum()),
        "only_first": only_first,
        "only_second": only_second,
        "both_wrong": int((~first_right & ~second_right).sum()),
        "p_value": float(binomtest(only_first, discordant, 0.5).pvalue) if discordant else 1.0,
    }


def occlude(images: np.ndarray, region: str) -> np.ndarray:
    """A copy of 48x48 crops with a band of rows set to black."""
    if region not in OCCLUSIONS:
        raise ValueError(f"unknown occlusion {region!r}; choose one of {', '.join(OCCLUSIONS)}")
    top, bottom = OCCLUSIONS[region]
    covered = images.copy()
    covered[:, top:bottom, :] = 0
    return covered


def _recalls(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Recall per class and overall accuracy ("all") of predicted classes."""
    result = {}
    for i, name in enumerate(EMOTIONS):
        mask = labels == i
        result[name] = float((predictions[mask] == i).mean()) if mask.any() else float("nan")
    result["all"] = float((predictions == labels).mean())
    return result


def _covered_report(
    model: nn.Module,
    faces: FaceDataset,
    variants: Mapping[str, tuple[str, Callable[[], np.ndarray]]],
    preprocessing: dict | None,
    clean: dict[str, float] | None,
    on_pass: Callable[[str], None] | None,
    checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Recall on clean faces (given, or measured here) and on each covered variant, and the drop.

    variants maps a report key to (a progress text, a function making the covered faces).
    """

    def recalls(images: np.ndarray) -> dict[str, float]:
        probabilities = predict_dataset(model, images, preprocessing, checkpoint=checkpoint)
        return _recalls(probabilities.argmax(axis=1), faces.labels)

    report: dict[str, Any] = {"clean": clean if clean is not None else recalls(faces.images)}
    for key, (text, make_images) in variants.items():
        if on_pass is not None:
            on_pass(text)
        covered = recalls(make_images())
        report[key] = {"accuracy": covered, "drop": {k: report["clean"][k] - covered[k] for k in covered}}
    return report


def occlusion_report(
    model: nn.Module,
    faces: FaceDataset,
    preprocessing: dict | None = None,
    clean: dict[str, float] | None = None,
    on_pass: Callable[[str], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Per-class recall on clean faces and with each occlusion, and the drop it causes.

    `clean` (recalls on the uncovered faces) saves a pass when the caller has them;
    `on_pass(text)`, when given, is called before each pass over covered faces.
    """
    variants = {
        region: (
            f"occlusion test: {region.replace('_', ' ')} covered",
            lambda r=region: occlude(faces.images, r),
        )
        for region in OCCLUSIONS
    }
    return _covered_report(model, faces, variants, preprocessing, clean, on_pass, checkpoint)


def region_removal_report(
    model: nn.Module,
    faces: FaceDataset,
    region_maps: np.ndarray,
    preprocessing: dict | None = None,
    clean: dict[str, float] | None = None,
    on_pass: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per-class recall on clean faces and with each attention region blacked out (the seed
    paper's clusters: `region_maps` (N, 48, 48) from core.explain.regions.dataset_regions, region 0
    the most attended), under keys region_1, region_2, …; `clean` and `on_pass` as in
    occlusion_report.
    """
    region_maps = np.asarray(region_maps)
    if region_maps.shape != faces.images.shape:
        raise ValueError(f"region maps {region_maps.shape} and faces {faces.images.shape} differ in shape")
    variants = {
        f"region_{k + 1}": (
            f"region test: region {k + 1} removed",
            lambda k=k: np.where(region_maps == k, 0, faces.images).astype(np.uint8),
        )
        for k in range(int(region_maps.max()) + 1)
    }
    return _covered_report(model, faces, variants, preprocessing, clean, on_pass)


def evaluate_model(
    model: nn.Module,
    faces: FaceDataset,
    preprocessing: dict | None = None,
    occlusion: bool = True,
    progress: Callable[[float, str], None] | None = None,
    region_maps: np.ndarray | None = None,
    temperature: float = 1.0,
    checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Full evaluation as a JSON-ready dict: metrics, 95 % interval, occlusion test and, given
    `region_maps`, the attention-region removal test (region_removal_report). Probabilities
    (and so the log-loss) are softmax(logits / temperature); the predictions do not depend on it.

    `progress(fraction, text)`, when given, is called before each pass over the faces and at the end;
    `checkpoint()` before each batch of faces (a server's gate: core.serving.gate.Turn.checkpoint).
    """
    report = progress or (lambda fraction, text: None)
    covered_passes = (len(OCCLUSIONS) if occlusion else 0) + (
        int(np.max(region_maps)) + 1 if region_maps is not None else 0
    )
    done = 0

    def next_pass(text: str) -> None:
        nonlocal done
        done += 1
        report(done / (1 + covered_passes), text)

    report(0.0, f"classifying {len(faces)} faces")
    probabilities = predict_dataset(
        model, faces, preprocessing, temperature=temperature, checkpoint=checkpoint
    )
    predictions = probabilities.argmax(axis=1)
    metrics = classification_metrics(faces.labels, probabilities)
    metrics["accuracy_95ci"] = list(accuracy_interval(metrics["accuracy"], metrics["count"]))
    # One digit per face, in dataset order: lets two models be compared face by face later.
    metrics["labels"] = "".join(str(int(label)) for label in faces.labels)
    metrics["predictions"] = "".join(str(int(p)) for p in predictions)
    clean = _recalls(predictions, faces.labels)
    if occlusion:
        metrics["occlusion"] = occlusion_report(model, faces, preprocessing, clean, next_pass, checkpoint)
    if region_maps is not None:
        metrics["region_removal"] = region_removal_report(
            model, faces, region_maps, preprocessing, clean, next_pass
        )
    report(1.0, "done")
    return metrics
