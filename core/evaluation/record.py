"""Model cards: built from a training run and filled in by the evaluate command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.architectures import create_model
from core.data import FaceDataset, load_dataset
from core.evaluation import dataset_logits, evaluate_model
from core.preprocess import DEFAULT_PREPROCESSING
from core.registry import find_model, load_model, save_model, update_card
from core.train_options import portable_path
from core.training import hardware_description


def card_from_run(run_dir: Path, command: str | None = None) -> dict[str, Any]:
    """A model card (without metrics) from a run folder's config.json, metrics.jsonl and summary.json.

    A run registered before its last epoch says so: `epochs_completed` < `training.epochs`.
    """
    config = json.loads((run_dir / "config.json").read_text())
    summary = (
        json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    )
    metrics_file = run_dir / "metrics.jsonl"
    history = (
        [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    )
    best = max(history, key=lambda row: row["val_accuracy"]) if history else {}
    card: dict[str, Any] = {
        "architecture": config["architecture"],
        "arch_args": config.get("arch_args", {}),
        "preprocessing": {**DEFAULT_PREPROCESSING, "input_size": config.get("input_size", 48)},
        "scheme": config["scheme"],
        "training": {
            key: config.get(key)
            for key in (
                "data",
                "epochs",
                "batch_size",
                "optimizer",
                "lr",
                "weight_decay",
                "schedule",
                "label_smoothing",
                "class_weights",
                "augment",
                "ema_decay",
                "seed",
                "input_size",
            )
        },
        "epochs_completed": len(history),
        "train_seconds": round(sum(row["seconds"] for row in history), 1),
        "hardware": summary.get("hardware") or hardware_description(),
        "best_epoch": best.get("epoch"),
        "history": history,
        "command": command,
    }
    if config["scheme"] == "masked":
        card["masking"] = {
            key: config.get(key)
            for key in (
                "mask_mode",
                "mask_probability",
                "clusters",
                "cluster_scope",
                "attention_model",
                "cam_method",
            )
        }
    return card


def register_run(run_dir: Path, name: str, directory: Path | None = None, command: str | None = None) -> Path:
    """Save a run's best weights under `name` with a card, then evaluate it on the run's val data."""
    card = card_from_run(run_dir, command)
    module = create_model(card["architecture"], **card["arch_args"])
    module.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True))  # checks they fit
    path = save_model(module, card, name, directory)
    config = json.loads((run_dir / "config.json").read_text())
    evaluate_and_record(str(path), config.get("val_data") or config["data"], config.get("val_split") or "val")
    return path


def region_maps_from(model_name: str, faces: FaceDataset) -> np.ndarray:
    """The attention regions of labelled faces by a registered model (core.regions.dataset_regions)."""
    from core.regions import dataset_regions

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
    from core.ensemble import is_ensemble_name

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
    """Fit and measure temperature scaling (core.calibration) for each named model on a labelled
    split; with `record`, store each registered model's in its card under "calibration".

    An average ("A+B") is measured with its members' temperatures as fitted here (or as
    recorded in their cards when not named themselves) and gets "members" and, in "accuracy",
    its accuracy, interval, macro-F1 and a McNemar test against each member. Each network runs
    once over the faces. `corruption` (a name of core.corruptions.CORRUPTIONS, or "mixed")
    measures on damaged faces instead (see damaged()), to see how honest the confidence stays.
    """
    from core.calibration import average_report, calibration_report, scaled_probabilities
    from core.ensemble import is_ensemble_name

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
    from core.corruptions import CORRUPTIONS, corrupt_all

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
    from core.evaluation import accuracy_interval, classification_metrics, paired_comparison

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
