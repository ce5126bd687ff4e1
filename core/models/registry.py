"""Model registry: a model is NAME.pt (tensors only) beside NAME.json (its model card).

Shipped models live in the repository's models/ folder; trained ones in
$FER_STUDIO_HOME/models. load_model() is the only way to get a classifier.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from torch import nn

from core.labels import EMOTIONS
from core.models.architectures import create_model
from core.models.preprocess import DEFAULT_PREPROCESSING
from core.paths import SHIPPED_MODELS, home_dir

SHIPPED_DIR = SHIPPED_MODELS


class ModelNotFound(LookupError):
    """No registered model by that name."""


class ModelLoadError(ValueError):
    """A registered model whose card or weights cannot be used; the message names it and says why."""


_EVALUATION = {
    "type": "object",
    "required": ["accuracy", "macro_f1", "per_class", "confusion"],
    "properties": {
        "accuracy": {"type": "number"},
        "macro_f1": {"type": "number"},
        "per_class": {"type": "object"},
        "confusion": {"type": "array"},
        "accuracy_95ci": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
}
# Temperature scaling (core.evaluation.calibration), written by `python -m core calibrate --record`.
_CALIBRATION = {
    "type": "object",
    "required": ["temperature"],
    "properties": {
        "temperature": {"type": "number", "exclusiveMinimum": 0},
        "fitted_on": {"type": "string"},
        "command": {"type": "string"},
        "ece_before": {"type": "number"},
        "ece_after": {"type": "number"},
        "ece_cross_fitted": {"type": "number"},
        "reliability_before": {"type": "object"},
        "reliability_after": {"type": "object"},
    },
}
_SHARE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
# `python -m core robustness --record` (core.evaluation.robustness): the corruption suite and faces in scenes.
_ROBUSTNESS = {
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "corruptions": {
            "type": "object",
            "required": ["clean", "mean", "accuracy"],
            "properties": {
                "clean": _SHARE,
                "mean": _SHARE,
                "accuracy": {"type": "object", "additionalProperties": {"type": "array", "items": _SHARE}},
            },
        },
        "scenes": {
            "type": "object",
            "required": ["accuracy", "recall", "found_accuracy", "bins"],
            "properties": {
                "accuracy": _SHARE,
                "recall": _SHARE,
                "found_accuracy": _SHARE,
                "bins": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["low", "high", "faces", "accuracy"],
                        "properties": {"accuracy": _SHARE, "recall": _SHARE, "found_accuracy": _SHARE},
                    },
                },
            },
        },
    },
}
# What the app, the CLI and the report read from a card without further checks.
CARD_SCHEMA = {
    "type": "object",
    "required": ["architecture"],
    "properties": {
        "architecture": {"type": "string"},
        "arch_args": {"type": "object"},
        "scheme": {"type": "string"},
        "classes": {"const": list(EMOTIONS)},
        "preprocessing": {
            "type": "object",
            "properties": {
                "crop_size": {"type": "integer", "minimum": 1},
                "input_size": {"type": "integer", "minimum": 1},
                "mean": {"type": "number"},
                "std": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "training": {"type": "object"},
        "history": {"type": "array", "items": {"type": "object"}},
        "evaluations": {"type": "object", "additionalProperties": _EVALUATION},
        "calibration": _CALIBRATION,
        "robustness": _ROBUSTNESS,
    },
}
_card_validator = Draft202012Validator(CARD_SCHEMA)


@dataclass(frozen=True)
class BrokenModel:
    """A model left out of the registry because its card cannot be used."""

    name: str
    card_path: Path
    reason: str


def model_dirs() -> list[Path]:
    """Folders searched for models: the shipped ones (FER_STUDIO_SHIPPED_MODELS overrides), then trained ones."""
    shipped = os.environ.get("FER_STUDIO_SHIPPED_MODELS")
    return [Path(shipped) if shipped else SHIPPED_DIR, home_dir() / "models"]


@dataclass
class LoadedModel:
    """A classifier in eval mode with its card; `lock` keeps forward passes out of a running Grad-CAM."""

    name: str
    module: nn.Module
    card: dict[str, Any]
    lock: AbstractContextManager[Any] = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.card.get("preprocessing", DEFAULT_PREPROCESSING)

    @property
    def temperature(self) -> float:
        """What the logits are divided by before the softmax: the card's calibration, else 1."""
        return float(self.card.get("calibration", {}).get("temperature", 1.0))


def read_card(card_path: Path) -> dict[str, Any]:
    """A model card checked against CARD_SCHEMA; ModelLoadError says what is wrong with it.

    The verdict is kept until the file changes (pages list the models on every run), and the
    card returned is a shallow copy: change its top-level keys only.
    """
    try:
        stat = card_path.stat()
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    known = _read_cards.get(card_path)
    if version is None or known is None or known[0] != version:
        try:
            known = (version, _check_card(card_path))
        except ModelLoadError as err:
            known = (version, str(err))
        if version is not None:
            _read_cards[card_path] = known
    if isinstance(known[1], str):
        raise ModelLoadError(known[1])
    return dict(known[1])


# card path -> (inode, mtime, size) when read, and the card or why it is unusable
_read_cards: dict[Path, tuple[tuple[int, int, int] | None, dict[str, Any] | str]] = {}


def _check_card(card_path: Path) -> dict[str, Any]:
    name = card_path.stem
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"model {name}: its card {card_path} cannot be read ({err})") from None
    except json.JSONDecodeError as err:
        raise ModelLoadError(
            f"model {name}: its card {card_path} is not valid JSON (line {err.lineno}: {err.msg})"
        ) from None
    problem = best_match(_card_validator.iter_errors(card))
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "the card"
        if list(problem.absolute_path) == ["classes"]:
            message = f"class order {card['classes']} differs from {list(EMOTIONS)}"
        else:
            message = _short(problem.message)
        raise ModelLoadError(f"model {name}: its card {card_path} is unusable ({where}: {message})")
    return card


