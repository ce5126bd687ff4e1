"""The real-photo test: the corruption suite on FER2013 `val` and faces in scenes, as README tables.

`python -m core robustness` runs both (core.data.corruptions, core.evaluation.scenes) on the registered
models, prints Markdown tables and, with --record, stores the results in each model card
under "robustness" (what the Models page charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt_all
from core.data.datasets import FaceDataset
from core.evaluation.metrics import predict_dataset
from core.evaluation.scenes import WIDTH_BINS
from core.models.registry import LoadedModel, update_card


def subset(faces: FaceDataset, limit: int | None, seed: int = 0) -> FaceDataset:
    """At most `limit` faces drawn at random (seeded, kept in dataset order); all when limit is None."""
    if limit is None or limit >= len(faces):
        return faces
    if limit < 1:
        raise ValueError(f"--limit must be at least 1, not {limit}")
    chosen = np.sort(np.random.default_rng(seed).choice(len(faces), limit, replace=False))
    return faces.subset(chosen)


def corruption_suite(
    models: Sequence[LoadedModel], faces: FaceDataset, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Accuracy of every model on clean faces and under each corruption at each severity.

    The damaged faces are made once (seeded per corruption and severity) and shown to every
    model. Per model: {"count", "seed", "clean", "accuracy": {corruption: [severity 1..]},
    "mean"} where mean is over every corruption and severity (ImageNet-C's mean accuracy).
    """
    if len(faces) == 0:
        raise ValueError("no faces to corrupt")

    def accuracies(images: np.ndarray) -> dict[str, float]:
        return {
            model.name: float(
                (predict_dataset(model.module, images, model.preprocessing).argmax(1) == faces.labels).mean()
            )
            for model in models
        }

    clean = accuracies(faces.images)
    damaged: dict[str, list[dict[str, float]]] = {}
    for number, name in enumerate(CORRUPTIONS):
        damaged[name] = [
            accuracies(corrupt_all(faces.images, name, severity, seed=seed * 1000 + number * 10 + severity))
            for severity in range(1, SEVERITIES + 1)
        ]
    results = {}
    for model in models:
        table = {name: [rows[s][model.name] for s in range(SEVERITIES)] for name, rows in damaged.items()}
        results[model.name] = {
            "count": len(faces),
            "seed": seed,
            "clean": clean[model.name],
            "accuracy": table,
            "mean": float(np.mean([v for row in table.values() for v in row])),
        }
    return results


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def corruption_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per corruption, one column per model, severities 1/2/3 in each cell."""
    names = list(results)
    severities = "/".join(str(s) for s in range(1, SEVERITIES + 1))
    lines = [
        "| corruption | " + " | ".join(f"{name} (severity {severities})" for name in names) + " |",
        "| --- |" + " --- |" * len(names),
        "| clean | " + " | ".join(_percent(results[n]["clean"]) for n in names) + " |",
    ]
    for corruption in CORRUPTIONS:
        cells = [" / ".join(f"{100 * v:.1f}" for v in results[n]["accuracy"][corruption]) for n in names]
        lines.append(f"| {corruption.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines.append("| mean of all | " + " | ".join(_percent(results[n]["mean"]) for n in names) + " |")
    return "\n".join(lines)


def scenes_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per scenes run (min face size) and model: end-to-end accuracy (misses
    wrong), detection recall, accuracy of found faces, false detections, detection time (wall
    clock) and the pipeline's CPU time per photo."""
    header = [
        "min face (px)",
        "model",
        "faces",
        "end-to-end accuracy",
        "detection recall",
        "accuracy of found faces",
        "false detections",
        "detect ms/photo",
        "pipeline CPU ms/photo",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for result in results:
        for name, score in result["models"].items():
            cells = [
                str(result["min_face_size"]),
                name,
                str(score["faces"]),
                _percent(score["accuracy"]),
                _percent(score["recall"]),
                _percent(score["found_accuracy"]),
                str(result["false_detections"]),
                f"{1000 * result['detect_seconds_per_photo']:.0f}",
                f"{1000 * result['cpu_seconds_per_photo']:.0f}" if "cpu_seconds_per_photo" in result else "–",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def width_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: per face-width bin, detection recall and each model's end-to-end accuracy
    (accuracy of found faces in brackets), one column group per min face size."""
    header = ["face width (px)", "faces"]
    for result in results:
        size = result["min_face_size"]
        header += [f"recall @{size}", *(f"{name} @{size}" for name in result["models"])]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    first = next(iter(results[0]["models"].values())) if results else {"bins": []}
    for number, (low, high) in enumerate(WIDTH_BINS):
        cells = [f"{low}–{high}", str(first["bins"][number]["faces"])]
        for result in results:
            scores = list(result["models"].values())
            cells.append(_percent(scores[0]["bins"][number]["recall"]))
            cells += [
                f"{_percent(s['bins'][number]['accuracy'])} ({_percent(s['bins'][number]['found_accuracy'])})"
                for s in scores
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_scenes(result: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    """One model's part of a scenes run, with the run's shared figures, as a card stores it."""
    shared = {k: v for k, v in result.items() if k != "models"}
    return {**shared, **result["models"][name], "seed": seed}


def record(
    names: Sequence[str],
    command: str,
    corruptions: dict[str, dict[str, Any]] | None,
    scenes: dict[str, Any] | None,
    seed: int,
) -> None:
    """Store each model's results in its card under "robustness" (with the command behind them)."""
    for name in names:
        entry: dict[str, Any] = {
            "command": command,
            "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if corruptions is not None:
            entry["corruptions"] = corruptions[name]
        if scenes is not None:
            entry["scenes"] = model_scenes(scenes, name, seed)
        update_card(name, {"robustness": entry})
