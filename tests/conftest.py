"""Shared fixtures: an isolated data folder, a tiny registry, the real MTCNN, generated datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from core.models.architectures import create_model
from tests.helpers import write_fer_folders


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
    from core.faces.detection import FaceDetector

    return FaceDetector()


@pytest.fixture
def tiny_registry(isolated_home: Path) -> list[str]:
    """Two randomly initialised models registered as tiny_a and tiny_b in the isolated home."""
    from core.models.registry import save_model

    names = []
    for seed, (name, arch) in enumerate([("tiny_a", "seed_cnn"), ("tiny_b", "vgg")]):
        torch.manual_seed(seed)
        arch_args = {"widths": [8, 16]} if arch == "vgg" else {}
        model = create_model(arch, **arch_args)
        card = {"architecture": arch, "arch_args": arch_args, "scheme": "baseline" if seed == 0 else "masked"}
        save_model(model, card, name)
        names.append(name)
    return names


@pytest.fixture
def small_pair(isolated_home: Path) -> list[str]:
    """Two small random VGGs registered as small_a and small_b: quicker than tiny_registry's pair where
    a test runs many passes per model (the saliency study's per-layer and randomisation passes)."""
    from core.models.registry import save_model

    names = []
    for seed, name in enumerate(("small_a", "small_b")):
        torch.manual_seed(seed)
        card = {"architecture": "vgg", "arch_args": {"widths": [8, 16]}, "scheme": "baseline"}
        save_model(create_model("vgg", widths=[8, 16]), card, name)
        names.append(name)
    return names


@pytest.fixture
def fer_folders(tmp_path: Path) -> Path:
    return write_fer_folders(tmp_path / "fer")


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root holding one tiny generated dataset, `fer` (20 faces per class and split)."""
    root = tmp_path / "data"
    write_fer_folders(root / "fer", count_per_class=20)
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(root))
    monkeypatch.setenv("FER_STUDIO_WORKER_NICE", "0")
    monkeypatch.delenv("FER_STUDIO_TRAINING", raising=False)
    monkeypatch.delenv("FER_STUDIO_MAX_JOBS", raising=False)
    return root
