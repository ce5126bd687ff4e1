"""The seed paper's clustering (arXiv 2411.00824): attention → k-means regions → masks.

Each pixel becomes a point (λ·x, λ·y, α·attention) with x, y and attention scaled to
[0, 1]; k-means splits the points into n clusters. Removing a cluster sets its pixels
to 0. Clusters are numbered by mean attention, most attended first.
"""

from __future__ import annotations

import os

import numpy as np
from joblib import Parallel, delayed
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

LAMBDA = 1.5
ALPHA = 1.2
DEFAULT_CLUSTERS = 3


def pixel_features(attention: np.ndarray, lam: float = LAMBDA, alpha: float = ALPHA) -> np.ndarray:
    """(H*W, 3) points (λ·x, λ·y, α·attention), each coordinate scaled to [0, 1] first."""
    height, width = attention.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    span = float(attention.max() - attention.min())
    scaled = (attention - attention.min()) / span if span > 0 else np.zeros_like(attention, dtype=np.float64)
    return np.stack(
        [lam * xs.ravel() / max(width - 1, 1), lam * ys.ravel() / max(height - 1, 1), alpha * scaled.ravel()],
        axis=1,
    )


def cluster_attention(
    attention: np.ndarray,
    n_clusters: int = DEFAULT_CLUSTERS,
    lam: float = LAMBDA,
    alpha: float = ALPHA,
    seed: int = 0,
) -> np.ndarray:
    """A (H, W) map of cluster ids 0..n-1, ordered by mean attention (highest first)."""
    if n_clusters < 1:
        raise ValueError("n_clusters must be at least 1")
    attention = np.asarray(attention, dtype=np.float64)
    features = pixel_features(attention, lam, alpha)
    # 2,304 points: threads only add overhead, and oversubscribe cores a training run is using.
    with threadpool_limits(limits=1, user_api="openmp"):
        kmeans = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit(features)
    raw = kmeans.labels_.reshape(attention.shape)
    means = [attention[raw == k].mean() if (raw == k).any() else -np.inf for k in range(n_clusters)]
    order = np.argsort(means)[::-1]
    renumber = np.empty(n_clusters, dtype=np.int64)
    renumber[order] = np.arange(n_clusters)
    return renumber[raw].astype(np.uint8)


def cluster_each(
    attention: np.ndarray,
    n_clusters: int = DEFAULT_CLUSTERS,
    seed: int = 0,
    jobs: int | None = None,
) -> np.ndarray:
    """cluster_attention for every map of (N, H, W), as (N, H, W) uint8, on up to `jobs` processes.

    jobs None uses every core, one process per 500 maps at most: starting a process
    (about 2 s to import scikit-learn) only pays for itself on that much work.
    """
    attention = np.asarray(attention)
    if jobs is None:
        jobs = min(os.cpu_count() or 1, max(1, len(attention) // 500))
    maps = Parallel(n_jobs=jobs)(
        delayed(cluster_attention)(heat, n_clusters, seed=seed) for heat in attention
    )
    return np.stack(maps) if maps else np.zeros((0, *attention.shape[1:]), np.uint8)


def cluster_masks(cluster_map: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """(n, H, W) boolean masks, one per cluster; together they partition the pixels."""
    n = int(cluster_map.max()) + 1 if n_clusters is None else n_clusters
    return np.stack([cluster_map == k for k in range(n)])


def remove_cluster(image: np.ndarray, cluster_map: np.ndarray, cluster: int) -> np.ndarray:
    """A copy of a face crop with one cluster's pixels set to 0 (black)."""
    if image.shape[:2] != cluster_map.shape:
        raise ValueError(f"image {image.shape[:2]} and cluster map {cluster_map.shape} differ in size")
    masked = image.copy()
    masked[cluster_map == cluster] = 0
    return masked


def dataset_attention(attention: np.ndarray) -> np.ndarray:
    """One attention map for a whole dataset: each image's map scaled to [0, 1], then averaged."""
    attention = np.asarray(attention, dtype=np.float64)
    low = attention.min(axis=(1, 2), keepdims=True)
    span = attention.max(axis=(1, 2), keepdims=True) - low
    span[span == 0] = 1.0
    return ((attention - low) / span).mean(axis=0)
