"""Register a finished training run: its best weights and a model card built from its run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from core.evaluation.record import evaluate_and_record
from core.models.architectures import create_model
from core.models.preprocess import DEFAULT_PREPROCESSING
from core.models.registry import save_model
from core.training.loop import hardware_description


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
