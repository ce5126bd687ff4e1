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

from core.architectures import cam_layers
from core.faces import Face
from core.predict import calibrated_softmax
from core.preprocess import centre_offset, spec, to_tensor
from core.registry import LoadedModel

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
) -> np.ndarray:
    """Heatmaps (N, S, S) in [0, 1] on the face crops' grid; `classes` None means the predicted class.

    Pixels of the crop the network does not see (outside its centre input) get 0.
    """
    return explain(model, crops, classes, method, batch_size)[0]


def explain(
    model: LoadedModel,
    crops: np.ndarray,
    classes: np.ndarray | list[int] | None = None,
    method: str = "gradcam",
    batch_size: int = 256,
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
    with model.lock, cam_type(model=model.module, target_layers=cam_layers(model.module)) as cam:
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
    """The photo with each face's heatmap blended into its crop box."""
    result = np.asarray(photo.convert("RGB")).astype(np.float32) / 255.0
    height, width = result.shape[:2]
    for face, heatmap in zip(faces, heatmaps, strict=True):
        left, top, right, bottom = face.crop_box()
        side = right - left
        small = Image.fromarray((heatmap * 255).astype(np.uint8))
        resized = np.asarray(small.resize((side, side), Image.Resampling.BILINEAR)) / 255.0
        x1, y1, x2, y2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
        if x1 >= x2 or y1 >= y2:
            continue
        region = resized[y1 - top : y2 - top, x1 - left : x2 - left]
        result[y1:y2, x1:x2] = _blend(result[y1:y2, x1:x2], region, weight) / 255.0
    return Image.fromarray((result * 255).round().astype(np.uint8))
