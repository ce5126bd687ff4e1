"""Comparing two models' saliency: parts from real MTCNN landmarks, agreement, deletion, one face's comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.explain import compare as compare_module
from core.explain.compare import (
    FACE_PARTS,
    agreement,
    compare_face,
    default_landmarks,
    deletion_curve,
    part_masks,
    part_shares,
    random_deletion_curve,
)
from core.explain.saliency import attention_maps
from core.faces.detection import CropFrame, crop_face
from core.models.architectures import cam_layer, cam_layer_choices, cam_layers, create_model
from core.models.loading import load_model
from core.models.registry import LoadedModel
from core.pipeline import add_saliency, analyze, compare_in_analysis


@pytest.fixture(scope="module")
def portrait(astronaut: Image.Image, detector):
    face = detector.detect(astronaut)[0]
    crop = crop_face(astronaut, face)
    return crop, face.crop_frame().to_crop(face.landmarks, crop.shape[0])


def test_landmarks_land_on_the_crop_where_crop_face_puts_them() -> None:
    frame = CropFrame(100.0, 80.0, 60.0, 30.0)
    corners = frame.to_crop(frame.corners(), 48)
    assert np.allclose(corners, [[0, 0], [48, 0], [48, 48], [0, 48]])
    assert np.allclose(frame.to_crop([(100.0, 80.0)], 48), [[24, 24]])


def test_parts_are_disjoint_cover_the_crop_and_sit_on_the_landmarks(portrait) -> None:
    crop, marks = portrait
    masks = part_masks(marks, crop.shape[0])
    assert tuple(masks) == FACE_PARTS
    stacked = np.stack(list(masks.values())).astype(int)
    assert (stacked.sum(axis=0) == 1).all()  # every pixel in exactly one part
    for name, point in zip(("left_eye", "right_eye", "nose"), marks[:3], strict=False):
        x, y = (int(v) for v in point)
        assert masks[name][y, x], name
    mouth_x, mouth_y = (int(v) for v in marks[3:].mean(axis=0))
    assert masks["mouth"][mouth_y, mouth_x]
    assert 0.3 < masks["rest"].mean() < 0.9


def test_default_landmarks_give_a_face_like_layout() -> None:
    marks = default_landmarks(48)
    assert marks[0, 0] < marks[2, 0] < marks[1, 0]  # left eye, nose, right eye across
    assert marks[0, 1] < marks[2, 1] < marks[3, 1]  # eyes above nose above mouth
    masks = part_masks(marks, 48)
    assert all(masks[name].sum() > 20 for name in FACE_PARTS)


def test_part_shares_sum_to_one_and_follow_the_map(portrait) -> None:
    crop, marks = portrait
    masks = part_masks(marks, crop.shape[0])
    rng = np.random.default_rng(0)
    shares = part_shares(rng.random(crop.shape), masks)
    assert sum(shares.values()) == pytest.approx(1.0)
    for part in FACE_PARTS:
        moved = masks[part] * 1.0 + 0.01 * rng.random(crop.shape)
        shares = part_shares(moved, masks)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert max(shares, key=shares.__getitem__) == part
        assert shares[part] > 0.7
    flat = part_shares(np.zeros(crop.shape), masks)
    assert flat["rest"] == pytest.approx(masks["rest"].mean())


def test_agreement_of_a_map_with_itself_is_one_and_with_its_opposite_low() -> None:
    cam = np.random.default_rng(1).random((48, 48))
    same = agreement(cam, cam)
    assert same["spearman"] == pytest.approx(1.0) and same["top20_iou"] == 1.0
    opposite = agreement(cam, 1 - cam)
    assert opposite["spearman"] == pytest.approx(-1.0) and opposite["top20_iou"] == 0.0
    assert np.isnan(agreement(np.zeros((48, 48)), cam)["spearman"])


class PatchModel(nn.Module):
    """Class 0's logit is the brightness of one 10x10 patch; the other six are 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patch = x[:, 0, 10:20, 10:20].mean(dim=(1, 2)) * 6.0
        return torch.cat([patch[:, None], torch.zeros(len(x), 6)], dim=1)


