"""What `make run` does before the first visitor: lean imports and a warm-up of the shared resources."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from core.models.registry import find_model, list_models
from ui import launch, resources
from ui.display import model_keys

REPO = Path(__file__).resolve().parent.parent.parent
# Libraries the first Analyze predictions do not need; each costs 0.5-3.5 s to import here.
LATE_LIBRARIES = ("pytorch_grad_cam", "sklearn", "cv2", "matplotlib", "pandas", "skimage.data")


def imported_after(code: str) -> set[str]:
    """Which of LATE_LIBRARIES a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {LATE_LIBRARIES!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    return set(result.stdout.split())


def test_first_predictions_import_no_saliency_or_table_libraries() -> None:
    modules = "import ui.resources, ui.pickers, ui.inputs, ui.charts, core.pipeline, ui.display"
    assert imported_after(f"{modules}\nui.display.sample_png()") == set()
    # The probe can see them: asking for a Grad-CAM method brings grad-cam in.
    assert "pytorch_grad_cam" in imported_after(f"{modules}\ncore.explain.saliency.cam_class('gradcam')")


@pytest.fixture
def empty_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_warm_up_loads_the_detector_and_default_models_once(
    tiny_registry: list[str], empty_caches, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []
    original = resources.load_model

    def counting_load(name: str):  # type: ignore[no-untyped-def]
        loaded.append(name)
        return original(name)

    monkeypatch.setattr(resources, "load_model", counting_load)
    launch.warm_up()
    assert sorted(loaded) == sorted(tiny_registry)
    detector = resources.detector()
    keys = model_keys(list_models(), tiny_registry)
    assert [model.name for model in resources.models(keys)] == tiny_registry
    assert sorted(loaded) == sorted(tiny_registry), "the page's calls are served from the warm cache"
    assert resources.detector() is detector


def test_warm_up_failure_is_logged_not_raised(
    tiny_registry: list[str], empty_caches, capsys: pytest.CaptureFixture[str]
) -> None:
    find_model("tiny_a").write_bytes(b"not a checkpoint")
    launch.warm_up()
    assert "warm-up stopped early" in capsys.readouterr().err


def test_warm_up_thread_logs_no_script_run_context_warnings(
    tiny_registry: list[str], empty_caches, caplog: pytest.LogCaptureFixture
) -> None:
    def warnings_from(thread_name: str) -> list[str]:
        caplog.clear()
        thread = threading.Thread(target=launch.warm_up, name=thread_name)
        thread.start()
        thread.join()
        return [r.getMessage() for r in caplog.records if "missing ScriptRunContext" in r.getMessage()]

    assert warnings_from(launch.WARM_UP_THREAD) == []
    st.cache_resource.clear()
    assert warnings_from("some-other-thread"), "other threads still warn"


def test_warm_up_leaves_the_sample_read_and_explained_in_the_result_cache(
    tiny_registry: list[str], empty_caches
) -> None:
    from core.explain.saliency import CAM_METHODS
    from core.pipeline import analyze
    from ui.display import sample_png

    launch.warm_up()
    keys = model_keys(list_models(), tiny_registry)
    computed: list[str] = []
    original = resources.analyze_within

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        computed.append("analysis")
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resources, "analyze_within", counting)
        found = resources.analysis(sample_png(), keys, False)
        maps = resources.heatmaps(sample_png(), keys, False, next(iter(CAM_METHODS)), None)
    assert computed == [], "the page's first calls are served from the result cache"
    assert len(found.faces) == 1 and set(maps[0]) == set(tiny_registry)
    expected = analyze(sample_png(), resources.models(keys), resources.detector())
    assert np.allclose(maps[0][tiny_registry[0]], expected.faces[0].heatmaps[tiny_registry[0]], atol=1e-4)
