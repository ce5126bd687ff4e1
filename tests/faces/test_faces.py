"""Real MTCNN: faces found where they are, none where there are none, FER-style crops."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from core.faces.detection import (
    MIN_ROLL_DEGREES,
    FaceDetector,
    as_box,
    crop_face,
    eye_roll,
    largest_face_crop,
)

# The astronaut's face in skimage.data.astronaut() (512x512): roughly x 180-270, y 60-175.
FACE_CENTRE = (224, 117)


def centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def test_one_face_in_the_astronaut_portrait(detector: FaceDetector, astronaut: Image.Image) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    x, y = centre(faces[0].box)
    assert abs(x - FACE_CENTRE[0]) < 20 and abs(y - FACE_CENTRE[1]) < 20
    assert faces[0].score > 0.95
    assert len(faces[0].landmarks) == 5
    left_eye, right_eye = faces[0].landmarks[:2]
    assert left_eye[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 15


def test_no_face_in_a_blank_image(detector: FaceDetector) -> None:
    assert detector.detect(Image.new("RGB", (320, 240), "white")) == []
    assert detector.detect(Image.new("RGB", (8, 8), "white")) == []


def test_photos_smaller_than_the_smallest_face_have_none(
    detector: FaceDetector, astronaut: Image.Image
) -> None:
    # Shorter than min_face_size (20) or MTCNN's 12 px floor on one side, before or after downscaling to max_side.
    for size in [(30, 30), (12, 12), (960, 12), (100, 20), (2000, 30), (0, 0), (5, 0)]:
        assert detector.detect(Image.new("RGB", size, "white")) == [], size
    assert detector.detect(astronaut.resize((39, 39))) == []
    assert len(detector.detect(astronaut.resize((200, 200)))) == 1  # small, but large enough


def test_large_photo_is_detected_downscaled_and_mapped_back(astronaut: Image.Image) -> None:
    detector = FaceDetector(max_side=512)
    big = astronaut.resize((2048, 2048))
    faces = detector.detect(big)
    assert len(faces) == 1
    x, y = centre(faces[0].box)
    assert abs(x - 4 * FACE_CENTRE[0]) < 80 and abs(y - 4 * FACE_CENTRE[1]) < 80


def test_several_faces_sorted_largest_first_and_capped(astronaut: Image.Image) -> None:
    face = astronaut.crop((150, 40, 300, 200))
    canvas = Image.new("RGB", (900, 400), (90, 90, 90))
    canvas.paste(face, (20, 100))
    canvas.paste(face.resize((225, 240)), (400, 80))
    faces = FaceDetector().detect(canvas)
    assert len(faces) == 2
    widths = [f.box[2] - f.box[0] for f in faces]
    assert widths[0] > widths[1]
    assert len(FaceDetector(max_faces=1).detect(canvas)) == 1


def test_crop_is_48x48_grayscale_and_square_box(detector: FaceDetector, astronaut: Image.Image) -> None:
    face = detector.detect(astronaut)[0]
    left, top, right, bottom = face.crop_box()
    assert right - left == bottom - top
    crop = crop_face(astronaut, face)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.std() > 10  # a face, not a flat patch


def test_crop_near_the_border_repeats_edges_instead_of_black(
    detector: FaceDetector, astronaut: Image.Image
) -> None:
    shifted = astronaut.crop((170, 70, 512, 512))  # face touches the top-left corner
    faces = detector.detect(shifted)
    assert faces
    crop = crop_face(shifted, faces[0])
    assert crop.shape == (48, 48)
    assert (crop == 0).mean() < 0.05


def test_largest_face_crop_is_none_without_faces(detector: FaceDetector) -> None:
    assert largest_face_crop(detector, Image.new("RGB", (100, 100), "black")) is None


def test_min_face_size_is_in_photo_pixels(astronaut: Image.Image) -> None:
    small = astronaut.resize((130, 130))  # the face is about 22 px wide
    assert len(FaceDetector(min_face_size=20).detect(small)) == 1
    assert FaceDetector(min_face_size=60).detect(small) == []


def test_as_box_takes_exactly_four_numbers_as_floats() -> None:
    box = as_box(np.array([1, 2, 3, 4], dtype=np.float32))
    assert box == (1.0, 2.0, 3.0, 4.0)
    assert all(type(v) is float for v in box)
    for wrong in ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]):
        with pytest.raises(ValueError):
            as_box(wrong)


def eye_slope(detector: FaceDetector, crop: np.ndarray) -> float:
    """The eyes' slope (degrees) that MTCNN finds in a 48x48 crop, upscaled so it can find the face."""
    photo = Image.fromarray(crop).resize((192, 192), Image.Resampling.BICUBIC).convert("RGB")
    faces = FaceDetector(min_face_size=60, align=False).detect(photo)
    assert faces, "no face in the crop"
    return eye_roll(faces[0].landmarks)


