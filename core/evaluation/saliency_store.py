"""The stored saliency study (core.evaluation.saliency_study): its JSON schema, writing it beside the
model cards, reading it back for the pages (load_study), and printing it as Markdown."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator

from core.explain.compare import FACE_PARTS
from core.labels import EMOTIONS
from core.models.registry import model_dirs

STUDY_VERSION = 1
MAP_KEYS = tuple(f"{role}_{subset}" for role in ("a", "b", "difference") for subset in ("all", "correct"))

_INTERVAL = {
    "type": "object",
    "required": ["mean", "lo", "hi"],
    "properties": {"mean": {"type": "number"}, "lo": {"type": "number"}, "hi": {"type": "number"}},
}
_PARTS = {"type": "object", "required": list(FACE_PARTS), "additionalProperties": _INTERVAL}
_PER_EMOTION = {"type": "object", "required": [*EMOTIONS, "all"], "additionalProperties": _PARTS}
STUDY_SCHEMA = {
    "type": "object",
    "required": [
        "version",
        "models",
        "method",
        "layer",
        "faces",
        "counts",
        "parts",
        "part_difference",
        "claim",
        "faithfulness",
        "layers",
        "sanity",
        "mean_maps",
    ],
    "properties": {
        "version": {"const": STUDY_VERSION},
        "models": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        "method": {"type": "string"},
        "layer": {"type": "string"},
        "explained": {"type": "string"},
        "faces": {"type": "integer", "minimum": 1},
        "landmarks_found": {"type": "integer", "minimum": 0},
        "counts": {"type": "object", "additionalProperties": {"type": "object"}},
        "accuracy": {"type": "object", "additionalProperties": {"type": "number"}},
        "parts": {"type": "object", "additionalProperties": _PER_EMOTION},
        "part_difference": _PER_EMOTION,
        "claim": {
            "type": "object",
            "required": ["emotion", "part", "sentence"],
            "properties": {"sentence": {"type": "string"}},
        },
        "faithfulness": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["faces", "deletion_auc", "random_deletion_auc", "gap", "beats_random"],
                "properties": {
                    "faces": {"type": "integer"},
                    "deletion_auc": _INTERVAL,
                    "random_deletion_auc": _INTERVAL,
                    "gap": _INTERVAL,
                    "beats_random": {"type": "number", "minimum": 0, "maximum": 1},
                    "curve": {"type": "array", "items": {"type": "number"}},
                    "random_curve": {"type": "array", "items": {"type": "number"}},
                },
            },
        },
        "layers": {"type": "object"},
        "sanity": {"type": "object"},
        "mean_maps": {"type": "string"},
        "seconds": {"type": "object"},
        "command": {"type": ["string", "null"]},
    },
}
_validator = Draft202012Validator(STUDY_SCHEMA)


class StudyError(ValueError):
    """A stored study that cannot be used; the message says why."""


@dataclass
class SaliencyStudy:
    """A stored study: the summary (STUDY_SCHEMA) and the mean maps, keyed "{role}_{subset}" with role
    a, b or difference (B - A) and subset all or correct, each (7, 48, 48) in EMOTIONS order."""

    summary: dict[str, Any]
    maps: dict[str, np.ndarray]
    path: Path


def study_name(a: str, b: str) -> str:
    return f"saliency-study_{a}_vs_{b}"


def load_study(a: str, b: str, directories: Sequence[Path] | None = None) -> SaliencyStudy | None:
    """The recorded study of models a and b (in that order) from the model folders, or None when there
    is none. StudyError when the file is there but unusable."""
    for directory in directories or model_dirs():
        path = Path(directory) / f"{study_name(a, b)}.json"
        if not path.exists():
            continue
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise StudyError(f"{path}: not readable JSON ({err})") from err
        problems = sorted(_validator.iter_errors(summary), key=lambda e: list(e.path))
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "top level"
            raise StudyError(f"{path}: {where}: {problems[0].message[:200]}")
        try:
            with np.load(path.with_name(summary["mean_maps"]), allow_pickle=False) as stored:
                maps = {key: stored[key] for key in stored.files}
        except (OSError, ValueError) as err:
            raise StudyError(f"{path}: its mean maps are unreadable ({err})") from err
        wrong = [k for k in MAP_KEYS if k not in maps or maps[k].ndim != 3 or len(maps[k]) != len(EMOTIONS)]
        if wrong:
            raise StudyError(f"{path}: its mean maps lack {', '.join(wrong)} (7 maps each)")
        return SaliencyStudy(summary, maps, path)
    return None


def write_study(summary: dict[str, Any], maps: dict[str, np.ndarray], directory: Path) -> Path:
    """Write the maps (.npz) then the summary (.json), each atomically; the JSON's path."""
    name = study_name(*summary["models"])
    maps_path = directory / f"{name}.npz"
    summary = {**summary, "mean_maps": maps_path.name}
    problems = list(_validator.iter_errors(summary))
    if problems:
        raise StudyError(f"study summary does not fit STUDY_SCHEMA: {problems[0].message[:200]}")
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{name}.npz.tmp"
    arrays: dict[str, Any] = {key: value.astype(np.float32) for key, value in maps.items()}
    with open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    os.replace(temporary, maps_path)
    path = directory / f"{name}.json"
    temporary = directory / f".{name}.json.tmp"
    temporary.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    os.replace(temporary, path)
    return path


