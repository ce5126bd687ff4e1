"""Whether a face crop can be read: too small in the photo or too blurred.

Thresholds come from the faces-in-scenes study (`python -m tests.harness.face_study --scenes 50`, README
table), on the faces found with a 20 px minimum: faces narrower than 25 px were read right 3 times
in 9 against 64 % for the wider ones; crops in the blurriest tenth (sharpness under 120) 58 % and
42 % (baseline, masked) against 71 % and 69 % for the sharpest half. FER2013 val's own crops are
sharper than 432 in 99 % of cases. Darkness is not flagged: no scene face was dark enough to measure it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.faces.detection import Face

MIN_READABLE_WIDTH = 25.0  # photo pixels of the detector's box
MIN_SHARPNESS = 120.0  # variance of the Laplacian of the 48x48 crop

FLAG_TEXT = {
    "small": "too small to read reliably",
    "blurred": "too blurred to read reliably",
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
    return tuple(flags)
