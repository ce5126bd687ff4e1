"""What tests share beyond conftest's fixtures: generated datasets, the app-test fixtures and helpers,
and the job-test fixtures. Autouse fixtures here apply only to the modules that import them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.jobs import stop_worker, worker
from core.labels import EMOTIONS
from core.models import registry
from core.paths import REPO_ROOT as REPO
from core.serving import shared

# Generated data


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


def store_small_study(names: list[str], scratch: Path) -> Path:
    """The saliency study of two registered models on 21 generated faces, written by the study's own
    command (python -m core saliency-study ... --record); the stored JSON's path."""
    from core.cli import main
    from core.evaluation.saliency_store import load_study

    data = write_fer_folders(scratch / "study-faces", count_per_class=3)
    argv = ["saliency-study", "--models", *names, "--data", str(data), "--limit", "21", "--no-landmarks"]
    argv += ["--layer-faces", "3", "--sanity-faces", "2", "--steps", "4", "--record"]
    if main(argv) != 0:
        raise RuntimeError("the study command failed")
    study = load_study(*names)
    assert study is not None
    return study.path


# The app through AppTest

APP = str(REPO / "app.py")
PAGES = ["pages/analyze.py", "pages/clusters.py", "pages/models.py", "pages/train.py", "pages/saliency.py"]
TIMEOUT = 180


@pytest.fixture(autouse=True)
def navigation_from_app_py(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every page through app.py, as a running server does.

    A server uses the pages/ folder only until the first st.navigation call, then app.py's
    navigation for good. AppTest forgets that on every run and, because pages/ exists,
    would run a page other than the default one on its own, without app.py's sidebar.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def fresh_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Empty caches (cached resources outlive AppTest instances) and no shipped models."""
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "no-shipped-models")
    st.cache_data.clear()
    st.cache_resource.clear()
    shared.reset()  # the gate, result cache and stream places outlive cache clearing on purpose
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    shared.reset()


def open_page(page: str) -> AppTest:
    """Run app.py showing `page` (the first run already shows it: no detour via Analyze)."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page != PAGES[0]:
        app.switch_page(page)
    return app.run()


def no_errors(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


# Background jobs


@pytest.fixture(autouse=True)
def no_stray_workers(isolated_home: Path):
    """Stop the worker of this test's data folder and any process it started."""
    yield
    stop_worker(timeout=20)
    for process in list(worker._children):
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    worker._reap()
