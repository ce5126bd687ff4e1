"""Pictures (PIL) of faces, clusters and masked copies, for the CLI, the app and the docs."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from core.labels import EMOTIONS
from core.registry import LoadedModel

# Distinct colours for clusters (colour-blind friendly, Okabe-Ito).
CLUSTER_COLOURS = np.array(
    [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167)],
    dtype=np.float32,
)


def colour_clusters(crop: np.ndarray, cluster_map: np.ndarray, weight: float = 0.45) -> np.ndarray:
    """A uint8 RGB picture: each cluster tinted in its own colour over the grayscale face."""
    gray = np.repeat(crop[..., None].astype(np.float32), 3, axis=2)
    tint = CLUSTER_COLOURS[cluster_map % len(CLUSTER_COLOURS)]
    return ((1 - weight) * gray + weight * tint).round().astype(np.uint8)


def cluster_figure(
    model: LoadedModel, crop: np.ndarray, n_clusters: int = 3, lam: float = 1.5, alpha: float = 1.2, scale: int = 4
) -> Image.Image:
    """One strip: face, attention, clusters, then the face with each cluster removed (with the model's verdict)."""
    from core.perturb import study_clusters
    from core.saliency import overlay_on_crop

    study = study_clusters(crop, model, [model], n_clusters, lam, alpha)
    panels = [
        np.repeat(crop[..., None], 3, axis=2),
        overlay_on_crop(crop, study.attention),
        colour_clusters(crop, study.cluster_map),
        *(np.repeat(m[..., None], 3, axis=2) for m in study.masked),
    ]
    captions = ["face", "attention", f"{n_clusters} clusters"]
    probabilities = study.probabilities[model.name]
    for row in probabilities[1:]:
        captions.append(f"{EMOTIONS[int(row.argmax())]} {row.max():.0%}")
    size = crop.shape[0] * scale
    strip = Image.new("RGB", (size * len(panels), size + 16), "white")
    draw = ImageDraw.Draw(strip)
    for i, (panel, caption) in enumerate(zip(panels, captions, strict=True)):
        strip.paste(Image.fromarray(panel).resize((size, size), Image.NEAREST), (i * size, 0))
        draw.text((i * size + 3, size + 2), caption, fill=(0, 0, 0))
    return strip
