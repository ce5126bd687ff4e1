"""Readability flags: faces too small or blurred to read are flagged, through the whole pipeline."""

from __future__ import annotations

import csv
import io

from PIL import Image, ImageFilter

from core.batch import FileResult, TableWriter
from core.faces.detection import FaceDetector, crop_face
from core.faces.quality import MIN_READABLE_WIDTH, readability_flags
from core.models.loading import load_model
from core.pipeline import analyze


def test_a_large_sharp_face_has_no_flag_and_a_tiny_one_is_small(
    tiny_registry: list[str], detector: FaceDetector, astronaut: Image.Image
) -> None:
    models = [load_model(name) for name in tiny_registry]
    large = analyze(astronaut, models, detector, cam_method=None)
    assert large.faces[0].flags == () and large.faces[0].warning() == ""
    assert large.to_dict()["faces"][0]["flags"] == []

    small = astronaut.resize((120, 120))  # the face is about 20 pixels wide
    found = analyze(small, models, FaceDetector(min_face_size=15), cam_method=None)
    face = found.faces[0]
    assert face.face.box[2] - face.face.box[0] < MIN_READABLE_WIDTH
    assert "small" in face.flags and "too small to read reliably" in face.warning()
    assert "small" in found.to_dict()["faces"][0]["flags"]
    rows = list(csv.DictReader(io.StringIO(found.to_csv("small.png"))))
    assert all("small" in row["flags"].split() for row in rows)
    assert rows[0]["happy"]  # still read: the flag says how far to trust it


def test_blurred_crops_are_flagged(detector: FaceDetector, astronaut: Image.Image) -> None:
    face = detector.detect(astronaut)[0]
    sharp = crop_face(astronaut, face)
    assert readability_flags(face, sharp) == ()
    assert readability_flags(face, crop_face(astronaut.filter(ImageFilter.GaussianBlur(1)), face)) == ()
    blurred = crop_face(astronaut.filter(ImageFilter.GaussianBlur(4)), face)
    assert readability_flags(face, blurred) == ("blurred",)


def test_the_cli_table_says_why_a_face_may_be_wrong(
    tiny_registry: list[str], astronaut: Image.Image, tmp_path
) -> None:
    models = [load_model(name) for name in tiny_registry]
    found = analyze(astronaut.resize((120, 120)), models, FaceDetector(min_face_size=15), cam_method=None)
    out = io.StringIO()
    TableWriter(out).write(FileResult(tmp_path / "small.png", found, None))
    assert "too small to read reliably" in out.getvalue()
