"""core.explain.regions: one face split into attention regions, each removed, every model's prediction."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.clusters import cluster_attention
from core.explain.regions import REGION_COLOURS, colour_regions, dataset_regions, region_label, study_regions
from core.explain.saliency import attention_maps
from core.faces.detection import crop_face
from core.models.loading import load_model


@pytest.fixture
def face_crop(astronaut, detector) -> np.ndarray:
    return crop_face(astronaut, detector.detect(astronaut)[0])


@pytest.mark.parametrize("n", [1, 3])
def test_study_removes_each_region_and_classifies_every_copy(tiny_registry, face_crop, n: int) -> None:
    models = [load_model(name) for name in tiny_registry]
    study = study_regions(face_crop, models[0], models, n_clusters=n)
    assert study.attention.shape == (48, 48) and study.cluster_map.shape == (48, 48)
    assert study.masked.shape == (n, 48, 48) and study.n_regions == n
    assert set(study.probabilities) == set(tiny_registry)
    for probs in study.probabilities.values():
        assert probs.shape == (n + 1, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    for k in range(n):
        removed = study.cluster_map == k
        assert (study.masked[k][removed] == 0).all()
        assert np.array_equal(study.masked[k][~removed], face_crop[~removed])
    assert sum(study.region_share(k) for k in range(n)) == pytest.approx(1.0)
    assert study.attention_model == tiny_registry[0]
    emotion, confidence = study.top(tiny_registry[1], 1)
    assert isinstance(emotion, str) and 0 <= confidence <= 1
    assert isinstance(study.changed(tiny_registry[0], 0), bool)


def test_colour_regions_tints_each_region() -> None:
    crop = np.full((48, 48), 128, np.uint8)
    cluster_map = np.zeros((48, 48), np.uint8)
    cluster_map[24:] = 1
    picture = colour_regions(crop, cluster_map, weight=1.0)
    assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8
    assert tuple(picture[0, 0]) == REGION_COLOURS[0] and tuple(picture[47, 0]) == REGION_COLOURS[1]
    with pytest.raises(ValueError):
        colour_regions(crop, cluster_map[:10])


def test_region_label_names_number_and_colour() -> None:
    assert region_label(0) == "region 1 (red)"
    assert region_label(2) == "region 3 (green)"


def test_dataset_regions_clusters_each_face_by_its_true_class(tiny_registry, face_crop) -> None:
    model = load_model(tiny_registry[0])
    crops = np.stack([face_crop, face_crop[:, ::-1], np.roll(face_crop, 5, axis=0)])
    labels = np.array([3, 0, 5])
    maps = dataset_regions(model, crops, labels, n_clusters=3)
    assert maps.shape == (3, 48, 48) and maps.dtype == np.uint8 and set(np.unique(maps)) <= {0, 1, 2}
    second = attention_maps(model, crops[1:2], labels[1:2])[0]  # class 0, not the predicted one
    assert np.array_equal(maps[1], cluster_attention(second, 3))
