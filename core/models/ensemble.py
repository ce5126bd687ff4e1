"""The average of registered models: a model named "A+B" whose probabilities are the mean of
A's and B's calibrated probabilities.

It is a LoadedModel like any other (load_model("baseline+masked")), so the pipeline, the CLI,
the video analysis and the evaluation take it unchanged. Its network outputs the log of the
averaged probabilities, so softmax of its output (temperature 1) is that average.
Grad-CAM reads both members' last convolutional blocks at once (grad-cam with two target
layers): each member's map for the ensemble's score, scaled to [0, 1], then averaged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from core.labels import EMOTIONS
from core.models.architectures import cam_layer
from core.models.registry import LoadedModel, ModelLoadError, ModelNotFound, load_registered

SEPARATOR = "+"


class ProbabilityAverage(nn.Module):
    """log(mean over members of softmax(member(x) / its temperature))."""

    def __init__(self, members: Sequence[nn.Module], temperatures: Sequence[float]) -> None:
        super().__init__()
        if len(members) != len(temperatures) or not members:
            raise ValueError("an average needs one temperature per member, and members")
        self.members = nn.ModuleList(members)
        self.temperatures = [float(t) for t in temperatures]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack(
            [
                torch.softmax(m(inputs) / t, dim=1)
                for m, t in zip(self.members, self.temperatures, strict=True)
            ]
        ).mean(dim=0)
        return torch.log(probabilities.clamp_min(1e-12))

    @property
    def cam_layers(self) -> list[nn.Module]:
        """Every member's Grad-CAM layer."""
        return [cam_layer(member) for member in self.members]


def is_ensemble_name(name: str) -> bool:
    """Whether a model name means an average of registered models ("A+B")."""
    return SEPARATOR in name and not name.endswith((".pt", ".json"))


def ensemble_name(members: Sequence[str]) -> str:
    """The registry name of the average of these models."""
    return SEPARATOR.join(members)


def load_ensemble(name: str) -> LoadedModel:
    """The average of the registered models named in "A+B[+…]"; ModelLoadError naming the
    member at fault when one cannot be loaded, or when the members cannot be averaged."""
    names = [part.strip() for part in name.split(SEPARATOR)]
    if len(names) < 2 or any(not part for part in names) or len(set(names)) != len(names):
        raise ModelLoadError(
            f"model {name}: an average names two or more different models, like baseline+masked"
        )
    members: list[LoadedModel] = []
    for part in names:
        try:
            members.append(load_registered(part))
        except (ModelLoadError, ModelNotFound) as err:
            raise ModelLoadError(f"model {name}: its member cannot be used ({err})") from None
    preprocessing = members[0].preprocessing
    for member in members[1:]:
        if member.preprocessing != preprocessing:
            raise ModelLoadError(
                f"model {name}: {member.name} and {members[0].name} take differently prepared faces "
                f"({member.preprocessing} vs {preprocessing}), so they cannot be averaged"
            )
    module = ProbabilityAverage([m.module for m in members], [m.temperature for m in members]).eval()
    return LoadedModel(name, module, ensemble_card(name, [m.card for m in members]))


def ensemble_card(name: str, member_cards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The card of an average: no weights of its own, its members' preprocessing and temperatures."""
    first = member_cards[0]
    return {
        "name": name,
        "architecture": "average",
        "scheme": "average",
        "members": [card["name"] for card in member_cards],
        "member_temperatures": [
            float(card.get("calibration", {}).get("temperature", 1.0)) for card in member_cards
        ],
        "classes": list(EMOTIONS),
        "preprocessing": dict(first.get("preprocessing") or {}),
    }


def ensemble_choices(
    cards: Sequence[Mapping[str, Any]], members: Sequence[str | None]
) -> list[dict[str, Any]]:
    """Cards to offer beside the registered ones: the average of `members` (the default pair)
    when both are registered, with the newest member's mtime (so retraining one reloads it)."""
    by_name = {card["name"]: card for card in cards}
    chosen = [by_name[name] for name in members if name is not None and name in by_name]
    if len(chosen) < 2:
        return []
    card = ensemble_card(ensemble_name([c["name"] for c in chosen]), chosen)
    card.update(mtime=max(float(c["mtime"]) for c in chosen), path="")
    return [card]
