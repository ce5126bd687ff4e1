"""Where two models look on FER2013 val, per emotion (the seed paper's Figure 5), and whether to trust it.

For each model, on the same val faces, each explained for its true class: the mean map per emotion
(all faces, and only those classified correctly), the share of each map on the eyes, nose, mouth and
the rest (95 % bootstrap intervals), the paper's claim in words (fear: does the masked model look
more at the mouth?), faithfulness (deletion AUC against random maps, core.explain.compare) per
Grad-CAM layer and for the chosen one, and a sanity check after Adebayo et al. 2018: the weights
randomised layer by layer from the top, and the rank correlation of the maps with the trained
model's after each reset. Stored beside the model cards (JSON checked by STUDY_SCHEMA, mean maps
in an .npz) for the pages: load_study. See docs/saliency.md.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from core.data.datasets import FaceDataset
from core.evaluation.saliency_store import STUDY_VERSION, span
from core.evaluation.saliency_store import SaliencyStudy as SaliencyStudy  # the pages' names, from here too
from core.evaluation.saliency_store import StudyError as StudyError
from core.evaluation.saliency_store import load_study as load_study
from core.explain.compare import (
    FACE_PARTS,
    agreement,
    curve_auc,
    default_landmarks,
    deletion_probabilities,
    part_masks,
    part_shares,
    random_maps,
    seen_region,
)
from core.explain.saliency import explain
from core.faces.detection import FaceDetector
from core.labels import EMOTIONS
from core.models.architectures import cam_layer_choices, cam_layers
from core.models.registry import LoadedModel

DEFAULT_LIMIT = 600
LAYER_FACES = 200
SANITY_FACES = 64
BOOTSTRAP = 1000
CHUNK = 32  # faces per deletion batch (each gives 2 x (steps - 1) + 1 images)
CLAIM = ("fear", "mouth")  # the seed paper: the masked model looks more at the mouth on fear


def bootstrap(values: np.ndarray, rng: np.random.Generator, reps: int = BOOTSTRAP) -> list[dict[str, float]]:
    """Mean and 95 % percentile-bootstrap interval of each column of values (n, k)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if len(values) == 0:
        return [{"mean": 0.0, "lo": 0.0, "hi": 0.0} for _ in range(values.shape[1])]
    means = values[rng.integers(0, len(values), (reps, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5], axis=0)
    return [
        {"mean": round(float(m), 4), "lo": round(float(a), 4), "hi": round(float(b), 4)}
        for m, a, b in zip(values.mean(axis=0), lo, hi, strict=True)
    ]


def face_landmarks(
    detector: FaceDetector | None, crops: np.ndarray, upscale: int = 192, batch: int = 64
) -> tuple[np.ndarray, int]:
    """Landmarks (N, 5, 2) in crop pixels: MTCNN's on each crop upscaled (as `python -m core framing`),
    default_landmarks where it finds no face (or without a detector); and how many were found."""
    size = crops.shape[-1]
    marks = np.repeat(default_landmarks(size)[None], len(crops), axis=0)
    found = 0
    if detector is None:
        return marks, 0
    for start in range(0, len(crops), batch):
        photos = [
            Image.fromarray(crop).resize((upscale, upscale), Image.Resampling.BICUBIC).convert("RGB")
            for crop in crops[start : start + batch]
        ]
        for offset, faces in enumerate(detector.detect_same_size(photos)):
            if faces:
                marks[start + offset] = np.asarray(faces[0].landmarks) * size / upscale
                found += 1
    return marks, found


def _maps(
    model: LoadedModel,
    crops: np.ndarray,
    labels: np.ndarray,
    method: str,
    layer: str | None,
    tick: Callable[[int], None],
) -> tuple[np.ndarray, np.ndarray]:
    heat, probs = [], []
    for start in range(0, len(crops), 64):
        h, p = explain(model, crops[start : start + 64], labels[start : start + 64], method, layer=layer)
        heat.append(h)
        probs.append(p)
        tick(len(h))
    return np.concatenate(heat), np.concatenate(probs)


def _deletion(
    model: LoadedModel,
    crops: np.ndarray,
    cams: np.ndarray,
    labels: np.ndarray,
    starts: np.ndarray,
    steps: int,
    fill: str,
    seed: int,
    tick: Callable[[int], None],
) -> np.ndarray:
    """Deletion curves (N, steps + 1), CHUNK faces per forward pass."""
    rows = []
    for start in range(0, len(crops), CHUNK):
        part = slice(start, start + CHUNK)
        rows.append(
            deletion_probabilities(
                model, crops[part], cams[part], labels[part], steps, fill, starts[part], seed
            )
        )
        tick(len(crops[part]))
    return np.concatenate(rows)


def parameter_layers(module: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The layers with weights in forward order, each conv or linear with the batch norm after it."""
    groups: list[tuple[str, list[nn.Module]]] = []
    for name, child in module.named_modules():
        if list(child.children()) or not any(True for _ in child.parameters(recurse=False)):
            continue
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and groups:
            groups[-1][1].append(child)
        else:
            groups.append((name, [child]))
    return groups


def cascading_randomisation(
    model: LoadedModel,
    crops: np.ndarray,
    labels: np.ndarray,
    trained: np.ndarray,
    method: str,
    layer: str | None,
    rng: np.random.Generator,
    seed: int,
    tick: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Adebayo et al.'s cascading test: reset the weights layer by layer from the top and, after each
    reset, the mean Spearman correlation (95 % interval) of the maps with the trained model's."""
    copy_module = copy.deepcopy(model.module).eval()
    randomised = LoadedModel(f"{model.name}-randomised", copy_module, model.card)
    region = seen_region(model, crops.shape[-1])
    torch.manual_seed(seed)
    rows = []
    for name, modules in reversed(parameter_layers(copy_module)):
        for module in modules:
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
        heat = explain(randomised, crops, labels, method, layer=layer)[0]
        rhos = np.array([agreement(t, h, region)["spearman"] for t, h in zip(trained, heat, strict=True)])
        flat = np.isnan(rhos)  # a flat map has no ranks: left out (and counted)
        interval = bootstrap(rhos[~flat], rng)[0]
        rows.append({"reset_to": name, **interval, "flat_maps": int(flat.sum())})
        tick(1)
    return rows


def run_study(
    models: tuple[LoadedModel, LoadedModel],
    data: FaceDataset,
    method: str = "gradcam",
    layer: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    steps: int = 10,
    fill: str = "blur",
    seed: int = 0,
    layer_faces: int = LAYER_FACES,
    sanity_faces: int = SANITY_FACES,
    detector: FaceDetector | None = None,
    show_progress: bool = True,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The study of two models on (a seeded random sample of `limit`) faces of a labelled dataset:
    its summary (STUDY_SCHEMA, without mean_maps) and the mean maps (see SaliencyStudy)."""
    a, b = models
    if a.name == b.name:
        raise ValueError("the study compares two different models")
    rng = np.random.default_rng(seed)
    chosen = np.arange(len(data))
    if limit is not None and limit < len(data):
        chosen = np.sort(rng.choice(len(data), limit, replace=False))
    crops, labels = data.images[chosen], data.labels[chosen].astype(np.int64)
    count = len(crops)
    if count == 0:
        raise ValueError("no faces to study")
    layer_faces, sanity_faces = min(layer_faces, count), min(sanity_faces, count)
    choices = {m.name: list(cam_layer_choices(m.module)) for m in models}
    total = count + sum(
        3 * count + layer_faces * 2 * len(choices[m.name]) + len(parameter_layers(m.module)) for m in models
    )
    bar = tqdm(total=total, unit="face", file=sys.stderr, disable=not show_progress, mininterval=0.5)
    seconds: dict[str, float] = {}

    def tick(n: int) -> None:
        bar.update(n)

    mark = time.perf_counter()
    bar.set_description("landmarks")
    marks, found = face_landmarks(detector, crops)
    bar.update(count)
    masks = [part_masks(m, crops.shape[-1]) for m in marks]
    seconds["landmarks"] = time.perf_counter() - mark

    heat: dict[str, np.ndarray] = {}
    probs: dict[str, np.ndarray] = {}
    shares: dict[str, np.ndarray] = {}
    curves: dict[str, np.ndarray] = {}
    random_curves: dict[str, np.ndarray] = {}
    randoms = random_maps(count, crops.shape[-1], seed)
    for model in models:
        name = model.name
        mark = time.perf_counter()
        bar.set_description(f"{name}: maps")
        heat[name], probs[name] = _maps(model, crops, labels, method, layer, tick)
        shares[name] = np.array(
            [[part_shares(h, m)[p] for p in FACE_PARTS] for h, m in zip(heat[name], masks, strict=True)]
        )
        seconds[f"{name} maps"] = time.perf_counter() - mark
        mark = time.perf_counter()
        bar.set_description(f"{name}: deletion")
        starts = probs[name][np.arange(count), labels]
        both = _deletion(
            model,
            np.concatenate([crops, crops]),
            np.concatenate([heat[name], randoms]),
            np.concatenate([labels, labels]),
            np.concatenate([starts, starts]),
            steps,
            fill,
            seed,
            tick,
        )
        curves[name], random_curves[name] = both[:count], both[count:]
        seconds[f"{name} deletion"] = time.perf_counter() - mark

    layers: dict[str, Any] = {"faces": layer_faces, "rows": {}}
    for model in models:
        mark = time.perf_counter()
        bar.set_description(f"{model.name}: layers")
        sub = slice(0, layer_faces)
        random_auc = curve_auc(random_curves[model.name][sub], steps)
        rows = {}
        studied = cam_layers(model.module, layer)
        for choice in choices[model.name]:
            if cam_layers(model.module, choice) == studied:  # the study's own layer: its curves already
                curve = curves[model.name][sub]
                tick(2 * layer_faces)
            else:
                h, p = _maps(model, crops[sub], labels[sub], method, choice, tick)
                starts = p[np.arange(layer_faces), labels[sub]]
                curve = _deletion(model, crops[sub], h, labels[sub], starts, steps, fill, seed, tick)
            auc = curve_auc(curve, steps)
            intervals = bootstrap(np.stack([auc, random_auc, random_auc - auc], axis=1), rng)
            rows[choice] = {
                "deletion_auc": intervals[0],
                "random_deletion_auc": intervals[1],
                "gap": intervals[2],
                "beats_random": round(float((auc < random_auc).mean()), 4),
            }
        layers["rows"][model.name] = rows
        seconds[f"{model.name} layers"] = time.perf_counter() - mark

    sanity: dict[str, Any] = {"faces": sanity_faces, "rows": {}}
    for model in models:
        mark = time.perf_counter()
        bar.set_description(f"{model.name}: sanity")
        sub = slice(0, sanity_faces)
        sanity["rows"][model.name] = cascading_randomisation(
            model, crops[sub], labels[sub], heat[model.name][sub], method, layer, rng, seed, tick
        )
        seconds[f"{model.name} sanity"] = time.perf_counter() - mark
    bar.close()

    correct = {name: probs[name].argmax(axis=1) == labels for name in heat}
    summary: dict[str, Any] = {
        "version": STUDY_VERSION,
        "models": [a.name, b.name],
        "method": method,
        "layer": layer or "last",
        "explained": "true class",
        "fill": fill,
        "steps": steps,
        "faces": count,
        "landmarks_found": found,
        "counts": {
            "all": _counts(labels),
            **{f"correct {name}": _counts(labels[correct[name]]) for name in heat},
            "correct both": _counts(labels[correct[a.name] & correct[b.name]]),
        },
        "accuracy": {name: round(float(correct[name].mean()), 4) for name in heat},
        "parts": {name: _parts_by_emotion(shares[name], labels, rng) for name in heat},
        "part_difference": _parts_by_emotion(shares[b.name] - shares[a.name], labels, rng),
        "faithfulness": {name: _faithfulness(curves[name], random_curves[name], steps, rng) for name in heat},
        "layers": layers,
        "sanity": sanity,
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
    }
    summary["claim"] = claim(summary)
    maps = _mean_maps(heat[a.name], heat[b.name], labels, correct[a.name], correct[b.name])
    return summary, maps


def _counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(EMOTIONS))
    return {emotion: int(n) for emotion, n in zip(EMOTIONS, counts, strict=True)}


def _parts_by_emotion(shares: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    result = {}
    for index, emotion in [*enumerate(EMOTIONS), (-1, "all")]:
        values = shares if index < 0 else shares[labels == index]
        result[emotion] = dict(zip(FACE_PARTS, bootstrap(values, rng), strict=True))
    return result


def _faithfulness(
    curves: np.ndarray, random_curves: np.ndarray, steps: int, rng: np.random.Generator
) -> dict[str, Any]:
    auc, random_auc = curve_auc(curves, steps), curve_auc(random_curves, steps)
    intervals = bootstrap(np.stack([auc, random_auc, random_auc - auc], axis=1), rng)
    return {
        "faces": len(curves),
        "deletion_auc": intervals[0],
        "random_deletion_auc": intervals[1],
        "gap": intervals[2],
        "beats_random": round(float((auc < random_auc).mean()), 4),
        "curve": [round(float(v), 4) for v in curves.mean(axis=0)],
        "random_curve": [round(float(v), 4) for v in random_curves.mean(axis=0)],
    }


def _mean_maps(
    heat_a: np.ndarray, heat_b: np.ndarray, labels: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray
) -> dict[str, np.ndarray]:
    size = heat_a.shape[-1]

    def per_emotion(heat: np.ndarray, keep: np.ndarray) -> np.ndarray:
        out = np.zeros((len(EMOTIONS), size, size), dtype=np.float32)
        for index in range(len(EMOTIONS)):
            chosen = keep & (labels == index)
            if chosen.any():
                out[index] = heat[chosen].mean(axis=0)
        return out

    everyone = np.ones(len(labels), dtype=bool)
    both = correct_a & correct_b
    return {
        "a_all": per_emotion(heat_a, everyone),
        "b_all": per_emotion(heat_b, everyone),
        "difference_all": per_emotion(heat_b - heat_a, everyone),
        "a_correct": per_emotion(heat_a, correct_a),
        "b_correct": per_emotion(heat_b, correct_b),
        "difference_correct": per_emotion(heat_b - heat_a, both),
    }


def claim(summary: dict[str, Any], emotion: str = CLAIM[0], part: str = CLAIM[1]) -> dict[str, Any]:
    """The paper's claim (B looks more at the part on the emotion than A) tested, in words, whatever the result."""
    a, b = summary["models"]
    share_a = summary["parts"][a][emotion][part]
    share_b = summary["parts"][b][emotion][part]
    difference = summary["part_difference"][emotion][part]
    if difference["lo"] > 0:
        verdict = f"{b} looks more at the {part} than {a}, as the paper says"
    elif difference["hi"] < 0:
        verdict = f"{b} looks less at the {part} than {a}, against the paper"
    else:
        verdict = (
            f"no clear difference: the interval of {b} - {a} includes 0, so the paper's claim is not shown"
        )
    faces = summary["counts"]["all"][emotion]
    points = f"{difference['mean'] * 100:+.1f} points ({difference['lo'] * 100:+.1f} to {difference['hi'] * 100:+.1f})"
    sentence = (
        f"{emotion} ({faces} faces): {b} puts {span(share_b)} on the {part}, {a} {span(share_a)}; "
        f"{b} - {a} = {points}: {verdict}."
    )
    return {
        "emotion": emotion,
        "part": part,
        a: share_a,
        b: share_b,
        "difference": difference,
        "sentence": sentence,
    }


def recorded_at() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
