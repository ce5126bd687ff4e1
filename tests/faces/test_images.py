"""Decoding: formats, EXIF orientation, odd modes, bombs and non-images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.faces.images import MAX_PIXELS, ImageError, decode_image, to_rgb


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_common_formats_decode_to_rgb(fmt: str) -> None:
    source = Image.new("RGB", (64, 40), (200, 30, 30))
    image = decode_image(encode(source, fmt))
    assert image.mode == "RGB" and image.size == (64, 40)


def test_gif_takes_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    red, green, blue = decode_image(buffer.getvalue()).getpixel((10, 10))
    assert red > 200 and blue < 50


def test_exif_orientation_is_applied() -> None:
    source = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    image = decode_image(encode(source, "JPEG", exif=exif))
    assert image.size == (20, 60)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (10, 10), 128),
        Image.new("RGBA", (10, 10), (0, 0, 0, 0)),
        Image.new("P", (10, 10), 3),
        Image.new("CMYK", (10, 10), (0, 0, 0, 0)),
        Image.fromarray(np.full((10, 10), 60000, dtype=np.uint16)),
    ],
    ids=["L", "RGBA", "P", "CMYK", "I;16"],
)
def test_odd_modes_become_rgb(image: Image.Image) -> None:
    fmt = "TIFF" if image.mode in ("CMYK", "I;16") else "PNG"
    decoded = decode_image(encode(image, fmt))
    assert decoded.mode == "RGB" and decoded.size == (10, 10)


def test_transparent_pixels_become_white() -> None:
    decoded = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"))
    assert decoded.getpixel((0, 0)) == (255, 255, 255)


def test_not_an_image_is_refused_clearly() -> None:
    with pytest.raises(ImageError, match="not a readable image"):
        decode_image(b"this is text, not a picture", name="notes.txt")


def test_empty_and_missing_files_are_refused(tmp_path) -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageError, match="no such file"):
        decode_image(tmp_path / "missing.jpg")


def test_truncated_file_is_refused() -> None:
    data = encode(Image.new("RGB", (200, 200), "red"), "JPEG")
    with pytest.raises(ImageError):
        decode_image(data[: len(data) // 3])


def test_decompression_bomb_is_refused() -> None:
    side = int(MAX_PIXELS**0.5) + 100
    bomb = encode(Image.new("1", (side, side)), "PNG")  # a few kB that would decode to 50+ MP
    assert len(bomb) < 2_000_000
    with pytest.raises(ImageError, match="megapixels"):
        decode_image(bomb)


@pytest.mark.parametrize("fmt", ["PCX", "TGA", "ICO", "SGI"])
def test_formats_outside_the_list_are_refused(fmt: str) -> None:
    data = encode(Image.new("RGB", (32, 32), "red"), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow alone would decode it
    with pytest.raises(ImageError, match=r"photo.jpg: not a readable image \(accepted: JPEG, PNG"):
        decode_image(data, name="photo.jpg")


def test_eps_renamed_jpg_never_runs_ghostscript(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import EpsImagePlugin

    ran = tmp_path / "ghostscript-ran"
    ghostscript = tmp_path / "gs"
    ghostscript.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    ghostscript.chmod(0o755)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", str(ghostscript))
    eps = tmp_path / "photo.jpg"
    eps.write_bytes(encode(Image.new("RGB", (20, 20), "red"), "EPS"))
    with pytest.raises(ImageError, match="accepted"):
        decode_image(eps)
    assert not ran.exists()


def test_mpo_from_a_phone_decodes() -> None:
    frames = [Image.new("RGB", (30, 20), (200, 0, 0)), Image.new("RGB", (30, 20), (0, 0, 200))]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    red, _, blue = decode_image(data, name="IMG_0001.jpg").getpixel((5, 5))
    assert red > 150 and blue < 50


def test_a_folder_is_not_an_image(tmp_path) -> None:
    (tmp_path / "album.jpg").mkdir()
    with pytest.raises(ImageError, match="album.jpg: not a file"):
        decode_image(tmp_path / "album.jpg")


def gradient(low: float, high: float, dtype: type) -> np.ndarray:
    return np.tile(np.linspace(low, high, 64), (16, 1)).astype(dtype)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_pixel_in_a_float_tiff_leaves_the_rest(bad: float) -> None:
    clean = gradient(0.0, 1.0, np.float32)
    spoiled = clean.copy()
    spoiled[8, 20] = bad
    expected = np.asarray(decode_image(encode(Image.fromarray(clean), "TIFF")).convert("L")).astype(int)
    decoded = np.asarray(decode_image(encode(Image.fromarray(spoiled), "TIFF")).convert("L")).astype(int)
    assert expected[0, 0] == 0 and expected[0, -1] == 255
    mask = np.ones_like(decoded, dtype=bool)
    mask[8, 20] = False
    assert np.abs(decoded - expected)[mask].max() <= 1
    assert decoded[8, 20] == (255 if bad == np.inf else 0)


def test_signed_32_bit_tiff_scales_from_its_real_minimum() -> None:
    signed = gradient(-1000, 1000, np.int32)
    image = Image.fromarray(signed)
    assert image.mode == "I"
    row = np.asarray(decode_image(encode(image, "TIFF")).convert("L")).astype(int)[0]
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)  # no wrap-around


@pytest.mark.parametrize("mode", ["La", "RGBa"])
def test_premultiplied_alpha_is_composited_on_white(mode: str) -> None:
    transparent = Image.new(mode, (4, 4), (0,) * len(mode))
    assert to_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)
    opaque = Image.new(mode, (4, 4), (90,) * (len(mode) - 1) + (255,))
    assert to_rgb(opaque).getpixel((0, 0)) == (90, 90, 90)
