"""Real grad-cam on real (randomly initialised) classifiers: shapes, variation, overlays, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core.explain.saliency import CAM_METHODS, attention_maps, overlay_on_crop, overlay_on_photo
from core.faces.detection import FaceDetector, crop_face
from core.models.architectures import architectures, cam_layer, create_model
from core.models.registry import LoadedModel


@pytest.fixture(scope="module")
def face_crop(astronaut: Image.Image, detector) -> np.ndarray:
    return crop_face(astronaut, detector.detect(astronaut)[0])


def loaded(arch: str, input_size: int = 48) -> LoadedModel:
    torch.manual_seed(0)
    args = {"widths": [8, 16, 32]} if arch == "vgg" else {}
    return LoadedModel(arch, create_model(arch, **args).eval(), {"preprocessing": {"input_size": input_size}})


@pytest.mark.parametrize("method", sorted(CAM_METHODS))
@pytest.mark.parametrize("arch", ["seed_cnn", "vgg"])
def test_heatmap_has_crop_size_and_varies(method: str, arch: str, face_crop: np.ndarray) -> None:
    heat = attention_maps(loaded(arch), face_crop[None], [3], method=method)
    assert heat.shape == (1, 48, 48)
    assert heat.min() >= 0.0 and heat.max() <= 1.0 + 1e-6
    assert heat.std() > 0.01


def test_resnet18_gradcam(face_crop: np.ndarray) -> None:
    heat = attention_maps(loaded("resnet18"), face_crop[None], None, method="gradcam")
    assert heat.shape == (1, 48, 48) and heat.std() > 0.01


def test_centre_cropped_input_is_padded_back_to_crop_grid(face_crop: np.ndarray) -> None:
    heat = attention_maps(loaded("vgg", input_size=40), face_crop[None], None)
    assert heat.shape == (1, 48, 48)
    assert heat[0, :4].max() == 0 and heat[0, :, -4:].max() == 0  # the border the net never sees
    assert heat[0, 4:44, 4:44].std() > 0.01


def test_target_class_changes_the_map(face_crop: np.ndarray) -> None:
    model = loaded("seed_cnn")
    maps = [attention_maps(model, face_crop[None], [c])[0] for c in (0, 3)]
    assert not np.allclose(maps[0], maps[1])


def test_hooks_are_released(face_crop: np.ndarray) -> None:
    model = loaded("vgg")
    layer = cam_layer(model.module)
    before = (len(layer._forward_hooks), len(layer._backward_hooks))
    attention_maps(model, face_crop[None], None)
    assert (len(layer._forward_hooks), len(layer._backward_hooks)) == before


def test_two_threads_at_once_get_the_same_maps(face_crop: np.ndarray) -> None:
    model = loaded("seed_cnn")
    expected = attention_maps(model, face_crop[None], [2])
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(attention_maps(model, face_crop[None], [2]))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 6 and all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_predictions_during_a_cam_do_not_corrupt_it(face_crop: np.ndarray) -> None:
    from core.models.predict import predict_proba

    model = loaded("seed_cnn")
    expected = attention_maps(model, face_crop[None], [4])
    noise = np.random.default_rng(0).integers(0, 255, (8, 48, 48)).astype(np.uint8)
    stop = threading.Event()

    def predict_forever() -> None:
        while not stop.is_set():
            predict_proba(model, noise)

    thread = threading.Thread(target=predict_forever)
    thread.start()
    try:
        maps = [attention_maps(model, face_crop[None], [4]) for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert all(m.shape == (1, 48, 48) and np.allclose(m, expected, atol=1e-5) for m in maps)


def test_explain_gives_the_prediction_of_the_same_pass(face_crop: np.ndarray) -> None:
    from core.explain.saliency import explain
    from core.models.predict import predict_proba

    model = loaded("vgg", input_size=40)
    crops = np.stack([face_crop, face_crop[:, ::-1]])
    heat, probabilities = explain(model, crops, None, "gradcam++")
    assert np.allclose(probabilities, predict_proba(model, crops), atol=1e-5)
    assert np.allclose(
        heat, attention_maps(model, crops, probabilities.argmax(axis=1), "gradcam++"), atol=1e-5
    )


def test_overlays(face_crop: np.ndarray, astronaut: Image.Image, detector) -> None:
    heat = attention_maps(loaded("seed_cnn"), face_crop[None], None)[0]
    overlay = overlay_on_crop(face_crop, heat)
    assert overlay.shape == (48, 48, 3) and overlay.dtype == np.uint8
    faces = detector.detect(astronaut)
    placed = overlay_on_photo(astronaut, faces, [heat])
    assert placed.size == astronaut.size
    before, after = np.asarray(astronaut), np.asarray(placed)
    x1, y1, x2, y2 = faces[0].crop_box()
    assert not np.array_equal(before[y1:y2, x1:x2], after[y1:y2, x1:x2])
    assert np.array_equal(before[400:], after[400:])  # far from the face nothing changes


def test_unknown_method_is_refused(face_crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown saliency method"):
        attention_maps(loaded("seed_cnn"), face_crop[None], None, method="magic")


def test_every_architecture_names_a_cam_layer() -> None:
    for name in architectures():
        assert isinstance(cam_layer(create_model(name)), torch.nn.Module)


@pytest.mark.parametrize("name", ["vgg", "resnet18"])
def test_cam_layer_weights_are_saved_once_and_older_files_still_load(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    state = model.state_dict()
    assert not any(key.startswith("cam_layer.") for key in state)
    # Files saved before cam_layer became a property hold a second copy under cam_layer.*.
    older = {**state, **{f"cam_layer.{k}": v for k, v in cam_layer(model).state_dict().items()}}
    assert len(older) > len(state)
    fresh = create_model(name)
    fresh.load_state_dict(older)  # strict: an unexpected key would fail here
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in state.items())


def test_overlay_on_a_tilted_face_lands_where_its_crop_came_from(astronaut: Image.Image) -> None:
    tilted = astronaut.rotate(-25, resample=Image.Resampling.BICUBIC, center=(224, 117))
    face = FaceDetector(align=True).detect(tilted)[0]
    assert face.roll > 15
    # A red dot on the left eye: find where the crop shows it, heat only that spot, and the
    # overlay must light up the photo at the eye again.
    eye = np.round(face.landmarks[0]).astype(int)
    marked = np.asarray(tilted).copy()
    marked[eye[1] - 2 : eye[1] + 3, eye[0] - 2 : eye[0] + 3] = (255, 255, 255)
    crop = crop_face(Image.fromarray(marked), face).astype(int) - crop_face(tilted, face).astype(int)
    row, col = np.unravel_index(np.argmax(crop), crop.shape)
    heat = np.zeros((48, 48), np.float32)
    heat[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = 1.0
    placed = np.asarray(overlay_on_photo(tilted, [face], [heat])).astype(int)
    # Jet colours: hot is red, cold is blue; the pixel turned reddest is the hot spot.
    before = np.asarray(tilted).astype(int)
    redness = (placed[..., 0] - placed[..., 2]) - (before[..., 0] - before[..., 2])
    y, x = np.unravel_index(np.argmax(redness), redness.shape)
    assert np.hypot(x - eye[0], y - eye[1]) < face.crop_frame().side / 48 * 3
    left, top, right, bottom = face.crop_frame().bounds()
    outside = np.ones(redness.shape, bool)
    outside[max(top, 0) : bottom, max(left, 0) : right] = False
    assert np.array_equal(before[outside], placed[outside])