@pytest.mark.parametrize("degrees", [20, -25])
def test_alignment_levels_a_tilted_portraits_eyes(astronaut: Image.Image, degrees: float) -> None:
    detector = FaceDetector(align=True)
    upright = crop_face(astronaut, detector.detect(astronaut)[0]).astype(float)
    tilted = astronaut.rotate(degrees, resample=Image.Resampling.BICUBIC, center=FACE_CENTRE)
    face = detector.detect(tilted)[0]
    assert abs(face.roll + degrees) < 8  # Pillow turns counter-clockwise; the roll is clockwise
    aligned = crop_face(tilted, face)
    plain = crop_face(tilted, FaceDetector(align=False).detect(tilted)[0])
    assert abs(eye_slope(detector, aligned)) < 6
    assert abs(eye_slope(detector, plain)) > 12

    def likeness(crop: np.ndarray) -> float:
        return float(np.corrcoef(crop.astype(float).ravel(), upright.ravel())[0, 1])

    assert likeness(aligned) > 0.75 and likeness(aligned) > likeness(plain) + 0.2


def test_small_tilts_and_unaligned_detectors_crop_upright(astronaut: Image.Image) -> None:
    # The astronaut tilts her head about 2 degrees: below MIN_ROLL_DEGREES, left as it is.
    face = FaceDetector(align=True).detect(astronaut)[0]
    assert face.roll == 0.0 and 0 < abs(eye_roll(face.landmarks)) < MIN_ROLL_DEGREES
    tilted = astronaut.rotate(20, center=FACE_CENTRE)
    assert FaceDetector().detect(tilted)[0].roll == 0.0  # alignment is off by default
    assert FaceDetector(align=True, min_roll=30).detect(tilted)[0].roll == 0.0
    frame = face.crop_frame()
    left, top, right, bottom = face.crop_box()
    assert frame.bounds() == (left, top, right, bottom) and frame.angle == 0.0


def test_turned_crop_square_keeps_its_centre_and_side(astronaut: Image.Image) -> None:
    face = replace(FaceDetector().detect(astronaut)[0], roll=30.0)
    frame = face.crop_frame()
    corners = np.array(frame.corners())
    assert np.allclose(corners.mean(axis=0), (frame.cx, frame.cy))
    sides = np.linalg.norm(np.diff(np.vstack([corners, corners[:1]]), axis=0), axis=1)
    assert np.allclose(sides, frame.side)
    top_edge = corners[1] - corners[0]
    assert np.isclose(np.degrees(np.arctan2(top_edge[1], top_edge[0])), 30.0)
    as_dict = face.as_dict()
    assert as_dict["roll"] == 30.0 and len(as_dict["crop_corners"]) == 4


class CountingImage:
    """A photo that records the regions read from it (every read of crop_face goes through crop)."""

    def __init__(self, image: Image.Image) -> None:
        self.image, self.width, self.height, self.reads = image, image.width, image.height, []

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        self.reads.append(box)
        return self.image.crop(box)

    def convert(self, mode: str) -> Image.Image:
        raise AssertionError("crop_face converted the whole photo")


@pytest.mark.parametrize("roll", [0.0, 25.0])
def test_crop_reads_only_the_pixels_around_the_face(astronaut: Image.Image, roll: float) -> None:
    big = Image.new("RGB", (4000, 3000), (120, 120, 120))
    big.paste(astronaut, (1000, 1000))
    face = replace(FaceDetector().detect(astronaut)[0], roll=roll)
    face = replace(face, box=as_box(v + 1000 for v in face.box))
    photo = CountingImage(big)
    crop = crop_face(photo, face)  # type: ignore[arg-type]
    ((x1, y1, x2, y2),) = photo.reads
    assert (x2 - x1) * (y2 - y1) < 2 * (face.crop_frame().side + 2) ** 2
    assert np.array_equal(crop, crop_face(big, face))


def test_turned_crop_past_the_border_repeats_edges(astronaut: Image.Image) -> None:
    shifted = astronaut.crop((170, 70, 512, 512))
    face = replace(FaceDetector().detect(shifted)[0], roll=30.0)
    crop = crop_face(shifted, face)
    assert (crop == 0).mean() < 0.05


def test_a_twin_detector_has_the_same_settings_and_finds_the_same_faces(astronaut) -> None:
    detector = FaceDetector(min_face_size=30, max_faces=3, max_side=400, align=True, min_roll=4.0)
    twin = detector.twin()
    assert twin._mtcnn is not detector._mtcnn
    settings = ("min_face_size", "score_threshold", "max_faces", "max_side", "align", "min_roll")
    assert [getattr(twin, name) for name in settings] == [getattr(detector, name) for name in settings]
    assert [face.box for face in twin.detect(astronaut)] == [face.box for face in detector.detect(astronaut)]


def test_detecting_same_size_photos_in_one_pass_finds_what_one_by_one_does(astronaut, detector) -> None:
    photos = [astronaut.resize((256, 256)), Image.new("RGB", (256, 256), "white")]
    together = detector.detect_same_size(photos)
    alone = detector.detect(photos[0])
    assert len(together) == 2 and together[1] == [] and len(together[0]) == len(alone) == 1
    assert together[0][0].box == pytest.approx(alone[0].box, abs=1.0)
    assert len(together[0][0].landmarks) == 5
