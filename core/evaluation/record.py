"""Recording results in model cards: evaluate, calibrate and write what was measured into the card."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.data.datasets import FaceDataset, load_dataset
from core.evaluation.metrics import dataset_logits, evaluate_model
from core.models.loading import load_model
from core.models.registry import find_model, update_card
from core.paths import portable_path


def region_maps_from(model_name: str, faces: FaceDataset) -> np.ndarray:
    """The attention regions of labelled faces by a registered model (core.explain.regions.dataset_regions)."""
    from core.explain.regions import dataset_regions

    return dataset_regions(load_model(model_name), faces.images, faces.labels)


def evaluate_and_record(
    model_name: str,
    data: str,
    split: str | None = "val",
    occlusion: bool = True,
    regions_from: str | None = None,
) -> dict[str, Any]:
    """Evaluate a registered model on a dataset and store the result in its card under `evaluations`.

    regions_from names a registered model whose attention regions are removed one at a time
    (the region_removal test); use the same one for every model you compare.
    """
    from core.models.ensemble import is_ensemble_name

    if is_ensemble_name(model_name):
        raise ValueError(f"{model_name} is an average of registered models and has no card to record in")
    model = load_model(model_name)
    faces = load_dataset(data, split)
    result = evaluate_model(
        model.module,
        faces,
        model.preprocessing,
        occlusion=occlusion,
        region_maps=region_maps_from(regions_from, faces) if regions_from else None,
        temperature=model.temperature,
    )
    if regions_from:
        result["region_removal_from"] = Path(regions_from).stem
    result["data"] = str(data)
    result["split"] = split
    key = f"{Path(data).name}/{split}" if split else Path(data).name
    card = json.loads(find_model(model_name).with_suffix(".json").read_text(encoding="utf-8"))
    update_card(model_name, {"evaluations": {**(card.get("evaluations") or {}), key: result}})
    return result


def calibrate_models(
    names: Sequence[str],
    data: str,
    split: str | None = "val",
    record: bool = False,
    command: str | None = None,
    corruption: str | None = None,
    severity: int = 2,
) -> dict[str, dict[str, Any]]:
    """Fit and measure temperature scaling (core.evaluation.calibration) for each named model on a labelled
    split; with `record`, store each registered model's in its card under "calibration".

    An average ("A+B") is measured with its members' temperatures as fitted here (or as
    recorded in their cards when not named themselves) and gets "members" and, in "accuracy",
    its accuracy, interval, macro-F1 and a McNemar test against each member. Each network runs
    once over the faces. `corruption` (a name of core.data.corruptions.CORRUPTIONS, or "mixed")
    measures on damaged faces instead (see damaged()), to see how honest the confidence stays.
    """
    from core.evaluation.calibration import average_report, calibration_report, scaled_probabilities
    from core.models.ensemble import is_ensemble_name

    faces = load_dataset(data, split)
    where = f"{Path(data).name}/{split}" if split else Path(data).name
    if corruption is not None:
        if record:
            raise ValueError(
                "--record stores a temperature fitted on undamaged faces: leave out --corruption"
            )
        faces = FaceDataset(damaged(faces.images, corruption, severity), faces.labels, faces.sources)
        where += f", {corruption} at severity {severity}"
    logits: dict[str, np.ndarray] = {}
    temperatures: dict[str, float] = {}

    def raw(name: str) -> np.ndarray:
        if name not in logits:
            model = load_model(name)
            temperatures.setdefault(name, model.temperature)
            logits[name] = dataset_logits(model.module, faces, model.preprocessing)
        return logits[name]

    reports: dict[str, dict[str, Any]] = {}
    for name in names:
        if not is_ensemble_name(name):
            reports[name] = calibration_report(raw(name), faces.labels)
            temperatures[name] = reports[name]["temperature"]
    for name in names:
        if is_ensemble_name(name):
            load_model(name)  # a broken or unknown member fails here, with the registry's message
            members = [part.strip() for part in name.split("+")]
            member_logits = [raw(member) for member in members]
            report = average_report(member_logits, faces.labels, [temperatures[m] for m in members])
            member_probabilities = {
                m: scaled_probabilities(x, temperatures[m])
                for m, x in zip(members, member_logits, strict=True)
            }
            average = np.mean(list(member_probabilities.values()), axis=0)
            report["members"] = members
            report["accuracy"] = _accuracy_against(faces.labels, average, member_probabilities)
            reports[name] = report
    for name, report in reports.items():
        report.update(fitted_on=where, data=portable_path(data), split=split)
        if command:
            report["command"] = command
        if record and not is_ensemble_name(name):
            update_card(name, {"calibration": report})
    return {name: reports[name] for name in names}


def damaged(images: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """Faces damaged by a named corruption at a severity, or with "mixed" each face by one
    corruption drawn at random (seeded): photo-like faces with their labels kept."""
    from core.data.corruptions import CORRUPTIONS, corrupt_all

    if corruption != "mixed":
        return corrupt_all(images, corruption, severity, seed)
    names = list(CORRUPTIONS)
    drawn = np.random.default_rng(seed).integers(0, len(names), len(images))
    result = images.copy()
    for number, name in enumerate(names):
        chosen = np.flatnonzero(drawn == number)
        if len(chosen):
            result[chosen] = corrupt_all(images[chosen], name, severity, seed * 1000 + number)
    return result


def _accuracy_against(
    labels: np.ndarray, average: np.ndarray, members: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """Accuracy, its 95 % interval and macro-F1 of the average and of each member, and the
    McNemar test of the average against each member."""
    from core.evaluation.metrics import accuracy_interval, classification_metrics, paired_comparison

    rows = {}
    for name, probabilities in {"average": average, **members}.items():
        metrics = classification_metrics(labels, probabilities)
        rows[name] = {
            "accuracy": metrics["accuracy"],
            "accuracy_95ci": list(accuracy_interval(metrics["accuracy"], metrics["count"])),
            "macro_f1": metrics["macro_f1"],
        }
        if name != "average":
            rows[name]["versus_average"] = paired_comparison(
                labels, average.argmax(1), probabilities.argmax(1)
            )
    return rows