def span(interval: dict[str, float]) -> str:
    """'31% (27-35%)': a share and its interval."""
    return f"{interval['mean']:.0%} ({interval['lo']:.0%}-{interval['hi']:.0%})"


def markdown(summary: dict[str, Any]) -> str:
    """The study as Markdown: parts per emotion (Figure 5's numbers), the claim, faithfulness per layer
    and for the chosen layer, and the sanity check."""
    a, b = summary["models"]
    lines = [
        f"Models {a} (A) and {b} (B), {summary['method']} at layer {summary['layer']}, {summary['faces']} val faces "
        f"explained for their true class; landmarks by MTCNN on {summary['landmarks_found']} faces, the "
        "typical ones on the rest.",
        "",
        "| emotion | faces | " + " | ".join(f"{p.replace('_', ' ')} A / B" for p in FACE_PARTS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in FACE_PARTS) + " |",
    ]
    for emotion in [*EMOTIONS, "all"]:
        faces = summary["faces"] if emotion == "all" else summary["counts"]["all"][emotion]
        cells = [
            f"{summary['parts'][a][emotion][p]['mean']:.0%} / {summary['parts'][b][emotion][p]['mean']:.0%}"
            for p in FACE_PARTS
        ]
        lines.append(f"| {emotion} | {faces} | " + " | ".join(cells) + " |")
    lines += ["", f"Claim: {summary['claim']['sentence']}", ""]
    lines += [
        "| model | faces | deletion AUC | random-map AUC | random - map | map beats random |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in (a, b):
        row = summary["faithfulness"][name]
        lines.append(
            f"| {name} | {row['faces']} | {_interval(row['deletion_auc'])} | {_interval(row['random_deletion_auc'])} "
            f"| {_interval(row['gap'])} | {row['beats_random']:.0%} |"
        )
    lines += [
        "",
        f"Per Grad-CAM layer ({summary['layers']['faces']} faces):",
        "",
        "| model | layer | deletion AUC | random - map | map beats random |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, rows in summary["layers"]["rows"].items():
        for layer, row in rows.items():
            lines.append(
                f"| {name} | {layer} | {_interval(row['deletion_auc'])} | {_interval(row['gap'])} "
                f"| {row['beats_random']:.0%} |"
            )
    lines += [
        "",
        f"Sanity (cascading randomisation from the top, {summary['sanity']['faces']} faces): Spearman "
        "of the maps with the trained model's after each reset",
        "",
        "| model | reset down to | Spearman (95 %) |",
        "| --- | --- | ---: |",
    ]
    for name, rows in summary["sanity"]["rows"].items():
        for row in rows:
            flat = f"; {row['flat_maps']} flat maps left out" if row["flat_maps"] else ""
            lines.append(
                f"| {name} | {row['reset_to']} | {row['mean']:.2f} ({row['lo']:.2f} to {row['hi']:.2f}){flat} |"
            )
    return "\n".join(lines)


def _interval(interval: dict[str, float]) -> str:
    return f"{interval['mean']:.3f} ({interval['lo']:.3f}-{interval['hi']:.3f})"
