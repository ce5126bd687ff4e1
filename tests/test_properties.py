"""Properties (hypothesis): whatever arrives, decoding and the pipeline give a result or ImageError.

Arbitrary bytes, damaged encodings and small images of every Pillow mode and size (empty,
one pixel, very thin), through the real MTCNN, the tiny registry's models and grad-cam.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data as skimage_data

from core.faces.images import ImageError, decode_image
from core.models.loading import load_model
from core.pipeline import Analysis, analyze

MODES = [
    "1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
    "LAB", "HSV", "I", "I;16", "I;16L", "I;16B", "I;16N", "F",
]  # fmt: skip
SAVE_FORMATS = ["PNG", "TIFF", "GIF", "BMP", "WEBP", "JPEG", "PPM", "PCX", "TGA", "ICO", "EPS"]
SIZES = st.one_of(
    st.tuples(st.integers(0, 24), st.integers(0, 24)),
    st.tuples(st.integers(40, 80), st.integers(40, 80)),  # large enough for MTCNN to search
    st.sampled_from([(1, 400), (400, 1), (721, 1), (2000, 3), (3, 960), (96, 12)]),
)
# An example takes well under a second (MTCNN, two tiny models, grad-cam when a face is found);
# the deadline is generous for a 2-core machine that other test runs share.
BOUNDED = settings(
    max_examples=30,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def images(draw: st.DrawFn) -> Image.Image:
    """A Pillow image of any mode and a small or degenerate size, filled with drawn bytes."""
    mode, size = draw(st.sampled_from(MODES)), draw(SIZES)
    blank = Image.new(mode, size)
    length = len(blank.tobytes())
    if not length:
        return blank
    pattern = draw(st.binary(min_size=1, max_size=64))
    return Image.frombytes(mode, size, (pattern * (length // len(pattern) + 1))[:length])


@st.composite
def portraits(draw: st.DrawFn) -> Image.Image:
    """The astronaut's face (so faces are found, classified and explained) in any mode and scale."""
    face = Image.fromarray(skimage_data.astronaut()).crop((130, 10, 320, 230))
    scale = draw(st.floats(0.05, 1.0))
    face = face.resize((max(round(190 * scale), 1), max(round(220 * scale), 1)))
    mode = draw(st.sampled_from(MODES))
    try:
        return face.convert(mode)
    except ValueError:  # Pillow has no direct conversion from RGB to this mode
        return face.convert("L").convert(mode)


def encoded(image: Image.Image, fmt: str) -> bytes | None:
    """The image saved as fmt, or None when Pillow cannot save that mode or size so."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError, TypeError, SystemError):
        return None
    return buffer.getvalue()


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """Bytes as uploads arrive: random, a real encoding, or a real encoding cut short or altered."""
    kind = draw(st.sampled_from(["random", "intact", "damaged"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    data = encoded(draw(st.one_of(images(), portraits())), draw(st.sampled_from(SAVE_FORMATS)))
    if data is None:
        return draw(st.binary(max_size=64))
    if kind == "damaged":
        cut = draw(st.integers(0, len(data)))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        noise = draw(st.binary(min_size=1, max_size=8))
        data = data[:position] + noise + data[position + len(noise) : cut]
    return data


@BOUNDED
@given(files())
def test_decode_image_returns_rgb_or_image_error(data: bytes) -> None:
    try:
        image = decode_image(data, name="upload")
    except ImageError as err:
        assert str(err).startswith("upload: ")
        return
    assert image.mode == "RGB" and min(image.size) >= 1


@pytest.fixture
def models(tiny_registry: list[str], detector, astronaut: Image.Image) -> list:
    """The tiny registry's models, warmed up with the detector so no example pays for first calls."""
    loaded = [load_model(name) for name in tiny_registry]
    assert analyze(astronaut, loaded, detector).faces
    return loaded


@BOUNDED
@given(source=st.one_of(files(), images(), portraits()))
def test_analyze_returns_a_result_or_image_error(models: list, detector, source: bytes | Image.Image) -> None:
    try:
        analysis = analyze(source, models, detector)
    except ImageError:
        assert isinstance(source, bytes)  # a Pillow image of any mode is always usable
        return
    assert isinstance(analysis, Analysis) and analysis.image.mode == "RGB"
    for face in analysis.faces:
        assert set(face.probabilities) == {model.name for model in models} and face.crop.shape == (48, 48)
