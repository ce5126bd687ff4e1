"""explain's cheaper pass (issue #22) gives the maps and probabilities grad-cam's own pass gives.

The reference is the package run as explain ran it before: a CAM object with its hooks built for the
call, a forward pass with the whole graph, a backward pass through the whole net.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.explain.saliency import CAM_METHODS, cam_class, explain
from core.faces.detection import crop_face
from core.models.architectures import cam_layer, cam_layers, create_model
from core.models.ensemble import ProbabilityAverage
from core.models.predict import calibrated_softmax
from core.models.preprocess import centre_offset, spec, to_tensor
from core.models.registry import LoadedModel


def reference_explain(
    model: LoadedModel, crops: np.ndarray, classes: list[int] | None, method: str, layer: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """explain as it was: grad-cam's own __call__ on the whole batch."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = None if classes is None else [ClassifierOutputTarget(int(c)) for c in classes]
    with cam_class(method)(model=model.module, target_layers=cam_layers(model.module, layer)) as cam:
        heat = cam(input_tensor=to_tensor(crops, model.preprocessing), targets=targets)
        probabilities = calibrated_softmax(cam.outputs.detach(), model.temperature).numpy()
    offset = centre_offset(model.preprocessing)
    heat = np.pad(heat, ((0, 0), (offset, offset), (offset, offset))) if offset else heat
    size = int(spec(model.preprocessing)["crop_size"])
    return heat[:, :size, :size].astype(np.float32), probabilities


def trained_like(arch: str, seed: int, input_size: int = 48) -> LoadedModel:
    """A random net whose batch norms hold non-trivial statistics, as a trained one's do."""
    torch.manual_seed(seed)
    args = {"widths": [8, 16, 32]} if arch == "vgg" else {}
    module = create_model(arch, **args)
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(16, 1, input_size, input_size))
    card = {"preprocessing": {"input_size": input_size}, "calibration": {"temperature": 1.3}}
    return LoadedModel(f"{arch}-{seed}", module.eval(), card)


@pytest.fixture(scope="module")
def crops(astronaut: Image.Image, detector) -> np.ndarray:
    face = detector.detect(astronaut)[0]
    crop = crop_face(astronaut, face)
    noise = np.random.default_rng(1).integers(0, 255, (48, 48)).astype(np.uint8)
    return np.stack([crop, crop[:, ::-1], noise])


CASES = [
    *((method, arch, size, explained) for method in sorted(CAM_METHODS) for arch, size in (("seed_cnn", 48), ("vgg", 44))
      for explained in ("predicted", "given")),
    ("gradcam", "resnet18", 48, "predicted"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "arch", "input_size", "explained"), CASES)
def test_same_maps_and_probabilities_as_grad_cams_own_pass(
    method: str, arch: str, input_size: int, explained: str, crops: np.ndarray
) -> None:
    model = trained_like(arch, seed=len(method), input_size=input_size)
    classes = None if explained == "predicted" else [0, 3, 6]
    heat, probabilities = explain(model, crops, classes, method)
    expected_heat, expected_probabilities = reference_explain(model, crops, classes, method)
    assert heat.shape == expected_heat.shape == (3, 48, 48)
    assert np.abs(heat - expected_heat).max() <= 1e-4
    assert np.abs(probabilities - expected_probabilities).max() <= 1e-5


def test_an_average_of_models_is_explained_at_every_members_layer(crops: np.ndarray) -> None:
    members = [trained_like("seed_cnn", 0), trained_like("vgg", 1)]
    average = LoadedModel(
        "a+b", ProbabilityAverage([m.module for m in members], [1.0, 1.3]).eval(), {"preprocessing": {}}
    )
    heat, probabilities = explain(average, crops, None, "gradcam")
    expected_heat, expected_probabilities = reference_explain(average, crops, None, "gradcam")
    assert np.abs(heat - expected_heat).max() <= 1e-4
    assert np.abs(probabilities - expected_probabilities).max() <= 1e-5


