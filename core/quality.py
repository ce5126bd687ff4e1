"""Whether a face crop can be read: too small in the photo, too blurred or too dark.

Thresholds come from the faces-in-scenes study (`python -m core.face_study`, README table): below
them the shipped models' accuracy on found faces drops well under their accuracy elsewhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.faces import Face

MIN_READABLE_WIDTH = 25.0  # photo pixels of the detector's box
MIN_SHARPNESS = 10.0  # variance of the Laplacian of the 48x48 crop
MIN_BRIGHTNESS = 40.0  # mean grey level of the 48x48 crop

FLAG_TEXT = {
    "small": "too small to read reliably",
    "blurred": "too blurred to read reliably",
    "dark": "too dark to read reliably",
}


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of a grayscale crop: low for blurred faces."""
    return float(ndimage.laplace(np.asarray(crop, np.float32)).var())


def brightness(crop: np.ndarray) -> float:
    """Mean grey level (0-255) of a grayscale crop."""
    return float(np.asarray(crop, np.float32).mean())


def readability_flags(face: Face, crop: np.ndarray) -> tuple[str, ...]:
    """Why a face may be read wrongly (keys of FLAG_TEXT), empty when nothing is wrong."""
    flags = []
    if face.box[2] - face.box[0] < MIN_READABLE_WIDTH:
        flags.append("small")
    if sharpness(crop) < MIN_SHARPNESS:
        flags.append("blurred")
    if brightness(crop) < MIN_BRIGHTNESS:
        flags.append("dark")
    return tuple(flags)
