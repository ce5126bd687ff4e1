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


class ImageError(ValueError):
    """An input that is not a usable image; the message is meant for the user."""


def decode_image(
    source: bytes | str | Path, name: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode bytes or a file path into an RGB image with EXIF orientation applied.

    Handles grayscale, RGBA (composited on white), palette, CMYK and 16-bit images and
    takes the first frame of animations. Raises ImageError with a readable message for
    files that are not images, are too large (more than max_pixels, default MAX_PIXELS),
    or are decompression bombs.
    """
    max_pixels = min(max_pixels or MAX_PIXELS, MAX_PIXELS)
    label = name or (str(source) if isinstance(source, (str, Path)) else "upload")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file")
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise ImageError(f"{label}: file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{label}: file is larger than {MAX_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
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
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array / top * 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        span = float(array.max() - array.min()) or 1.0
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def to_gray_array(image: Image.Image) -> np.ndarray:
    """An image as a uint8 HxW grayscale array."""
    return np.asarray(image.convert("L"), dtype=np.uint8)