def test_the_shipped_architecture_gives_the_same_maps(crops: np.ndarray) -> None:
    torch.manual_seed(4)
    module = create_model("vgg", widths=[64, 128, 256, 512])  # the shipped models' net, at 44x44
    module.train()
    with torch.no_grad():
        module(torch.randn(16, 1, 44, 44))
    model = LoadedModel("shipped-like", module.eval(), {"preprocessing": {"input_size": 44}})
    heat, probabilities = explain(model, crops, None, "gradcam")
    expected_heat, expected_probabilities = reference_explain(model, crops, None, "gradcam")
    assert np.abs(heat - expected_heat).max() <= 1e-4
    assert np.abs(probabilities - expected_probabilities).max() <= 1e-5


def test_the_model_is_left_as_it_was(crops: np.ndarray) -> None:
    model = trained_like("vgg", 2, 44)
    before = {name: p.clone() for name, p in model.module.named_parameters()}
    layer = cam_layer(model.module)
    explain(model, crops, None, "gradcam")
    explain(model, crops, [1, 2, 3], "hirescam")
    assert all(p.requires_grad and p.grad is None for p in model.module.parameters())
    assert all(torch.equal(p, before[name]) for name, p in model.module.named_parameters())
    assert not layer._forward_hooks and not model.module._forward_hooks


def test_a_batch_split_in_parts_gives_the_same_maps(crops: np.ndarray) -> None:
    model = trained_like("seed_cnn", 3)
    whole, whole_probabilities = explain(model, crops, None, "gradcam")
    parts, part_probabilities = explain(model, crops, None, "gradcam", batch_size=2)
    assert np.allclose(whole, parts, atol=1e-5) and np.allclose(
        whole_probabilities, part_probabilities, atol=1e-6
    )


def test_overlays_are_grad_cams_blend(crops: np.ndarray) -> None:
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from core.explain.saliency import overlay_on_crop

    heat = explain(trained_like("seed_cnn", 5), crops, None, "gradcam")[0]
    for crop, heatmap in zip(crops, heat, strict=True):
        rgb = np.repeat(crop[..., None].astype(np.float32) / 255.0, 3, axis=2)
        for weight in (0.3, 0.5):
            expected = show_cam_on_image(rgb, heatmap, use_rgb=True, image_weight=1 - weight)
            assert np.array_equal(overlay_on_crop(crop, heatmap, weight), expected)


def test_the_default_method_needs_no_grad_cam_import(crops: np.ndarray, tmp_path) -> None:
    import subprocess
    import sys

    from core.paths import REPO_ROOT

    code = (
        "import sys, numpy as np, torch\n"
        "from core.explain.saliency import explain, overlay_on_crop\n"
        "from core.models.architectures import create_model\n"
        "from core.models.registry import LoadedModel\n"
        "model = LoadedModel('m', create_model('seed_cnn').eval(), {})\n"
        "heat = explain(model, np.zeros((1, 48, 48), np.uint8) + 90)[0]\n"
        "overlay_on_crop(np.zeros((48, 48), np.uint8), heat[0])\n"
        "print('pytorch_grad_cam' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("arch", "layer", "method"), [("vgg", "last-1", "gradcam"), ("seed_cnn", "block1", "hirescam")]
)
def test_an_earlier_layer_gives_grad_cams_maps_too(
    arch: str, layer: str, method: str, crops: np.ndarray
) -> None:
    model = trained_like(arch, 6, 44 if arch == "vgg" else 48)
    heat, probabilities = explain(model, crops, None, method, layer=layer)
    expected_heat, expected_probabilities = reference_explain(model, crops, None, method, layer)
    assert np.abs(heat - expected_heat).max() <= 1e-4
    assert np.abs(probabilities - expected_probabilities).max() <= 1e-5
    assert not np.allclose(heat, explain(model, crops, None, method)[0], atol=1e-3)  # another layer's maps
