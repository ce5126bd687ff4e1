"""The whole pipeline on a real photo with real MTCNN, real classifiers and real grad-cam."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from PIL import Image

from core.faces.detection import FaceDetector, crop_face
from core.models.loading import load_model
from core.pipeline import add_saliency, analyze, annotate


def test_astronaut_end_to_end(tiny_registry: list[str], detector, astronaut: Image.Image) -> None:
    models = [load_model(name) for name in tiny_registry]
    buffer = io.BytesIO()
    astronaut.save(buffer, format="JPEG")
    analysis = analyze(buffer.getvalue(), models, detector, cam_method="gradcam++")
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    assert face.crop.shape == (48, 48)
    for name in tiny_registry:
        assert np.isclose(face.probabilities[name].sum(), 1.0, atol=1e-5)
        assert face.heatmaps[name].shape == (48, 48) and face.heatmaps[name].std() > 0
    assert set(analysis.timings) >= {"decode", "detect", "classify", "saliency", "total"}

    result = json.loads(json.dumps(analysis.to_dict()))
    assert result["models"] == tiny_registry and len(result["faces"]) == 1
    assert set(result["faces"][0]["predictions"]["tiny_a"]["probabilities"]) == {
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    }
    rows = list(csv.DictReader(io.StringIO(analysis.to_csv("astronaut.jpg"))))
    assert [r["model"] for r in rows] == tiny_registry and rows[0]["image"] == "astronaut.jpg"

    picture = annotate(analysis)
    assert picture.size == astronaut.size
    assert not np.array_equal(np.asarray(picture), np.asarray(astronaut))


def test_target_class_and_no_saliency(tiny_registry: list[str], detector, astronaut: Image.Image) -> None:
    models = [load_model(tiny_registry[0])]
    explained = analyze(astronaut, models, detector, cam_method="gradcam", cam_class=5)
    plain = analyze(astronaut, models, detector, cam_method=None)
    assert plain.faces[0].heatmaps == {}
    assert explained.faces[0].heatmaps["tiny_a"].shape == (48, 48)


def test_saliency_added_later_matches_the_one_pass_result(
    tiny_registry: list[str], detector, astronaut: Image.Image
) -> None:
    """The app shows predictions first and adds Grad-CAM after: same maps as analyze() in one go."""
    models = [load_model(name) for name in tiny_registry]
    together = analyze(astronaut, models, detector, cam_method="gradcam")
    predictions = analyze(astronaut, models, detector, cam_method=None)
    later = add_saliency(predictions, models, "gradcam")
    assert predictions.faces[0].heatmaps == {} and predictions.cam_method is None, "the input is not changed"
    assert later.cam_method == "gradcam" and later.timings["saliency"] > 0
    for name in tiny_registry:
        np.testing.assert_allclose(
            later.faces[0].probabilities[name], together.faces[0].probabilities[name], atol=1e-5
        )
        np.testing.assert_allclose(later.faces[0].heatmaps[name], together.faces[0].heatmaps[name], atol=1e-4)
    chosen = add_saliency(predictions, models, "gradcam", cam_class=3)
    assert not np.allclose(chosen.faces[0].heatmaps["tiny_b"], later.faces[0].heatmaps["tiny_b"])


def test_no_face_is_a_normal_result(tiny_registry: list[str], detector) -> None:
    analysis = analyze(Image.new("RGB", (200, 150), (120, 120, 120)), [load_model("tiny_a")], detector)
    assert analysis.faces == [] and analysis.to_dict()["faces"] == []
    assert annotate(analysis).size == (200, 150)


def test_tilted_face_is_classified_explained_and_outlined_on_one_turned_square(
    tiny_registry: list[str], detector, astronaut: Image.Image
) -> None:
    tilted = astronaut.rotate(25, resample=Image.Resampling.BICUBIC, center=(224, 117))
    models = [load_model(name) for name in tiny_registry]
    analysis = analyze(tilted, models, FaceDetector(align=True), cam_method="gradcam")
    face = analysis.faces[0].face
    assert face.roll < -15
    assert np.array_equal(analysis.faces[0].crop, crop_face(tilted, face))
    frame = face.crop_frame()
    corners = np.array(frame.corners())

    picture = np.asarray(annotate(analysis)).astype(int)
    drawn = np.abs(picture - np.asarray(tilted).astype(int)).sum(axis=2) > 60
    for start, end in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        x, y = np.round((start + end) / 2).astype(int)  # the middle of each side of the turned square
        assert drawn[y - 3 : y + 4, x - 3 : x + 4].any(), (x, y)
    x1, y1, x2, y2 = face.crop_box()
    # The upright square's corners stick out of the turned one: nothing is drawn there.
    for x, y in [(x1, y1), (x2, y1), (x1, y2), (x2, y2)]:
        if 3 <= x < tilted.width - 3 and 3 <= y < tilted.height - 3:
            assert not drawn[y - 3 : y + 4, x - 3 : x + 4].any(), (x, y)
