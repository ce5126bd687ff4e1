"""Faces in scenes: composed photos, their truth, and end-to-end scoring through the real pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.evaluation.scenes import (
    MAX_FACES,
    WIDTH_BINS,
    FaceOutcome,
    Scene,
    SceneFace,
    make_scenes,
    match_detections,
    score_outcomes,
    score_scenes,
    soft_mask,
)
from core.faces.detection import crop_face
from core.models.loading import load_model
from tests.helpers import synthetic_faces


@pytest.fixture(scope="module")
def portrait_faces(astronaut: Image.Image, detector) -> tuple[np.ndarray, np.ndarray]:
    """Real faces in FER2013 framing: the astronaut's face cropped as the pipeline crops it, and mirrored."""
    crop = crop_face(astronaut, detector.detect(astronaut)[0])
    return np.stack([crop, crop[:, ::-1].copy()] * 6), np.array([3, 4] * 6)


def test_scenes_are_deterministic_and_truth_boxes_lie_inside_the_photo() -> None:
    images, labels = synthetic_faces(3, seed=1)
    first = list(make_scenes(images, labels, 6, seed=5))
    again = list(make_scenes(images, labels, 6, seed=5))
    other = list(make_scenes(images, labels, 6, seed=6))
    assert [s.jpeg for s in first] == [s.jpeg for s in again]
    assert [s.jpeg for s in first] != [s.jpeg for s in other]
    for scene in first:
        width, height = scene.size
        assert scene.image().size == scene.size
        assert min(scene.size) >= 480 and max(scene.size) <= 1600
        assert 1 <= len(scene.faces) <= MAX_FACES
        for face in scene.faces:
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            assert 20 <= face.width <= 200
            assert labels[face.index] == face.label
        # placed faces do not overlap
        for a in scene.faces:
            for b in scene.faces:
                if a is not b:
                    assert (
                        a.box[2] <= b.box[0]
                        or b.box[2] <= a.box[0]
                        or a.box[3] <= b.box[1]
                        or b.box[3] <= a.box[1]
                    )


def test_faces_blend_in_through_a_soft_mask(portrait_faces) -> None:
    mask = np.asarray(soft_mask(100), np.float32)
    assert mask[50, 50] == 255 and mask[0, 0] == 0 and mask[0, 50] < 16  # no square edge
    assert 0 < mask[50, 3] < 255 or 0 < mask[50, 8] < 255  # a soft fade, not a step
    images, labels = portrait_faces
    scene = next(make_scenes(images, labels, 1, seed=0))
    photo = np.asarray(scene.image().convert("L"), np.float32)
    face = max(scene.faces, key=lambda f: f.width)
    x1, y1, x2, y2 = (round(v) for v in face.box)
    side = x2 - x1
    centre = photo[y1 + side // 3 : y1 + 2 * side // 3, x1 + side // 3 : x1 + 2 * side // 3]
    assert centre.std() > 5  # a face's detail, not a flat background


def test_a_scene_face_is_found_by_the_real_detector(portrait_faces, detector) -> None:
    images, labels = portrait_faces
    found = total = 0
    for scene in make_scenes(images, labels, 4, seed=2):
        boxes = [face.box for face in detector.detect(scene.image())]
        matched = match_detections(scene.faces, boxes)
        big = [d for face, d in zip(scene.faces, matched, strict=True) if face.width >= 60]
        found += sum(d is not None for d in big)
        total += len(big)
    assert total >= 2
    assert found >= total - 1, f"MTCNN found {found} of {total} scene faces 60 px or wider"


def test_matching_is_by_centre_and_one_to_one() -> None:
    truth = [SceneFace((0, 0, 100, 100), 1, 0), SceneFace((200, 0, 260, 60), 2, 1)]
    boxes = [(10, 10, 90, 110), (20, 20, 80, 80), (300, 300, 350, 350)]
    assert match_detections(truth, boxes) == [1, None]
    assert match_detections(truth, []) == [None, None]


def test_a_missed_face_counts_wrong_and_false_detections_apart(
    portrait_faces, detector, tiny_registry
) -> None:
    model = load_model(tiny_registry[0])
    images, labels = portrait_faces
    scene = next(make_scenes(images, labels, 1, seed=0))
    # A second truth face where there is only background: the pipeline cannot find it.
    ghost = SceneFace((0.0, 0.0, 30.0, 30.0), 0, 99)
    faked = Scene(scene.jpeg, scene.size, [*scene.faces, ghost])
    result = score_scenes([faked], [model], detector)
    score = result["models"][model.name]
    assert score["faces"] == len(scene.faces) + 1
    assert score["found"] <= len(scene.faces)
    assert score["accuracy"] == score["correct"] / score["faces"]
    assert score["found_accuracy"] == score["correct"] / score["found"]
    assert score["accuracy"] < score["found_accuracy"] or score["correct"] == 0
    assert (
        result["photos"] == 1
        and result["detect_seconds_per_photo"] > 0
        and result["cpu_seconds_per_photo"] > 0
    )
    # Scene without its truth: every detection is false.
    empty = score_scenes([Scene(scene.jpeg, scene.size, [])], [model], detector)
    assert empty["false_detections"] == score["found"] + result["false_detections"]


def test_scores_split_by_face_width() -> None:
    outcomes = [
        FaceOutcome(25, 1, {"m": 1}),  # right
        FaceOutcome(25, 2, {"m": None}),  # missed: wrong
        FaceOutcome(150, 3, {"m": 0}),  # found, wrong
        FaceOutcome(200, 3, {"m": 3}),  # the largest face belongs to the last bin
    ]
    score = score_outcomes(outcomes, "m")
    assert (score["faces"], score["found"], score["correct"]) == (4, 3, 2)
    assert score["accuracy"] == pytest.approx(2 / 4) and score["found_accuracy"] == pytest.approx(2 / 3)
    bins = {(b["low"], b["high"]): b for b in score["bins"]}
    assert [tuple(k) for k in bins] == list(WIDTH_BINS)
    assert bins[(20, 30)]["accuracy"] == 0.5 and bins[(20, 30)]["recall"] == 0.5
    assert bins[(100, 200)]["faces"] == 2 and bins[(100, 200)]["found_accuracy"] == 0.5
    assert bins[(40, 60)]["faces"] == 0 and bins[(40, 60)]["accuracy"] is None
