"""core.faces.mtcnn finds what facenet-pytorch's own MTCNN.detect finds: same boxes, scores, landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from core.evaluation.scenes import make_scenes
from core.faces.detection import FaceDetector, crop_face
from core.faces.mtcnn import area_table, pyramid_scales, resample_boxes
from tests.harness.bench import sample_photos


@pytest.fixture(scope="module")
def stock() -> MTCNN:
    """facenet-pytorch's detector as it ships (channels-first nets), at the photo minimum of 20 px."""
    return MTCNN(keep_all=True, device="cpu", min_face_size=20)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def assert_same_faces(photo: Image.Image, stock: MTCNN, detector: FaceDetector) -> int:
    """The detector's faces are stock MTCNN's above the score threshold, box for box (IoU >= 0.99)."""
    with torch.inference_mode():
        boxes, scores, points = stock.detect(photo, landmarks=True)
    expected = (
        []
        if boxes is None
        else [(b, s, p) for b, s, p in zip(boxes, scores, points, strict=True) if s >= 0.9]
    )
    found = detector.detect_all(photo)
    assert len(found) == len(expected)
    for face in found:
        box = np.array(face.box)
        best = max(expected, key=lambda e: iou(box, e[0]))
        assert iou(box, best[0]) >= 0.99
        assert abs(face.score - float(best[1])) < 1e-4
        assert np.abs(np.array(face.landmarks) - best[2]).max() < 0.05
    return len(found)


def test_the_bench_photo_and_the_portrait_give_stocks_faces(
    stock: MTCNN, detector: FaceDetector, astronaut: Image.Image
) -> None:
    import io

    one = Image.open(io.BytesIO(sample_photos()["640x480, 1 face"])).convert("RGB")
    assert assert_same_faces(one, stock, detector) == 1
    assert assert_same_faces(astronaut, stock, detector) == 1
    tilted = astronaut.rotate(-25, resample=Image.Resampling.BICUBIC, center=(224, 117))
    assert assert_same_faces(tilted, stock, detector) == 1


def test_faces_in_scenes_give_stocks_faces(
    stock: MTCNN, detector: FaceDetector, astronaut: Image.Image
) -> None:
    crop = crop_face(astronaut, detector.detect(astronaut)[0])
    images, labels = np.stack([crop, crop[:, ::-1].copy()] * 3), np.array([3, 4] * 3)
    found = 0
    for scene in make_scenes(images, labels, 3, seed=5):
        photo = scene.image()
        if max(photo.size) <= detector.max_side:  # larger ones are searched on a copy: see below
            found += assert_same_faces(photo, stock, detector)
    assert found >= 2


def test_no_face_and_a_photo_too_small_for_one(stock: MTCNN, detector: FaceDetector) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3)).astype(np.uint8))
    assert assert_same_faces(noise, stock, detector) == 0
    assert detector.detect_all(Image.new("RGB", (19, 300))) == []


def test_a_large_photo_is_searched_on_a_copy_as_before(stock: MTCNN, detector: FaceDetector) -> None:
    import io

    many = Image.open(io.BytesIO(sample_photos()["1920x1080, 4 faces"])).convert("RGB")
    small = many.resize((960, 540), Image.Resampling.BILINEAR)
    stock.min_face_size = 12  # what the detector searches the half-size copy from
    try:
        with torch.inference_mode():
            boxes, scores = stock.detect(small)
    finally:
        stock.min_face_size = 20
    expected = boxes[scores >= 0.9] * 2
    found = detector.detect_all(many)
    assert len(found) == len(expected) == 4
    for face in found:
        assert max(iou(np.array(face.box), box) for box in expected) >= 0.99


def test_boxes_are_averaged_as_interpolate_averages_them() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (57, 83, 3)).astype(np.uint8)
    table = area_table(pixels)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    boxes = [(0, 57, 0, 83), (5, 40, 10, 30), (2, 9, 70, 83), (10, 11, 3, 4)]  # top, bottom, left, right
    for size in ((24, 24), (48, 48), (30, 44)):
        top, bottom, left, right = (torch.tensor(v) for v in zip(*boxes, strict=True))
        ours = resample_boxes(table, top, bottom, left, right, size)
        for k, (t, b, x1, x2) in enumerate(boxes):
            expected = torch.nn.functional.interpolate(image[:, :, t:b, x1:x2], size=size, mode="area")[0]
            assert torch.allclose(ours[k], expected, atol=1e-4)


def test_the_pyramid_is_facenet_pytorchs() -> None:
    scales = pyramid_scales(480, 640, 20, 0.709)
    assert scales[0] == pytest.approx(0.6) and len(scales) == 10
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.709


def test_one_detector_serves_threads_at_once(detector: FaceDetector, astronaut: Image.Image) -> None:
    from concurrent.futures import ThreadPoolExecutor

    small = astronaut.resize((256, 256))
    photos = [astronaut, small] * 3
    expected = [[face.box for face in detector.detect(photo)] for photo in photos[:2]] * 3
    with ThreadPoolExecutor(3) as pool:
        found = list(pool.map(lambda photo: [face.box for face in detector.detect(photo)], photos))
    assert found == expected


def test_pyramid_levels_are_interpolates_area_averages() -> None:
    from core.faces.mtcnn import pyramid_level, row_sums

    pixels = np.random.default_rng(4).integers(0, 255, (97, 131, 3)).astype(np.uint8)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    for scale in pyramid_scales(97, 131, 20, 0.709):
        size = (int(97 * scale + 1), int(131 * scale + 1))
        level = pyramid_level(row_sums(pixels), size)
        assert level.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(
            level, torch.nn.functional.interpolate(image, size=size, mode="area"), atol=1e-4
        )
