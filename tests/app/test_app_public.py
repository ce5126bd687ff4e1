"""Public mode through AppTest, from app.py: no path inputs, training off, limits announced, waits shown.

Same set-up as test_app.py (tiny_registry, empty caches, navigation from app.py).
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.serving.public import SETTINGS
from tests.helpers import APP, PAGES, TIMEOUT, fresh_app, navigation_from_app_py, no_errors, open_page

__all__ = ["fresh_app", "navigation_from_app_py"]  # the autouse fixtures, used here too


@pytest.fixture
def public(monkeypatch: pytest.MonkeyPatch, fer_folders: Path) -> Path:
    """Public mode on, with the generated FER folders as the one data root."""
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(fer_folders.parent))
    return fer_folders


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_public_mode_from_streamlit_secrets(
    tiny_registry: list[str], monkeypatch: pytest.MonkeyPatch, fer_folders: Path
) -> None:
    """Community Cloud passes settings as secrets: a TOML true there turns public mode on."""
    for name in SETTINGS:  # restored after the test, whatever the secrets copy into the environment
        monkeypatch.setenv(name, os.environ.get(name, ""))  # "" reads as unset
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "0")  # the secret wins
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(fer_folders.parent))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.secrets["FER_STUDIO_PUBLIC"] = True
    app.secrets["FER_STUDIO_MAX_FACES"] = 3
    app.switch_page("pages/train.py").run()
    no_errors(app)
    assert any(
        "Training is turned off" in info.value and "FER_STUDIO_PUBLIC=1" in info.value for info in app.info
    )
    assert not app.text_input and not app.form_submit_button
    assert any("Public demo" in caption.value for caption in app.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_takes_a_typed_path_in_public_mode(tiny_registry: list[str], public: Path, page: str) -> None:
    app = open_page(page)
    no_errors(app)
    assert not app.text_input, [t.label for t in app.text_input]
    assert not app.text_area


def test_public_analyze_announces_its_limits(tiny_registry: list[str], public: Path) -> None:
    app = open_page("pages/analyze.py")
    no_errors(app)
    limits = next(c.value for c in app.caption if "Public demo limits" in c.value)
    assert "Up to 3 photos per upload, 10 MB and 24 megapixels each" in limits
    assert "up to 10 faces per photo" in limits and "one analysis at a time" in limits
    assert app.file_uploader(key="analyze_upload").proto.max_upload_size_mb == 10
    assert app.metric[0].value == "1", "the sample still works"


def test_public_analyze_refuses_a_photo_over_its_pixel_limit(
    tiny_registry: list[str], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_MAX_MEGAPIXELS", "1")
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload(
        "big.png", png(Image.new("RGB", (1200, 1000))), "image/png"
    )
    app.run()
    assert not app.exception
    assert any("big.png" in w.value and "the limit is 1 megapixels" in w.value for w in app.warning)


def test_models_page_offers_only_the_listed_datasets(tiny_registry: list[str], public: Path) -> None:
    app = open_page("pages/models.py")
    no_errors(app)
    dataset = app.selectbox(key="eval_dataset")
    assert [Path(option).name for option in dataset.options] == ["fer"]
    app.selectbox(key="eval_split").set_value("val")
    app.form_submit_button[0].click().run()
    no_errors(app)
    assert any("tiny_a on fer/val" in success.value for success in app.success)


def test_a_path_outside_the_data_roots_is_refused_unread(
    tiny_registry: list[str], fer_folders: Path, monkeypatch
) -> None:
    """Outside public mode the form takes a path, but only inside the data roots: /etc tells nothing."""
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(fer_folders.parent))
    app = open_page("pages/models.py")
    for path in ("/etc", "/root", str(fer_folders.parent / ".." / "outside")):
        app.text_input(key="eval_data").input(path)
        app.form_submit_button[0].click().run()
        assert not app.exception
        errors = [error.value for error in app.error]
        assert len(errors) == 1 and "is outside the data roots" in errors[0], errors
        assert "emotion label" not in errors[0] and "no such file" not in errors[0]
        assert not app.get("progress"), "nothing was loaded"


def test_faces_left_out_are_announced(
    tiny_registry: list[str], monkeypatch: pytest.MonkeyPatch, astronaut
) -> None:
    monkeypatch.setenv("FER_STUDIO_MAX_FACES", "2")
    face = astronaut.crop((150, 40, 300, 200))
    group = Image.new("RGB", (600, 300), (90, 90, 90))
    for index, side in enumerate((180, 165, 150)):
        group.paste(face.resize((side, round(side * 160 / 150))), (200 * index + 5, 20))
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload("group.png", png(group), "image/png").run()
    no_errors(app)
    assert {m.label: m.value for m in app.metric}["Faces found"] == "2"
    assert any("1 more face(s) were found in **group.png**" in info.value for info in app.info)


def test_a_visitor_waits_for_the_gate_and_is_told(tiny_registry: list[str], public: Path) -> None:
    """With one analysis at a time and another visitor's analysis running, the page waits its turn."""
    from ui import resources

    gate = resources.gate()
    assert gate.limit == 1
    seen_waiting = threading.Event()

    def another_visitor() -> None:
        with gate.admit():
            deadline = time.monotonic() + 60
            while gate.waiting == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            seen_waiting.set()
            time.sleep(1.5)

    holder = threading.Thread(target=another_visitor)
    holder.start()
    while gate.running == 0:
        time.sleep(0.01)
    app = open_page("pages/analyze.py")
    holder.join(30)
    no_errors(app)
    assert seen_waiting.is_set()
    assert any(c.value.startswith("⏳ Waited") and "one analysis at a time" in c.value for c in app.caption)
    assert app.metric[0].value == "1", "and then got its result"


