"""Classifier architectures for 48x48 grayscale faces, registered by name.

`create_model(name, **kwargs)` is the only way to build one; each architecture also
names the layer Grad-CAM should look at (`cam_layer`) and bounds the arguments it takes
(`check_arch_args`, which refuses oversized nets without building them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from core.labels import NUM_CLASSES

# Shipped nets have 4.8 M (vgg 64-128-256-512) and 11.2 M (resnet18) parameters; 20 M float32
# weights are 80 MB, and a net that size still trains on the CPU.
MAX_PARAMETERS = 20_000_000


@dataclass(frozen=True)
class ArgLimit:
    """The values one architecture argument accepts: a number in [low, high], or a list of them."""

    low: float
    high: float
    integer: bool = True
    max_items: int = 0  # above 0: a list of 1..max_items numbers

    def problem(self, value: Any) -> str | None:
        """Why `value` is refused, or None when it is accepted."""
        if self.max_items:
            if not isinstance(value, list | tuple) or not 1 <= len(value) <= self.max_items:
                return (
                    f"must be a list of 1 to {self.max_items} numbers, not {json.dumps(value, default=repr)}"
                )
            return next((p for p in map(self._number_problem, value) if p), None)
        return self._number_problem(value)

    def _number_problem(self, value: Any) -> str | None:
        kind = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not self.low <= value <= self.high:
            what = "whole numbers" if self.integer else "numbers"
            if self.low == self.high:
                return f"must be {self.low:g}, not {json.dumps(value, default=repr)}"
            return f"takes {what} from {self.low:g} to {self.high:g}, not {json.dumps(value, default=repr)}"
        return None


_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_LIMITS: dict[str, dict[str, ArgLimit]] = {}


def register(
    name: str, limits: dict[str, ArgLimit]
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make an architecture available to create_model under `name`.

    `limits` names every argument the architecture takes and the values it accepts.
    """

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = factory
        _LIMITS[name] = limits
        return factory

    return wrap


def architectures() -> list[str]:
    """Names accepted by create_model."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered architecture with 7 outputs in core.labels order."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(architectures())}")
    return _REGISTRY[name](**kwargs)


def check_arch_args(name: str, args: Any) -> int:
    """Refuse arguments `name` does not take, values outside its limits, or a net over
    MAX_PARAMETERS, without allocating it (parameters are counted on the meta device).

    Returns the parameter count; raises ValueError with a message that names the limit.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(architectures())}")
    if not isinstance(args, dict):
        raise ValueError(
            f'architecture arguments must be a JSON object such as {{"widths": [32, 64]}}, not {json.dumps(args, default=repr)}'
        )
    limits = _LIMITS[name]
    for key, value in args.items():
        if key not in limits:
            accepted = ", ".join(limits) or "none"
            raise ValueError(f"architecture {name} takes no argument {key!r} (it takes: {accepted})")
        problem = limits[key].problem(value)
        if problem:
            raise ValueError(f"architecture argument {key} of {name} {problem}")
    with torch.device("meta"):  # shapes only: nothing is allocated, even for a huge net
        parameters = sum(p.numel() for p in _REGISTRY[name](**args).parameters())
    if parameters > MAX_PARAMETERS:
        raise ValueError(
            f"{name} {json.dumps(args, default=repr)} would have {parameters:,} parameters; the limit is {MAX_PARAMETERS:,}"
        )
    return parameters


def cam_layer(model: nn.Module) -> nn.Module:
    """The last convolutional block: the layer Grad-CAM reads."""
    layer = getattr(model, "cam_layer", None)
    if not isinstance(layer, nn.Module):
        raise ValueError(f"{type(model).__name__} does not name a cam_layer")
    return layer


def cam_layer_choices(model: nn.Module) -> dict[str, nn.Module]:
    """The layers Grad-CAM can read, by name ("block1" finest ... "blockN" = cam_layer): the last
    activation at each resolution, before the next pooling. A model that names none offers only
    its cam_layer, as "last"; an average of models offers the choices its members share."""
    members = getattr(model, "members", None)
    if members is not None:
        per_member = [cam_layer_choices(member) for member in members]
        return {name: per_member[0][name] for name in per_member[0] if all(name in c for c in per_member)}
    choices = getattr(model, "cam_layer_choices", None)
    return dict(choices) if choices else {"last": cam_layer(model)}


def cam_layers(model: nn.Module, layer: str | None = None) -> list[nn.Module]:
    """The layers Grad-CAM reads: with layer None (or "last") a model's `cam_layers` (an average of
    models names one per member), else its one cam_layer; a named layer (see cam_layer_choices), or
    "last-K" (K blocks before the last), of the model or of each member. ValueError names the choices
    when the model has no such layer."""
    members = getattr(model, "members", None)
    if layer is None or layer == "last":
        layers = getattr(model, "cam_layers", None)
        return list(layers) if layers is not None else [cam_layer(model)]
    parts = list(members) if members is not None else [model]
    found = [_named_layer(cam_layer_choices(part), layer) for part in parts]
    if any(f is None for f in found):
        names = ", ".join(cam_layer_choices(model))
        raise ValueError(f"no Grad-CAM layer {layer!r} in this model; choose one of {names}")
    return [f for f in found if f is not None]