def test_a_map_of_the_evidence_deletes_faster_than_random_maps() -> None:
    model = LoadedModel("patch", PatchModel().eval(), {"preprocessing": {"input_size": 48}})
    crop = np.full((48, 48), 90, np.uint8)
    crop[10:20, 10:20] = 255
    cam = np.zeros((48, 48), np.float32)
    cam[8:22, 8:22] = 1.0  # the patch and a little around it
    curve = deletion_curve(model, crop, cam, target=0, steps=10, fill="black")
    random = random_deletion_curve(model, crop, target=0, steps=10, fill="black", count=3)
    assert curve.probabilities[0] > 0.9 and curve.probabilities[1] < 0.2  # the patch is gone after 10 %
    assert random.probabilities[1] > 0.5
    assert curve.auc < random.auc - 0.2
    words = compare_module.describe_deletion("patch", curve, random)
    assert (
        words.startswith("removing patch's top 10% drops patch's confidence from 9")
        and "a random 10% to" in words
    )
    assert np.all(np.diff(curve.probabilities) <= 1e-6)


def test_compare_face_on_two_real_models(tiny_registry: list[str], portrait) -> None:
    crop, marks = portrait
    a, b = (load_model(name) for name in tiny_registry)
    result = compare_face(crop, a, b, marks, steps=4, random_count=2)
    assert result.names == ("tiny_a", "tiny_b")
    assert np.allclose(result.difference, result.maps["tiny_b"] - result.maps["tiny_a"])
    for name in result.names:
        assert sum(result.parts[name].values()) == pytest.approx(1.0)
        assert len(result.deletion[name].probabilities) == 5
        assert result.deletion[name].probabilities[0] == pytest.approx(result.confidences[name])
        # everything removed: the same image for the map and the random maps
        assert result.deletion[name].probabilities[-1] == pytest.approx(
            result.random_deletion[name].probabilities[-1]
        )
    assert "tiny_a" in result.sentence and "random 25%" in result.sentence
    numbers = result.to_dict()
    assert set(numbers["models"]["tiny_a"]) >= {"parts", "deletion_auc", "random_deletion_auc"}
    assert set(numbers["agreement"]) == {"spearman", "top20_iou"}
    with pytest.raises(ValueError, match="different"):
        compare_face(crop, a, a)


def test_comparison_in_an_analysis_reuses_its_heatmaps(
    tiny_registry: list[str], astronaut: Image.Image, detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = [load_model(name) for name in tiny_registry]
    analysis = analyze(astronaut, models, detector, cam_method="gradcam")

    def no_second_cam(*args, **kwargs):
        raise AssertionError("Grad-CAM ran again")

    monkeypatch.setattr(compare_module, "explain", no_second_cam)
    result = compare_in_analysis(analysis, 0, *models)
    for name in tiny_registry:
        assert np.array_equal(result.maps[name], analysis.faces[0].heatmaps[name])
    with pytest.raises(IndexError):
        compare_in_analysis(analysis, 5, *models)

    chosen = add_saliency(analysis, models, "gradcam", cam_class=3)  # maps of one class for both
    result = compare_in_analysis(chosen, 0, *models)
    assert result.targets == {name: 3 for name in tiny_registry}
    assert result.confidences["tiny_a"] == pytest.approx(float(analysis.faces[0].probabilities["tiny_a"][3]))


def test_layers_to_read_can_be_chosen() -> None:
    torch.manual_seed(0)
    module = create_model("vgg", widths=[8, 16, 32]).eval()
    choices = cam_layer_choices(module)
    assert list(choices) == ["block1", "block2", "block3"] and choices["block3"] is cam_layer(module)
    model = LoadedModel("vgg", module, {})
    crop = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    coarse = attention_maps(model, crop[None], [0])[0]
    finer = attention_maps(model, crop[None], [0], layer="block2")[0]
    assert coarse.shape == finer.shape == (48, 48) and not np.allclose(coarse, finer)
    assert cam_layers(module, "last-1") == [choices["block2"]] and cam_layers(module, "last") == [
        cam_layer(module)
    ]
    with pytest.raises(ValueError, match="block1, block2, block3"):
        cam_layers(module, "block9")