def evaluate_on_models_page(split: str = "val") -> AppTest:
    """A new session that opens the Models page and evaluates model A on the one dataset offered."""
    app = open_page("pages/models.py")
    app.selectbox(key="eval_split").set_value(split)
    app.form_submit_button[0].click().run()
    return app


def test_public_evaluation_runs_on_a_sample_of_val_without_occlusion(
    tiny_registry: list[str], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.serving import budget

    monkeypatch.setattr(budget, "PUBLIC_EVALUATION_FACES", 10)
    app = open_page("pages/models.py")
    assert app.selectbox(key="eval_split").options == ["val"], "no train split, no whole folder"
    assert not app.checkbox, "no occlusion test to tick"
    assert any("python -m core evaluate" in c.value for c in app.caption)
    app.form_submit_button[0].click().run()
    no_errors(app)
    assert any("tiny_a on fer/val (10 faces)" in s.value for s in app.success)


def test_the_same_evaluation_for_two_sessions_is_computed_once_and_replays_cleanly(
    tiny_registry: list[str], public: Path
) -> None:
    """Two visitors ask for the same evaluation: the second gets the first one's, drawn without error."""
    first = evaluate_on_models_page()
    no_errors(first)
    second = evaluate_on_models_page()
    no_errors(second)
    done = [[s.value for s in app.success if "tiny_a on fer/val" in s.value] for app in (first, second)]
    assert done[0] and done[0] == done[1], "the same result, evaluated at the same time: computed once"
    assert second.get("progress"), "the second session's bar was drawn by its own page"


def test_a_crafted_request_is_refused_in_public_mode(
    tiny_registry: list[str], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a browser sends, the evaluation itself refuses the train split and an over-budget run."""
    from core.serving import budget
    from core.serving.budget import OverBudget
    from ui import resources

    with pytest.raises(OverBudget, match="val only, not on the train split"):
        resources.evaluation(("tiny_a", 0.0), str(public), "train", 0.0, occlusion=False)
    faces = resources.evaluation_size(str(public), "val")
    monkeypatch.setattr(budget, "PUBLIC_BUDGET", faces * 2)  # the clean pass fits, three passes do not
    with pytest.raises(OverBudget, match=f"= {faces * 3:,} face passes"):
        resources.evaluation(("tiny_a", 0.0), str(public), "val", 0.0, occlusion=True)
    assert resources.gate().running == 0 and resources.gate().waiting == 0, "refused before its turn"


def test_an_oversize_photo_is_left_out_by_the_page(
    tiny_registry: list[str], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uploader's limit is the browser's; the page checks sizes again on the server."""
    import numpy as np

    monkeypatch.setenv("FER_STUDIO_MAX_UPLOAD_MB", "1")
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (800, 800, 3), dtype=np.uint8))
    data = png(noisy)
    assert len(data) > 2**20
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload("big.png", data, "image/png").run()
    assert not app.exception
    assert any("**big.png** is" in w.value and "over the 1 MB" in w.value for w in app.warning)
    assert any("built-in sample" in info.value for info in app.info), "the sample shows instead"


def test_a_crafted_region_count_is_refused_in_public_mode(tiny_registry: list[str], public: Path) -> None:
    """The Clusters slider stops at 6 regions in the browser; a crafted 1,000 is refused on the server."""
    import numpy as np

    from core.serving.budget import OverBudget
    from ui import resources

    keys = (("tiny_a", 0.0), ("tiny_b", 0.0))
    crop = np.zeros((48, 48), dtype=np.uint8)
    with pytest.raises(OverBudget, match=r"1,001 faces x 3 model\(s\) x 2 pass\(es\)"):
        resources.region_study(crop, keys[0], keys, 1000, 1.0, 1.0, "gradcam")
    assert resources.gate().running == 0 and resources.gate().waiting == 0
