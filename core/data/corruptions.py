"""Real-photo damage applied to 48x48 face crops, in the style of ImageNet-C (Hendrycks & Dietterich 2019).

One set of functions serves two jobs: the corruption suite scores a model on FER2013 `val`
damaged at fixed severities, and robust training (`--corrupt-probability`) damages training
faces at a random severity. Each corruption takes a uint8 (48, 48) face, a severity from 1 to
SEVERITIES and a NumPy generator, and returns a uint8 (48, 48) face. Pixels moved in from outside
the crop repeat the nearest edge, as core.faces.detection.crop_face does: black means "removed" to the
cluster-masked model.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageFilter

SEVERITIES = 3
PAD = 16  # edge pixels added around a face before a rotation or shift, cut off afterwards

# Per severity 1..3. Chosen so severity 3 is about as bad as faces in group photos get: a head
# tilted 30°, a face 12 pixels wide, JPEG at quality 10, a room lit at an eighth.
ROTATION_DEGREES = (10.0, 20.0, 30.0)
BLUR_SIGMA = (0.7, 1.2, 2.0)
NOISE_STD = (8.0, 16.0, 28.0)
JPEG_QUALITY = (30, 18, 10)
LIGHT_FACTOR = (0.45, 0.25, 0.12)
LOW_RESOLUTION_SIDE = (24, 16, 12)
JITTER = ((0.06, 0.08), (0.10, 0.14), (0.15, 0.22))  # (largest shift, largest zoom change), in crop sizes


def _edge_affine(
    face: np.ndarray, angle: float = 0.0, shift: tuple[float, float] = (0, 0), zoom: float = 1.0
) -> np.ndarray:
    """Rotate (degrees), shift (pixels) and zoom a face about its centre, filling from the edges."""
    size = face.shape[0]
    padded = Image.fromarray(np.pad(face, PAD, mode="edge"))
    centre = padded.width / 2
    # Pillow's affine maps output to input pixels: inverse of zoom, then rotation, then shift.
    cos, sin = np.cos(np.radians(angle)) / zoom, np.sin(np.radians(angle)) / zoom
    a, b, d, e = cos, sin, -sin, cos
    c = centre - a * (centre + shift[0]) - b * (centre + shift[1])
    f = centre - d * (centre + shift[0]) - e * (centre + shift[1])
    moved = padded.transform(
        padded.size, Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR
    )
    return np.asarray(moved, dtype=np.uint8)[PAD : PAD + size, PAD : PAD + size].copy()


def rotation(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The head tilted left or right by up to the severity's angle (at least half of it)."""
    limit = ROTATION_DEGREES[severity - 1]
    angle = float(rng.uniform(limit / 2, limit)) * float(rng.choice((-1.0, 1.0)))
    return _edge_affine(face, angle=angle)


def blur(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (out of focus, motion-free)."""
    picture = Image.fromarray(face).filter(ImageFilter.GaussianBlur(BLUR_SIGMA[severity - 1]))
    return np.asarray(picture, dtype=np.uint8)


def noise(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise."""
    noisy = face.astype(np.float32) + rng.normal(0.0, NOISE_STD[severity - 1], face.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression at a low quality."""
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, format="JPEG", quality=JPEG_QUALITY[severity - 1])
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"), dtype=np.uint8)


def low_light(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A dark photo: light scaled down and quantised there (the detail lost in the dark stays lost),
    plus the sensor noise that comes with it."""
    factor = LIGHT_FACTOR[severity - 1]
    dark = np.rint(face.astype(np.float32) * factor) + rng.normal(0.0, 2.0, face.shape)
    return np.clip(np.rint(dark), 0, 255).astype(np.uint8)


def low_resolution(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A small face scaled up: down to the severity's side, back up to the crop size."""
    side = LOW_RESOLUTION_SIDE[severity - 1]
    small = Image.fromarray(face).resize((side, side), Image.Resampling.BOX)
    return np.asarray(small.resize(face.shape[::-1], Image.Resampling.BILINEAR), dtype=np.uint8)


def crop_jitter(face: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A detector box off its usual framing: shifted and zoomed in or out."""
    shift_limit, zoom_limit = JITTER[severity - 1]
    size = face.shape[0]
    shift = tuple(float(v) for v in rng.uniform(-shift_limit, shift_limit, 2) * size)
    zoom = float(np.exp(rng.uniform(-zoom_limit, zoom_limit)))
    return _edge_affine(face, shift=(shift[0], shift[1]), zoom=zoom)


Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
CORRUPTIONS: dict[str, Corruption] = {
    "rotation": rotation,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
    "low_light": low_light,
    "low_resolution": low_resolution,
    "crop_jitter": crop_jitter,
}


def corrupt(face: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """One face damaged by one named corruption at a severity from 1 to SEVERITIES."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= SEVERITIES:
        raise ValueError(f"severity must be from 1 to {SEVERITIES}, not {severity}")
    damaged = CORRUPTIONS[name](np.ascontiguousarray(face, dtype=np.uint8), severity, rng)
    return np.array(damaged, dtype=np.uint8)  # a writable copy (Pillow's arrays are read-only)


def corrupt_all(faces: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Every face of a (N, 48, 48) uint8 array damaged the same way (the random parts seeded)."""
    rng = np.random.default_rng(seed)
    return np.stack([corrupt(face, name, severity, rng) for face in faces]) if len(faces) else faces.copy()


class RandomCorruption(torch.nn.Module):
    """Training augmentation: with probability p, one corruption picked at random at a random severity.

    Works on uint8 tensors (1, H, W) as the other training transforms do. Its randomness comes
    from torch's generator, which training checkpoints, so a resumed run stays exact.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.names = list(CORRUPTIONS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or float(torch.rand(())) >= self.p:
            return image
        name = self.names[int(torch.randint(len(self.names), ()))]
        severity = int(torch.randint(1, SEVERITIES + 1, ()))
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
        face = corrupt(image[0].numpy(), name, severity, rng)
        return torch.from_numpy(face)[None]
