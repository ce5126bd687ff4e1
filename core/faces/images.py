"""Decode user images safely: any common format, EXIF orientation, odd modes, size limits."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's default bomb limit (~89 MP) warns first and errors at twice that; we refuse early.
MAX_PIXELS = 50_000_000
MAX_BYTES = 50 * 1024 * 1024
# The formats users bring; only these parsers run: an EPS renamed .jpg must never start
# Ghostscript. JPEG includes phones' MPO (a JPEG with more frames); PPM reads .pgm.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm")
ACCEPTED = "JPEG, PNG, WebP, BMP, TIFF, GIF or PGM"


class ImageError(ValueError):
    """An input that is not a usable image; the message is meant for the user."""


def decode_image(
    source: bytes | str | Path, name: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode bytes or a file path into an RGB image with EXIF orientation applied.

    Handles grayscale, RGBA (composited on white), palette, CMYK, 16-bit, 32-bit and float
    images and takes the first frame of animations. Raises ImageError with a readable
    message for files that are not images, not in FORMATS, too large (more than max_pixels,
    default MAX_PIXELS), or decompression bombs.
    """
    max_pixels = min(max_pixels or MAX_PIXELS, MAX_PIXELS)
    label = name or (str(source) if isinstance(source, (str, Path)) else "upload")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label}: no such file")
        if not path.is_file():
            raise ImageError(f"{label}: not a file")
        try:
            if path.stat().st_size > MAX_BYTES:
                raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
            data = path.read_bytes()
        except OSError as err:
            raise ImageError(f"{label}: cannot be read ({err.strerror or err.__class__.__name__})") from err
    else:
        data = bytes(source)
    if not data:
        raise ImageError(f"{label}: file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{label}: image is {width}x{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels"
                )
            image.seek(0)
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{label}: image is too large to decode safely") from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{label}: not a readable image (accepted: {ACCEPTED})") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{label}: not a readable image ({err.__class__.__name__})") from err
    ImageOps.exif_transpose(image, in_place=True)  # no copy: a 49-megapixel photo is 147 MB a copy
    return to_rgb(image)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down so that its longer side is at most max_side (itself when it fits)."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(round(image.width * scale), 1), max(round(image.height * scale), 1))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white.

    16-bit, 32-bit and float pixels are scaled to 0..255 from 0 (or their minimum, when it
    is negative or the pixels are floats) to their maximum; NaN and infinite values do not
    count towards either and become black (NaN, -inf) or white (+inf).
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        image = Image.fromarray(_scaled_to_bytes(np.asarray(image), zero_is_black=image.mode != "F"))
    if image.mode == "La":  # premultiplied alpha, which Pillow cannot convert: composite by hand
        luma, alpha = (np.asarray(band, dtype=np.int32) for band in image.split())
        return Image.fromarray(np.clip(luma + 255 - alpha, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "RGBa", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def to_gray_array(image: Image.Image) -> np.ndarray:
    """An image as a uint8 HxW grayscale array."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _scaled_to_bytes(array: np.ndarray, zero_is_black: bool) -> np.ndarray:
    values = array.astype(np.float64)
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if zero_is_black:
        low = min(low, 0.0)
    span = (high - low) or 1.0
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    return np.clip((values - low) / span * 255, 0, 255).round().astype(np.uint8)
