"""The paper's clustering: features, partitions, determinism, masking, dataset-level map."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.clusters import (
    cluster_attention,
    cluster_each,
    cluster_masks,
    dataset_attention,
    pixel_features,
    remove_cluster,
)


def blob_attention(size: int = 48) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - 34) ** 2 + (ys - 14) ** 2) / 40.0) + 0.5 * np.exp(
        -((xs - 12) ** 2 + (ys - 36) ** 2) / 60.0
    )


def test_features_are_scaled_as_the_paper_says() -> None:
    features = pixel_features(blob_attention(), lam=1.5, alpha=1.2)
    assert features.shape == (48 * 48, 3)
    assert np.isclose(features[:, 0].max(), 1.5) and np.isclose(features[:, 1].max(), 1.5)
    assert np.isclose(features[:, 2].max(), 1.2) and np.isclose(features[:, 2].min(), 0.0)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_masks_partition_pixels_into_n_non_empty_sets(n: int) -> None:
    cluster_map = cluster_attention(blob_attention(), n)
    masks = cluster_masks(cluster_map, n)
    assert masks.shape == (n, 48, 48)
    assert (masks.sum(axis=0) == 1).all()
    assert all(mask.any() for mask in masks)


def test_constant_attention_still_gives_n_regions() -> None:
    masks = cluster_masks(cluster_attention(np.zeros((48, 48)), 3), 3)
    assert all(mask.any() for mask in masks) and (masks.sum(axis=0) == 1).all()


def test_clusters_are_deterministic_for_a_seed_and_ordered_by_attention() -> None:
    attention = blob_attention()
    first, second = cluster_attention(attention, 3, seed=7), cluster_attention(attention, 3, seed=7)
    assert np.array_equal(first, second)
    means = [attention[first == k].mean() for k in range(3)]
    assert means == sorted(means, reverse=True)
    assert first[14, 34] == 0  # the brightest blob is in the most attended cluster


def test_remove_cluster_blacks_out_only_that_cluster() -> None:
    image = np.full((48, 48), 200, dtype=np.uint8)
    cluster_map = cluster_attention(blob_attention(), 3)
    masked = remove_cluster(image, cluster_map, 1)
    assert (masked[cluster_map == 1] == 0).all() and (masked[cluster_map != 1] == 200).all()
    assert (image == 200).all()  # the original is untouched
    with pytest.raises(ValueError, match="differ in size"):
        remove_cluster(np.zeros((40, 40), np.uint8), cluster_map, 0)


def test_dataset_attention_averages_normalised_maps() -> None:
    maps = np.stack([blob_attention() * 10, blob_attention()])
    mean = dataset_attention(maps)
    assert mean.shape == (48, 48)
    assert np.isclose(mean.max(), 1.0) and np.isclose(mean.min(), 0.0)


def test_clustering_many_maps_on_two_processes_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    maps = rng.random((6, 12, 12))
    together = cluster_each(maps, 3, seed=0, jobs=2)
    assert together.shape == (6, 12, 12) and together.dtype == np.uint8
    for heat, clustered in zip(maps, together, strict=True):
        np.testing.assert_array_equal(clustered, cluster_attention(heat, 3, seed=0))
    assert cluster_each(np.zeros((0, 12, 12)), 3).shape == (0, 12, 12)
