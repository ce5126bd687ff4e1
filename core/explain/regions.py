"""The seed paper's method for one face: attention → k-means regions → each region removed.

Shows which facial region each model depends on: the same clusters the cluster-masked
training removes (core.explain.clusters), applied to one crop, with every model's prediction on
the whole face and on the face with each region blacked out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.explain.clusters import (
    ALPHA,
    DEFAULT_CLUSTERS,
    LAMBDA,
    cluster_attention,
    cluster_each,
    remove_cluster,
)
from core.explain.saliency import attention_maps, overlay_on_crop
from core.labels import EMOTIONS
from core.models.predict import predict_many
from core.models.registry import LoadedModel

# One colour per region (RGB), most attended region first.
REGION_COLOURS: tuple[tuple[int, int, int], ...] = (
    (228, 26, 28),
    (55, 126, 184),
    (77, 175, 74),
    (152, 78, 163),
    (255, 127, 0),
    (255, 255, 51),
    (166, 86, 40),
    (247, 129, 191),
)
REGION_COLOUR_NAMES = ("red", "blue", "green", "purple", "orange", "yellow", "brown", "pink")


@dataclass
class RegionStudy:
    """One face split into attention regions, and every model's probabilities per removal.

    probabilities[model] is (1 + n, 7): row 0 the whole face, row k + 1 the face with
    region k removed.
    """

    crop: np.ndarray
    attention: np.ndarray
    cluster_map: np.ndarray
    masked: np.ndarray
    probabilities: dict[str, np.ndarray]
    attention_model: str

    @property
    def n_regions(self) -> int:
        return len(self.masked)

    def top(self, model: str, row: int = 0) -> tuple[str, float]:
        """A model's predicted emotion and its probability on row `row` (0 = whole face)."""
        probs = self.probabilities[model][row]
        index = int(np.argmax(probs))
        return EMOTIONS[index], float(probs[index])

    def changed(self, model: str, region: int) -> bool:
        """Whether removing `region` changes the model's predicted emotion."""
        return self.top(model, region + 1)[0] != self.top(model, 0)[0]

    def region_share(self, region: int) -> float:
        """Fraction of the crop's pixels that belong to `region`."""
        return float((self.cluster_map == region).mean())


def study_regions(
    crop: np.ndarray,
    attention_model: LoadedModel,
    models: Sequence[LoadedModel],
    n_clusters: int = DEFAULT_CLUSTERS,
    lam: float = LAMBDA,
    alpha: float = ALPHA,
    cam_method: str = "gradcam",
    seed: int = 0,
) -> RegionStudy:
    """Cluster one 48x48 crop by `attention_model`'s Grad-CAM and classify each masked copy."""
    crop = np.asarray(crop, dtype=np.uint8)
    attention = attention_maps(attention_model, crop[None], None, method=cam_method)[0]
    cluster_map = cluster_attention(attention, n_clusters, lam, alpha, seed)
    masked = np.stack([remove_cluster(crop, cluster_map, k) for k in range(n_clusters)])
    probabilities = predict_many(list(models), np.concatenate([crop[None], masked]))
    return RegionStudy(crop, attention, cluster_map, masked, probabilities, attention_model.name)


def dataset_regions(
    attention_model: LoadedModel,
    crops: np.ndarray,
    labels: np.ndarray,
    n_clusters: int = DEFAULT_CLUSTERS,
    cam_method: str = "gradcam",
    seed: int = 0,
) -> np.ndarray:
    """Region maps (N, 48, 48) of labelled crops, as the masked training makes them: each face
    clustered by `attention_model`'s Grad-CAM for its true class, region 0 the most attended.
    """
    attention = attention_maps(attention_model, crops, labels, method=cam_method)
    return cluster_each(attention, n_clusters, seed)


def colour_regions(crop: np.ndarray, cluster_map: np.ndarray, weight: float = 0.45) -> np.ndarray:
    """A uint8 RGB picture of the crop with each region tinted in its REGION_COLOURS colour."""
    if crop.shape[:2] != cluster_map.shape:
        raise ValueError(f"crop {crop.shape[:2]} and cluster map {cluster_map.shape} differ in size")
    gray = np.repeat(np.asarray(crop, dtype=np.float32)[..., None], 3, axis=2)
    palette = np.array(REGION_COLOURS, dtype=np.float32)
    tint = palette[np.asarray(cluster_map, dtype=np.int64) % len(palette)]
    return np.clip((1 - weight) * gray + weight * tint, 0, 255).round().astype(np.uint8)


def region_label(region: int) -> str:
    """A region's name for captions: its number (1 = most attended) and colour."""
    return f"region {region + 1} ({REGION_COLOUR_NAMES[region % len(REGION_COLOUR_NAMES)]})"


def region_strip(
    crop: np.ndarray,
    model: LoadedModel,
    n_clusters: int = DEFAULT_CLUSTERS,
    lam: float = LAMBDA,
    alpha: float = ALPHA,
    scale: int = 4,
) -> Image.Image:
    """One picture: face, attention, coloured regions, then the face without each region and the model's verdict."""
    study = study_regions(crop, model, [model], n_clusters, lam, alpha)
    panels = [
        np.repeat(study.crop[..., None], 3, axis=2),
        overlay_on_crop(study.crop, study.attention),
        colour_regions(study.crop, study.cluster_map),
        *(np.repeat(m[..., None], 3, axis=2) for m in study.masked),
    ]
    captions = ["face", "attention", f"{n_clusters} regions"]
    captions += ["{} {:.0%}".format(*study.top(model.name, k + 1)) for k in range(n_clusters)]
    size = study.crop.shape[0] * scale
    strip = Image.new("RGB", (size * len(panels), size + 16), "white")
    draw = ImageDraw.Draw(strip)
    for i, (panel, caption) in enumerate(zip(panels, captions, strict=True)):
        strip.paste(Image.fromarray(panel).resize((size, size), Image.Resampling.NEAREST), (i * size, 0))
        draw.text((i * size + 3, size + 2), caption, fill=(0, 0, 0))
    return strip
