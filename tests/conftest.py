"""Shared fixtures: an isolated data folder, a tiny registry, the real MTCNN, generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from core.architectures import create_model
from core.labels import EMOTIONS


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes trained models, jobs and caches under its own temporary folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FER_STUDIO_HOME", str(home))
    monkeypatch.setenv("FER_STUDIO_CACHE", str(home / "cache"))
    # The repository's shipped models stay out of tests (subprocesses inherit this too).
    monkeypatch.setenv("FER_STUDIO_SHIPPED_MODELS", str(home / "no-shipped-models"))
    torch.set_num_threads(2)
    return home


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """scikit-image's bundled portrait: one face, near the top centre."""
    return Image.fromarray(skimage_data.astronaut())


@pytest.fixture(scope="session")
def detector():
    from core.faces import FaceDetector

    return FaceDetector()


@pytest.fixture
def tiny_registry(isolated_home: Path) -> list[str]:
    """Two randomly initialised models registered as tiny_a and tiny_b in the isolated home."""
    from core.registry import save_model

    names = []
    for seed, (name, arch) in enumerate([("tiny_a", "seed_cnn"), ("tiny_b", "vgg")]):
        torch.manual_seed(seed)
        arch_args = {"widths": [8, 16]} if arch == "vgg" else {}
        model = create_model(arch, **arch_args)
        card = {"architecture": arch, "arch_args": arch_args, "scheme": "baseline" if seed == 0 else "masked"}
        save_model(model, card, name)
        names.append(name)
    return names


def synthetic_faces(count_per_class: int, seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Learnable generated 'faces': a square whose position and brightness depend on the class, on noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(len(EMOTIONS)):
        for _ in range(count_per_class):
            image = rng.integers(40, 90, size=(size, size)).astype(np.uint8)
            row, col = divmod(label, 3)
            top, left = 4 + row * 14, 4 + col * 14
            image[top : top + 12, left : left + 12] = 110 + 20 * label
            images.append(image)
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64)


def write_fer_folders(
    root: Path, count_per_class: int = 6, splits: tuple[str, ...] = ("train", "val")
) -> Path:
    """A FER2013-style tree root/split/emotion/*.png of generated faces."""
    for number, split in enumerate(splits):
        images, labels = synthetic_faces(count_per_class, seed=number)
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / EMOTIONS[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{split}_{index}.png")
    return root


@pytest.fixture
def fer_folders(tmp_path: Path) -> Path:
    return write_fer_folders(tmp_path / "fer")
