"""Model registry: a model is NAME.pt (tensors only) beside NAME.json (its model card).

Shipped models live in the repository's models/ folder; trained ones in
$FER_STUDIO_HOME/models. load_model() is the only way to get a classifier.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.architectures import create_model
from core.home import home_dir
from core.labels import EMOTIONS
from core.preprocess import DEFAULT_PREPROCESSING

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"


class ModelNotFound(LookupError):
    """No registered model by that name."""


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


def list_models() -> list[dict[str, Any]]:
    """Cards of every registered model (name, path and mtime added), shipped first."""
    cards: dict[str, dict[str, Any]] = {}
    for directory in model_dirs():
        if not directory.is_dir():
            continue
        for card_path in sorted(directory.glob("*.json")):
            weights = card_path.with_suffix(".pt")
            if not weights.exists() or card_path.stem in cards:
                continue
            try:
                card = json.loads(card_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            card.update(name=card_path.stem, path=str(weights), mtime=weights.stat().st_mtime)
            cards[card_path.stem] = card
    return list(cards.values())


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


def load_model(name: str) -> LoadedModel:
    """Rebuild a registered model from its card and load its weights (tensors only)."""
    weights = find_model(name)
    card = json.loads(weights.with_suffix(".json").read_text())
    if card.get("classes", list(EMOTIONS)) != list(EMOTIONS):
        raise ValueError(f"{weights}: class order {card['classes']} differs from {list(EMOTIONS)}")
    module = create_model(card["architecture"], **card.get("arch_args", {}))
    module.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    module.eval()
    card["name"] = weights.stem
    return LoadedModel(weights.stem, module, card)


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
