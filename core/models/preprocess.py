"""Turn 48x48 uint8 face crops into the normalised tensors a classifier takes.

The numbers live in the model card ("preprocessing") so a model carries its own:
`crop_size` is the face crop (FER2013's 48), `input_size` what the network sees (a
centre crop of it at test time, a random crop in training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

DEFAULT_PREPROCESSING: dict[str, Any] = {"crop_size": 48, "input_size": 48, "mean": 0.5, "std": 0.5}


def spec(preprocessing: dict[str, Any] | None) -> dict[str, Any]:
    """The preprocessing with defaults filled in."""
    return {**DEFAULT_PREPROCESSING, **(preprocessing or {})}


def centre_offset(preprocessing: dict[str, Any] | None) -> int:
    """Pixels cut from each side of the face crop to get the network input."""
    values = spec(preprocessing)
    return (int(values["crop_size"]) - int(values["input_size"])) // 2


def to_tensor(crops: np.ndarray | torch.Tensor, preprocessing: dict[str, Any] | None = None) -> torch.Tensor:
    """uint8 crops (N, S, S) or (S, S) → float tensor (N, 1, input, input), centre-cropped and normalised."""
    values = spec(preprocessing)
    batch = crops if isinstance(crops, torch.Tensor) else torch.tensor(np.asarray(crops))
    if batch.ndim == 2:
        batch = batch[None]
    if batch.ndim == 3:
        batch = batch[:, None]
    size = int(values["input_size"])
    height, width = batch.shape[-2:]
    if (height, width) != (size, size):
        if height < size or width < size or height != width:
            raise ValueError(f"crops are {height}x{width}; the model takes {size}x{size} crops")
        offset = (height - size) // 2
        batch = batch[..., offset : offset + size, offset : offset + size]
    return ((batch.float() / 255.0 - float(values["mean"])) / float(values["std"])).contiguous(
        memory_format=torch.channels_last
    )
