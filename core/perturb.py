"""Remove one attention cluster at a time and watch each model's prediction change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.clusters import ALPHA, DEFAULT_CLUSTERS, LAMBDA, cluster_attention, remove_cluster
from core.predict import predict_proba
from core.registry import LoadedModel
from core.saliency import attention_maps


@dataclass
class ClusterStudy:
    """One face: its attention, its cluster map, the masked copies and every model's probabilities.

    probabilities[model] has one row for the intact face followed by one per removed cluster.
    """

    crop: np.ndarray
    attention: np.ndarray
    cluster_map: np.ndarray
    masked: np.ndarray
    probabilities: dict[str, np.ndarray]


def study_clusters(
    crop: np.ndarray,
    attention_model: LoadedModel,
    models: list[LoadedModel],
    n_clusters: int = DEFAULT_CLUSTERS,
    lam: float = LAMBDA,
    alpha: float = ALPHA,
    method: str = "gradcam",
    target: int | None = None,
    seed: int = 0,
) -> ClusterStudy:
    """Attention (Grad-CAM of attention_model for `target`, default its prediction) → clusters → masked faces."""
    attention = attention_maps(attention_model, crop[None], None if target is None else [target], method)[0]
    cluster_map = cluster_attention(attention, n_clusters, lam, alpha, seed)
    masked = np.stack([remove_cluster(crop, cluster_map, k) for k in range(n_clusters)])
    batch = np.concatenate([crop[None], masked])
    probabilities = {model.name: predict_proba(model, batch) for model in models}
    return ClusterStudy(crop, attention, cluster_map, masked, probabilities)
