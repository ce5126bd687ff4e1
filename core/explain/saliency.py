"""Grad-CAM saliency: heatmaps, overlays on the crop and the photo.

The maps are the grad-cam package's (same arithmetic, compared in tests/explain/
test_saliency_reference.py), but the default method ("gradcam") and the overlays never import it:
grad-cam's package brings matplotlib, SciPy and scikit-learn (about 3.5 s on two cores), a cold
start's first Grad-CAM does without them. The other methods import it on first use. OpenCV, which
the maps are resized and coloured with, comes with the face detector (facenet-pytorch).
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
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
    """grad-cam's heatmap blend (show_cam_on_image: OpenCV's jet colours) of float RGB in [0, 1];
    uint8 RGB out."""
    import cv2

    colours = cv2.cvtColor(
        cv2.applyColorMap((255 * heatmap).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB
    )
    blended = weight * (colours.astype(np.float32) / 255) + (1 - weight) * rgb
    return (255 * (blended / np.max(blended))).astype(np.uint8)


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
    backward pass gives both the prediction and its explanation. The maps are grad-cam's own
    (its class computes them from the target layers' activations and gradients), but the pass
    is cheaper than the package's: the layers before the target layers run without a graph and
    the backward pass goes from the class scores to the target layers only, not through the
    whole net to its weights (see docs/performance.md).
    """
    if method not in CAM_METHODS:
        cam_class(method)  # raises, naming the methods there are
    cam = None if method == "gradcam" else _cam_object(model, method)
    layers = cam_layers(model.module, layer)
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    maps, probabilities = [], []
    with model.lock, _frozen(model.module):
        for start in range(0, len(crops), batch_size):
            inputs = to_tensor(crops[start : start + batch_size], model.preprocessing)
            outputs, activations, gradients = _forward_backward(
                model.module, layers, inputs, classes, start, cam is None or cam.uses_gradients
            )
            targets: list[Any] = []
            if cam is not None:
                from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

                chosen = (
                    outputs.argmax(1).tolist() if classes is None else classes[start : start + batch_size]
                )
                targets = [ClassifierOutputTarget(int(c)) for c in chosen]
            per_layer = [
                _layer_map(cam, inputs, target, targets, activation, gradients[i] if gradients else None)
                for i, (target, activation) in enumerate(zip(layers, activations, strict=True))
            ]
            maps.append(_scale(np.maximum(np.concatenate(per_layer, axis=1), 0).mean(axis=1)))
            probabilities.append(calibrated_softmax(outputs, model.temperature).numpy())
    heat = np.concatenate(maps).astype(np.float32)
    offset = centre_offset(model.preprocessing)
    if offset:
        heat = np.pad(heat, ((0, 0), (offset, offset), (offset, offset)))
    size = int(spec(model.preprocessing)["crop_size"])
    return heat[:, :size, :size], np.concatenate(probabilities)


def _layer_map(
    cam: Any,
    inputs: torch.Tensor,
    layer: torch.nn.Module,
    targets: list[Any],
    activation: torch.Tensor,
    gradient: torch.Tensor | None,
) -> np.ndarray:
    """One target layer's maps (N, 1, H, W) on the input grid, each scaled to [0, 1], as grad-cam's
    compute_cam_per_layer makes them; cam None is Grad-CAM (the gradients' mean weighs each channel)."""
    acts = activation.numpy()
    grads = None if gradient is None else gradient.numpy()
    if cam is None:
        assert grads is not None
        raw = (np.mean(grads, axis=(2, 3))[:, :, None, None] * acts).sum(axis=1)
    else:
        raw = cam.get_cam_image(inputs, layer, targets, acts, grads, False)
    return _scale(np.maximum(raw, 0), (inputs.shape[-1], inputs.shape[-2]))[:, None]


def _scale(maps: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """grad-cam's scale_cam_image: each map shifted and divided to [0, 1], resized to size (width,
    height) with OpenCV when given."""
    import cv2

    scaled = []
    for image in maps:
        image = image - np.min(image)
        image = image / (1e-7 + np.max(image))
        scaled.append(cv2.resize(image.astype(np.float32), size) if size is not None else image)
    return np.array(scaled, dtype=np.float32)


# A loaded model's module -> {method: its grad-cam object}, made once per model and method. Only the
# object's map arithmetic is used (explain runs the pass itself): its hooks are released at once and
# it keeps no reference to the module (only to its target layers), so a model let go takes it along.
_cams: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()
_cams_lock = threading.Lock()


def _cam_object(model: LoadedModel, method: str) -> Any:
    """The grad-cam object of a method for a model, kept per model (see _cams)."""
    cam_type = cam_class(method)
    with _cams_lock:
        kept = _cams.setdefault(model.module, {})
        if method not in kept:
            cam = cam_type(model=model.module, target_layers=cam_layers(model.module))
            cam.activations_and_grads.release()
            cam.model = None
            kept[method] = cam
        return kept[method]


@contextmanager
def _frozen(module: torch.nn.Module) -> Iterator[None]:
    """The module's weights need no gradient while inside (a Grad-CAM needs the activations' only),
    so the forward pass records no graph before the target layers. Hold the model's lock."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _forward_backward(
    module: torch.nn.Module,
    layers: list[torch.nn.Module],
    inputs: torch.Tensor,
    classes: np.ndarray | list[int] | None,
    start: int,
    uses_gradients: bool,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """One forward pass of a frozen module (see _frozen) with each target layer's output made a
    leaf that needs a gradient, and, if uses_gradients, the gradients of the explained classes'
    logits at those leaves: (logits, activations per layer, gradients per layer). Every target
    layer must run in the forward pass."""
    leaves: dict[int, torch.Tensor] = {}

    def capture(index: int) -> Any:
        def hook(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
            leaves[index] = output.detach().requires_grad_(True)
            return leaves[index].clone()  # what follows may work in place: not on the leaf

        return hook

    handles = [layer.register_forward_hook(capture(i)) for i, layer in enumerate(layers)]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            outputs = module(inputs)
            found = [leaves[i] for i in range(len(layers))]
            gradients: list[torch.Tensor] = []
            if uses_gradients and found:
                chosen = (
                    outputs.detach().argmax(1)
                    if classes is None
                    else torch.as_tensor(np.asarray(classes[start : start + len(inputs)], dtype=np.int64))
                )
                score = outputs.gather(1, chosen[:, None]).sum()
                grads = torch.autograd.grad(score, found, allow_unused=True)
                gradients = [
                    g if g is not None else torch.zeros_like(a) for g, a in zip(grads, found, strict=True)
                ]
    finally:
        for handle in handles:
            handle.remove()
    return outputs.detach(), [a.detach() for a in found], gradients


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
