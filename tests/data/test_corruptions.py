"""The real-photo corruptions shared by the robustness suite and robust training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.corruptions import CORRUPTIONS, SEVERITIES, RandomCorruption, corrupt, corrupt_all
from tests.helpers import synthetic_faces


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return synthetic_faces(4, seed=3)[0][:12]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_keeps_the_crop_format_and_grows_with_severity(faces: np.ndarray, name: str) -> None:
    damage = []
    for severity in range(1, SEVERITIES + 1):
        damaged = corrupt_all(faces, name, severity, seed=7)
        assert damaged.shape == faces.shape and damaged.dtype == np.uint8
        assert damaged.flags.writeable
        damage.append(float(np.abs(damaged.astype(float) - faces).mean()))
    assert damage[0] > 0.5, f"{name} at severity 1 leaves the faces as they were"
    assert damage[0] < damage[-1], f"{name}: severity {SEVERITIES} damages less than severity 1 ({damage})"


def test_the_same_seed_gives_the_same_damage(faces: np.ndarray) -> None:
    for name in CORRUPTIONS:
        assert np.array_equal(corrupt_all(faces, name, 2, seed=1), corrupt_all(faces, name, 2, seed=1))


def test_moved_faces_fill_from_the_edges_not_black() -> None:
    face = np.full((48, 48), 200, np.uint8)
    for name in ("rotation", "crop_jitter"):
        assert corrupt(face, name, SEVERITIES, np.random.default_rng(0)).min() >= 195


def test_unknown_names_and_severities_are_refused(faces: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(faces[0], "fog", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="severity must be from 1"):
        corrupt(faces[0], "blur", SEVERITIES + 1, np.random.default_rng(0))


def test_training_transform_damages_about_its_share_and_follows_torch_seed(faces: np.ndarray) -> None:
    image = torch.from_numpy(faces[0])[None]
    assert torch.equal(RandomCorruption(0.0)(image), image)
    transform = RandomCorruption(0.5)
    torch.manual_seed(0)
    first = [transform(image) for _ in range(200)]
    changed = sum(not torch.equal(out, image) for out in first)
    assert 70 < changed < 130
    assert all(out.shape == image.shape and out.dtype == torch.uint8 for out in first)
    torch.manual_seed(0)
    again = [transform(image) for _ in range(200)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