def scan_models() -> tuple[list[dict[str, Any]], list[BrokenModel]]:
    """Cards of every usable registered model (name, path and mtime added; shipped first), and the
    models left out because their card is broken. The first folder holding NAME.pt and NAME.json wins."""
    cards: dict[str, dict[str, Any]] = {}
    broken: dict[str, BrokenModel] = {}
    for directory in model_dirs():
        if not directory.is_dir():
            continue
        for card_path in sorted(directory.glob("*.json")):
            weights = card_path.with_suffix(".pt")
            name = card_path.stem
            if not weights.exists() or name in cards or name in broken:
                continue
            try:
                card = read_card(card_path)
            except ModelLoadError as err:
                broken[name] = BrokenModel(name, card_path, str(err))
                continue
            card.update(name=name, path=str(weights), mtime=weights.stat().st_mtime)
            cards[name] = card
    return list(cards.values()), list(broken.values())


def list_models() -> list[dict[str, Any]]:
    """Cards of every usable registered model (name, path and mtime added), shipped first."""
    return scan_models()[0]


def broken_models() -> list[BrokenModel]:
    """Registered models whose card is broken (not valid JSON, or not what CARD_SCHEMA describes)."""
    return scan_models()[1]


def find_model(name: str) -> Path:
    """Path of the weights of a model given by registry name or by a .pt/.json path."""
    candidate = Path(name)
    if candidate.suffix in (".pt", ".json") and candidate.with_suffix(".pt").exists():
        return candidate.with_suffix(".pt")
    for directory in model_dirs():
        weights = directory / f"{name}.pt"
        if weights.exists() and weights.with_suffix(".json").exists():
            return weights
    known = ", ".join(c["name"] for c in list_models()) or "none"
    raise ModelNotFound(f"no model named {name!r}; registered models: {known}")


def load_registered(name: str) -> LoadedModel:
    """Rebuild a registered model from its card and load its weights (tensors only).

    ModelNotFound when there is no such model; ModelLoadError, naming the model and the cause,
    when its card or weights cannot be used. Callers use core.models.loading.load_model, which
    also knows averages ("A+B").
    """
    weights = find_model(name)
    card = read_card(weights.with_suffix(".json"))
    label = weights.stem
    try:
        module = create_model(card["architecture"], **card.get("arch_args", {}))
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"model {label}: its card describes no buildable network ({err})") from None
    state = read_weights(weights, label)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError) as err:
        raise ModelLoadError(
            f"model {label}: its weights {weights} do not fit its card's {card['architecture']} "
            f"network ({_short(str(err))})"
        ) from None
    module.eval()
    card["name"] = label
    return LoadedModel(label, module, card)


def is_registered(name: str) -> bool:
    """Whether NAME.pt and NAME.json are in one of the model folders."""
    return any((d / f"{name}.pt").exists() and (d / f"{name}.json").exists() for d in model_dirs())


def read_weights(path: Path, name: str) -> dict[str, torch.Tensor]:
    """A weights file's tensors (torch.load with weights_only); ModelLoadError if it is not one."""
    try:
        if path.stat().st_size == 0:
            reason = "the file is empty"
        else:
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        reason = "it is not a tensors-only PyTorch file (torch.load with weights_only=True refused it)"
    except Exception as err:  # a parser of arbitrary bytes: truncated, damaged or unreadable files
        reason = f"the file is damaged or cut short ({_short(str(err)) or type(err).__name__})"
    raise ModelLoadError(f"model {name}: its weights {path} cannot be loaded: {reason}")


def _short(text: str, limit: int = 160) -> str:
    """The first sentence of a library's error message, cut to `limit` characters."""
    first = " ".join(text.split()).split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def save_model(
    module: nn.Module | dict[str, torch.Tensor],
    card: dict[str, Any],
    name: str,
    directory: Path | None = None,
) -> Path:
    """Write NAME.pt and NAME.json atomically (weights first, card last); returns the .pt path."""
    if "architecture" not in card:
        raise ValueError("a model card needs 'architecture'")
    directory = directory or home_dir() / "models"
    directory.mkdir(parents=True, exist_ok=True)
    state = module.state_dict() if isinstance(module, nn.Module) else module
    full_card = {
        "classes": list(EMOTIONS),
        "preprocessing": dict(DEFAULT_PREPROCESSING),
        "arch_args": {},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **card,
        "name": name,
    }
    weights = directory / f"{name}.pt"
    temporary = directory / f".{name}.pt.tmp"
    # No copies: tensors that share storage (a layer named twice, as cam_layer is) are saved once.
    torch.save({k: v.detach() for k, v in state.items()}, temporary)
    os.replace(temporary, weights)
    card_temporary = directory / f".{name}.json.tmp"
    card_temporary.write_text(json.dumps(full_card, indent=2) + "\n")
    os.replace(card_temporary, weights.with_suffix(".json"))
    return weights


def update_card(name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set top-level keys of a registered model's card, written atomically; the card must stay
    valid (ModelLoadError otherwise, leaving the file as it was). Returns the new card."""
    card_path = find_model(name).with_suffix(".json")
    card = {**json.loads(card_path.read_text(encoding="utf-8")), **changes}
    problem = best_match(_card_validator.iter_errors(card))
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "the card"
        raise ModelLoadError(f"model {card_path.stem}: not recorded ({where}: {_short(problem.message)})")
    temporary = card_path.with_name(f".{card_path.stem}.json.tmp")
    temporary.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(temporary, card_path)
    return card
