"""Classifier architectures for 48x48 grayscale faces, registered by name.

`create_model(name, **kwargs)` is the only way to build one; each architecture also
names the layer Grad-CAM should look at (`cam_layer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from core.labels import NUM_CLASSES

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make an architecture available to create_model under `name`."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = factory
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


def cam_layer(model: nn.Module) -> nn.Module:
    """The last convolutional block: the layer Grad-CAM reads."""
    layer = getattr(model, "cam_layer", None)
    if not isinstance(layer, nn.Module):
        raise ValueError(f"{type(model).__name__} does not name a cam_layer")
    return layer


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("seed_cnn")
def seed_cnn(**kwargs: Any) -> nn.Module:
    return SeedCNN(**kwargs)


@register("vgg")
def vgg(**kwargs: Any) -> nn.Module:
    if "widths" in kwargs:
        kwargs["widths"] = tuple(kwargs["widths"])
    return VGGNet(**kwargs)


@register("resnet18")
def resnet18(**kwargs: Any) -> nn.Module:
    return ResNet18Gray(**kwargs)
