"""Work priced before it starts; public mode refuses what is over its budget, saying what to do."""

from __future__ import annotations

import pytest

from core.serving import budget, shared
from core.serving.budget import OverBudget
from core.serving.uploads import files_to_drop


@pytest.fixture
def public(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")


def test_costs_are_faces_times_models_times_passes() -> None:
    assert budget.photo_cost(10, 2).face_passes == 40
    assert budget.photo_cost(0, 0, grad_cam=False).face_passes == 1, "at least one face and one model"
    assert budget.evaluation_cost(3589, occlusion=True).face_passes == 3589 * 3
    assert budget.evaluation_cost(500, occlusion=False).face_passes == 500
    assert budget.video_cost(1800, 2).face_passes == 3600
    assert budget.evaluation_cost(600, False).seconds == pytest.approx(600 / budget.FACE_PASSES_PER_S)


def test_nothing_is_refused_in_a_local_studio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER_STUDIO_PUBLIC", raising=False)
    assert budget.public_budget() is None
    assert budget.check_evaluation("train", 28_709, occlusion=True).face_passes == 28_709 * 3
    assert budget.evaluation_faces(28_709) == 28_709


@pytest.mark.usefixtures("public")
def test_public_mode_refuses_the_train_split_and_the_whole_folder() -> None:
    for split, named in (
        ("train", "the train split"),
        ("test", "the test split"),
        (None, "the whole folder"),
    ):
        with pytest.raises(OverBudget, match=f"val only, not on {named}") as refused:
            budget.check_evaluation(split, 100, occlusion=False)
        assert "python -m core evaluate" in str(refused.value) and "make run" in str(refused.value)


@pytest.mark.usefixtures("public")
def test_public_mode_caps_faces_and_refuses_the_occlusion_test_by_its_cost() -> None:
    assert budget.evaluation_faces(3589) == budget.PUBLIC_EVALUATION_FACES
    assert budget.evaluation_faces(120) == 120
    fits = budget.check_evaluation("val", budget.PUBLIC_EVALUATION_FACES, occlusion=False)
    assert fits.face_passes <= budget.PUBLIC_BUDGET
    with pytest.raises(OverBudget, match=r"500 faces x 1 model\(s\) x 3 pass\(es\) = 1,500 face passes"):
        budget.check_evaluation("val", 500, occlusion=True)
    with pytest.raises(OverBudget, match="first 500 faces of a split, not 3,589"):
        budget.check_evaluation("val", 3589, occlusion=False)
    with pytest.raises(OverBudget, match="at most 1,000 per request"):
        budget.check(budget.video_cost(1800, 2))
    assert budget.check(budget.photo_cost(10, 2)).face_passes == 40, "a photo always fits"


def test_a_sessions_oldest_uploads_go_first_never_the_newest() -> None:
    files = [("a", 40), ("b", 40), ("c", 40), ("d", 40)]
    assert files_to_drop(files, 100) == ["a", "b"]
    assert files_to_drop(files, 160) == []
    assert files_to_drop([("only", 500)], 100) == [], "the newest stays even alone over the bound"
    assert files_to_drop([("a", 10), ("big", 500)], 100) == ["a"]


def test_shared_objects_outlive_streamlit_cache_clearing(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    from ui import resources

    shared.reset()
    try:
        gate, cache, slots = resources.gate(), resources.results(), resources.stream_slots()
        cache.put("someone's result", "kept", 10)
        st.cache_resource.clear()
        st.cache_data.clear()
        assert resources.gate() is gate and resources.stream_slots() is slots
        assert resources.results() is cache and cache.get("someone's result") == "kept"
        monkeypatch.setenv("FER_STUDIO_MAX_ANALYSES", "3")
        assert resources.gate() is gate and gate.limit == 3, "a new setting applies to the same gate"
    finally:
        shared.reset()