def _named_layer(choices: dict[str, nn.Module], layer: str) -> nn.Module | None:
    """A layer by its name, or "last-K": K blocks before the last (the same depth in any architecture)."""
    if layer.startswith("last-") and layer[5:].isdigit():
        names = list(choices)
        back = int(layer[5:])
        return choices[names[-1 - back]] if back < len(names) else None
    return choices.get(layer)


def _stage_ends(features: nn.Module) -> dict[str, nn.Module]:
    """block1..blockN of a plain conv stack: the module just before each max-pool, and the last one."""
    flat = [m for m in features.modules() if not list(m.children())]
    ends = [flat[i - 1] for i, m in enumerate(flat) if isinstance(m, nn.MaxPool2d) and i > 0]
    ends.append(flat[-1])
    return {f"block{i + 1}": module for i, module in enumerate(ends)}


def _drop_cam_alias(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load weights saved when `cam_layer` was a registered submodule (copies under `cam_layer.*`)."""
    for key in [k for k in state_dict if k.startswith(f"{prefix}cam_layer.")]:
        del state_dict[key]


class CamNet(nn.Module):
    """Base of the architectures. Each names its Grad-CAM layer with a `cam_layer` property,
    not an attribute: an attribute would register the layer twice and save its weights twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_load_state_dict_pre_hook(_drop_cam_alias)

    @property
    def cam_layer_choices(self) -> dict[str, nn.Module]:
        """Layers Grad-CAM can read, finest first (see cam_layer_choices); the last is cam_layer."""
        features = getattr(self, "features", None)
        if not isinstance(features, nn.Module):
            return {"last": cam_layer(self)}
        choices = _stage_ends(features)
        choices[list(choices)[-1]] = cam_layer(self)  # the same output; the same module as the default
        return choices


def _conv_bn(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


class SeedCNN(CamNet):
    """The seed paper's small CNN: 8 conv layers (16-64-128-128-128-128-64-16), 3 FC layers."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        widths = [16, 64, 128, 128, 128, 128, 64, 16]
        layers: list[nn.Module] = []
        in_ch = 1
        for i, width in enumerate(widths):
            layers += _conv_bn(in_ch, width)
            in_ch = width
            if i % 2 == 1:  # pool after every pair: 48 → 24 → 12 → 6 → 3
                layers += [nn.MaxPool2d(2), nn.Dropout(dropout * 0.5)]
        self.features = nn.Sequential(*layers[:-2])
        self.pool = nn.AdaptiveMaxPool2d(3)  # 3x3 at 48x48 input, and any other size
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 3 * 3, 256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, NUM_CLASSES),
        )

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class VGGNet(CamNet):
    """VGG-style net: blocks of 3x3 conv+BN+ReLU, max-pool between blocks, global pooling."""

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        depth: int = 2,
        hidden: int = 256,
        dropout: float = 0.4,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_ch = 1
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            for _ in range(depth):
                layers += _conv_bn(in_ch, width)
                in_ch = width
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_ch, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResNet18Gray(CamNet):
    """torchvision's ResNet-18 for 48x48 grayscale: 3x3 stem, no max-pool, 7 outputs."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        net = tv_resnet18(num_classes=NUM_CLASSES)
        if width != 64:
            raise ValueError("resnet18 supports width=64 only")
        net.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.net = net

    @property
    def cam_layer(self) -> nn.Module:
        return self.net.layer4

    @property
    def cam_layer_choices(self) -> dict[str, nn.Module]:
        return {f"block{i}": getattr(self.net, f"layer{i}") for i in range(1, 5)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_DROPOUT = ArgLimit(0.0, 0.9, integer=False)


@register("seed_cnn", {"dropout": _DROPOUT})
def seed_cnn(**kwargs: Any) -> nn.Module:
    return SeedCNN(**kwargs)


@register(
    "vgg",
    {
        # 5 blocks pool 4 times: 16x16, the smallest input size, ends at 1x1.
        "widths": ArgLimit(1, 1024, max_items=5),
        "depth": ArgLimit(1, 8),
        "hidden": ArgLimit(1, 4096),
        "dropout": _DROPOUT,
    },
)
def vgg(**kwargs: Any) -> nn.Module:
    if "widths" in kwargs:
        kwargs["widths"] = tuple(kwargs["widths"])
    return VGGNet(**kwargs)


@register("resnet18", {"width": ArgLimit(64, 64)})
def resnet18(**kwargs: Any) -> nn.Module:
    return ResNet18Gray(**kwargs)
