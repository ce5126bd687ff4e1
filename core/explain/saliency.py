"""Grad-CAM saliency through the grad-cam package: heatmaps, overlays on the crop and the photo.

grad-cam is imported on first use, not with this module: it brings OpenCV, matplotlib,
SciPy and scikit-learn (about 3.5 s on two cores), and the app shows its first
predictions before any saliency is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from PIL import Image

from core.faces.detection import CropFrame, Face
from core.models.architectures import cam_layers
from core.models.predict import calibrated_softmax
from core.models.preprocess import centre_offset, spec, to_tensor
from core.models.registry import LoadedModel

# Method names for a select box, as the package's own command-line tool maps them, to
# the package's class names.
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
}


def cam_class(method: str) -> Any:
    """The grad-cam class for a method name of CAM_METHODS."""
    if method not in CAM_METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    return getattr(importlib.import_module("pytorch_grad_cam"), CAM_METHODS[method])


def _blend(rgb: np.ndarray, heatmap: np.ndarray, weight: float) -> np.ndarray:
    """grad-cam's heatmap blend (jet colours) of float RGB in [0, 1]; uint8 RGB out."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(rgb, heatmap, use_rgb=True, image_weight=1 - weight)


def attention_maps(
    model: LoadedModel,
    crops: np.ndarray,
    classes: np.ndarray | list[int] | None = None,
    method: str = "gradcam",
    batch_size: int = 256,
    layer: str | None = None,
) -> np.ndarray:
    """Heatmaps (N, S, S) in [0, 1] on the face crops' grid; `classes` None means the predicted class.

    Pixels of the crop the network does not see (outside its centre input) get 0. layer names one of
    core.models.architectures.cam_layer_choices; None reads the model's cam_layer (its last block).
    """
    return explain(model, crops, classes, method, batch_size, layer)[0]


def explain(
    model: LoadedModel,
    crops: np.ndarray,
    classes: np.ndarray | list[int] | None = None,
    method: str = "gradcam",
    batch_size: int = 256,
    layer: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, S, S) and the calibrated class probabilities (N, 7) of the same forward pass.

    With classes None each face is explained for its predicted class, so one forward and
    backward pass gives both the prediction and its explanation.
    """
    cam_type = cam_class(method)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    maps, probabilities = [], []
    layers = cam_layers(model.module, layer)
    with model.lock, cam_type(model=model.module, target_layers=layers) as cam:
        for start in range(0, len(crops), batch_size):
            inputs = to_tensor(crops[start : start + batch_size], model.preprocessing)
            targets = None
            if classes is not None:
                chosen = classes[start : start + batch_size]
                targets = [ClassifierOutputTarget(int(c)) for c in chosen]
            maps.append(cam(input_tensor=inputs, targets=targets))
            probabilities.append(calibrated_softmax(cam.outputs.detach(), model.temperature).cpu().numpy())
    heat = np.concatenate(maps).astype(np.float32)
    offset = centre_offset(model.preprocessing)
    if offset:
        heat = np.pad(heat, ((0, 0), (offset, offset), (offset, offset)))
    size = int(spec(model.preprocessing)["crop_size"])
    return heat[:, :size, :size], np.concatenate(probabilities)


def overlay_on_crop(crop: np.ndarray, heatmap: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """A uint8 RGB picture of the heatmap (jet colours) over a grayscale face crop."""
    rgb = np.repeat(crop[..., None].astype(np.float32) / 255.0, 3, axis=2)
    return _blend(rgb, heatmap, weight)


def overlay_on_photo(
    photo: Image.Image, faces: list[Face], heatmaps: list[np.ndarray], weight: float = 0.5
) -> Image.Image:
    """The photo with each face's heatmap blended into its crop square (turned with the face)."""
    result = np.asarray(photo.convert("RGB")).astype(np.float32) / 255.0
    height, width = result.shape[:2]
    for face, heatmap in zip(faces, heatmaps, strict=True):
        frame = face.crop_frame()
        left, top, right, bottom = frame.bounds()
        x1, y1, x2, y2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
        if x1 >= x2 or y1 >= y2:
            continue
        heat, cover = crop_to_photo(frame, np.asarray(heatmap, np.float32), (x1, y1, x2, y2))
        region = result[y1:y2, x1:x2]
        blended = _blend(region, heat, weight) / 255.0
        result[y1:y2, x1:x2] = cover[..., None] * blended + (1 - cover[..., None]) * region
    return Image.fromarray((result * 255).round().astype(np.uint8))


def crop_to_photo(
    frame: CropFrame, values: np.ndarray, bounds: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A map on the crop's grid (S, S) laid onto the photo pixels within bounds (left, top, right,
    bottom): the map's values there and how much of each pixel the crop square covers (0 to 1)."""
    left, top, right, bottom = bounds
    size = values.shape[0]
    (rx, ry), (dx, dy) = frame.axes()
    scale = size / frame.side
    # Pillow maps output (photo) pixels to input (crop grid) pixels: the inverse of crop_face's turn.
    # The grid is padded by one cell (the map by its edge, the cover by 0), so bilinear sampling keeps
    # the map's values up to the square's edge and the cover fades out across it.
    ox, oy = left - frame.cx, top - frame.cy
    middle = size / 2 + 1
    coefficients = (
        scale * rx,
        scale * ry,
        scale * (rx * ox + ry * oy) + middle,
        scale * dx,
        scale * dy,
        scale * (dx * ox + dy * oy) + middle,
    )

    def place(grid: np.ndarray) -> np.ndarray:
        image = Image.fromarray(grid.astype(np.float32), mode="F")
        out = (right - left, bottom - top)
        return np.asarray(
            image.transform(out, Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
        )

    padded = np.pad(values, 1, mode="edge")
    cover = np.pad(np.ones_like(values), 1)
    return place(padded), np.clip(place(cover), 0.0, 1.0)
