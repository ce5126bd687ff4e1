"""The Streamlit app through AppTest, from app.py: every page, the Analyze results, bad inputs.

Models come from tiny_registry (random tiny_a and tiny_b in a temporary FER_STUDIO_HOME);
the shipped models folder is swapped for an empty one so the pickers default to them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.evaluation.record import evaluate_and_record
from core.models import registry
from tests.helpers import (  # noqa: F401 (autouse fixtures)
    PAGES,
    fresh_app,
    navigation_from_app_py,
    no_errors,
    open_page,
)


def probability_charts(app: AppTest) -> list:
    """The face cards' probability charts (keys "image-N-chart-K"), not the comparison's charts."""
    return [chart for chart in app.get("plotly_chart") if "-chart-" in (chart.key or "")]


def image_captions(app: AppTest) -> list[str]:
    return [caption for image in app.get("image") for caption in image.captions]


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(tiny_registry: list[str], page: str) -> None:
    app = open_page(page)
    no_errors(app)
    assert app.title, "every page has a title"
    assert app.selectbox(key="model_a").value == "tiny_a"
    assert app.selectbox(key="model_b").value == "tiny_b"


def test_analyze_sample_shows_one_face_with_both_models(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    no_errors(app)
    assert any("built-in sample" in info.value for info in app.info)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Faces found"] == "1"
    assert "Model A · tiny_a" in metrics and "Model B · tiny_b" in metrics
    assert len(probability_charts(app)) == 1, "one probability chart for the one face"
    captions = image_captions(app)
    assert "Grad-CAM · tiny_a" in captions and "Grad-CAM · tiny_b" in captions
    assert any("Models agree" in md.value or "Models disagree" in md.value for md in app.markdown)
    assert [button.label for button in app.get("download_button")] == [
        "Results (JSON)",
        "Results (CSV)",
        "Annotated image (PNG)",
    ]


def test_a_face_too_small_to_read_is_flagged_next_to_its_label(tiny_registry: list[str], astronaut) -> None:
    app = open_page("pages/analyze.py")
    assert not any("to read reliably" in caption.value for caption in app.caption), (
        "the sample's face is large"
    )
    small = astronaut.resize((130, 130))  # the face is about 22 pixels wide
    app.file_uploader(key="analyze_upload").upload("small.jpg", jpeg(small), "image/jpeg").run()
    no_errors(app)
    assert {metric.label: metric.value for metric in app.metric}["Faces found"] == "1"
    assert any("too small to read reliably" in caption.value for caption in app.caption)


def test_analyze_explains_a_chosen_class_with_another_method(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    app.selectbox(key="cam_method").set_value("gradcam++")
    app.selectbox(key="cam_class").set_value("happy")
    app.run()
    no_errors(app)
    assert "Grad-CAM · tiny_b" in image_captions(app)


def test_corrupt_upload_shows_a_message_and_good_uploads_still_work(
    tiny_registry: list[str], astronaut
) -> None:
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload("broken.jpg", b"this is not an image", "image/jpeg").run()
    no_errors(app)
    assert any("broken.jpg" in warning.value for warning in app.warning)
    assert not app.get("plotly_chart")
    app.file_uploader(key="analyze_upload").set_value(
        [
            ("broken.jpg", b"this is not an image", "image/jpeg"),
            ("portrait.jpg", jpeg(astronaut), "image/jpeg"),
        ]
    ).run()
    no_errors(app)
    assert [header.value for header in app.subheader if header.value.endswith(".jpg")] == [
        "broken.jpg",
        "portrait.jpg",
    ]
    assert len(probability_charts(app)) == 1
    assert not any("built-in sample" in info.value for info in app.info)


def test_photo_without_faces_gives_tips_not_an_error(tiny_registry: list[str]) -> None:
    wall = Image.fromarray(np.random.default_rng(0).integers(90, 110, (240, 320, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    wall.save(buffer, format="PNG")
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload("wall.png", buffer.getvalue(), "image/png").run()
    no_errors(app)
    assert not app.warning
    assert any("No face found in **wall.png**" in info.value and "tips" in info.value for info in app.info)


@pytest.mark.parametrize("size", [(721, 1), (10000, 10), (30, 30)])
def test_a_thin_or_tiny_photo_gives_no_face_not_an_error(tiny_registry: list[str], size: tuple) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG")
    app = open_page("pages/analyze.py")
    app.file_uploader(key="analyze_upload").upload("thin.png", buffer.getvalue(), "image/png").run()
    no_errors(app)
    assert any("No face found in **thin.png**" in info.value for info in app.info)


def test_camera_photo_is_analysed(tiny_registry: list[str], astronaut) -> None:
    app = open_page("pages/analyze.py")
    app.toggle(key="analyze_camera_on").set_value(True).run()
    app.camera_input(key="analyze_camera").upload("shot.jpg", jpeg(astronaut)).run()
    no_errors(app)
    assert any(caption.startswith("camera photo") for caption in image_captions(app))
    assert len(probability_charts(app)) == 1


def test_without_models_the_app_says_so_and_still_finds_faces() -> None:
    app = open_page("pages/analyze.py")
    no_errors(app)
    assert any("No model is registered" in warning.value for warning in app.sidebar.warning)
    assert any("No emotion model is registered" in warning.value for warning in app.main.warning)
    assert {metric.label: metric.value for metric in app.metric}["Faces found"] == "1"
    for page in PAGES[1:3]:
        app.switch_page(page).run()
        no_errors(app)
        assert app.main.warning, page


def test_with_one_model_the_app_works_and_explains(isolated_home: Path) -> None:
    from core.models.architectures import create_model

    registry.save_model(create_model("seed_cnn"), {"architecture": "seed_cnn", "scheme": "baseline"}, "solo")
    app = open_page("pages/analyze.py")
    no_errors(app)
    assert any("Only one model" in caption.value for caption in app.sidebar.caption)
    labels = [metric.label for metric in app.metric]
    assert "Model A · solo" in labels and not any(label.startswith("Model B") for label in labels)
    assert len(app.get("plotly_chart")) == 1


def test_pickers_default_to_baseline_and_masked(isolated_home: Path) -> None:
    from core.models.architectures import create_model

    for name in ["aaa", "masked", "baseline"]:
        registry.save_model(
            create_model("seed_cnn"), {"architecture": "seed_cnn", "scheme": "baseline"}, name
        )
    app = open_page("pages/train.py")
    no_errors(app)
    assert app.selectbox(key="model_a").value == "baseline"
    assert app.selectbox(key="model_b").value == "masked"


def test_clusters_page_removes_each_region(tiny_registry: list[str]) -> None:
    app = open_page("pages/clusters.py")
    no_errors(app)
    removed = [caption for caption in image_captions(app) if caption.startswith("without region")]
    assert len(removed) == 3
    assert len(app.get("plotly_chart")) == 1
    predictions = [md.value for md in app.markdown if md.value.startswith("**tiny_")]
    assert len(predictions) == 2 * 3
    app.slider(key="clusters_n").set_value(2)
    app.slider(key="clusters_alpha").set_value(2.0)
    app.selectbox(key="clusters_attention").set_value("tiny_b")
    app.run()
    no_errors(app)
    assert len([c for c in image_captions(app) if c.startswith("without region")]) == 2
    assert "Attention (gradcam, tiny_b)" in image_captions(app)


def test_models_page_shows_recorded_evaluations(tiny_registry: list[str], fer_folders: Path) -> None:
    for name in tiny_registry:
        evaluate_and_record(name, str(fer_folders), "val")
    app = open_page("pages/models.py")
    no_errors(app)
    assert app.selectbox(key="eval_key").value == "fer/val"
    # confusion x2, baseline-vs-masked difference, occlusion, class distribution
    assert len(app.get("plotly_chart")) == 5
    # models summary, metrics table, per-class table x2
    assert len(app.dataframe) == 4
    assert len(app.expander) >= 3  # one card per model, and the evaluate form
    assert any(c.value.startswith("Face by face on fer/val") and "McNemar" in c.value for c in app.caption)
    for name in tiny_registry:
        evaluate_and_record(name, str(fer_folders), "val", occlusion=False, regions_from=tiny_registry[0])
    app = open_page("pages/models.py")
    no_errors(app)
    # the occlusion chart gives way to the attention-region one (occlusion=False above)
    assert len(app.get("plotly_chart")) == 5
    assert any(c.value.startswith(f"Regions: k-means (n=3) of {tiny_registry[0]}'s") for c in app.caption)


def test_models_page_charts_the_recorded_robustness_test(tiny_registry: list[str], fer_folders: Path) -> None:
    from core.cli import main

    argv = ["robustness", "--data", str(fer_folders), "--scenes", "1", "--limit", "14", "--record"]
    assert main(argv) == 0
    app = open_page("pages/models.py")
    no_errors(app)
    # corruptions by severity, scenes by face width, class distribution
    assert len(app.get("plotly_chart")) == 3
    assert any("python -m core robustness" in c.value for c in app.caption)
    assert not any("No robustness test" in info.value for info in app.info)


def test_models_page_evaluates_a_dataset_with_a_progress_bar(
    tiny_registry: list[str], fer_folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(fer_folders.parent))
    app = open_page("pages/models.py")
    assert any("No evaluation" in info.value for info in app.info)
    assert len(app.get("plotly_chart")) == 1  # the class distribution only
    app.text_input(key="eval_data").input(str(fer_folders))
    app.selectbox(key="eval_split").set_value("val")
    app.form_submit_button[0].click().run()
    no_errors(app)
    assert app.get("progress")
    assert any("tiny_a on fer/val" in success.value for success in app.success)
    assert len(app.get("plotly_chart")) == 3  # confusion, occlusion, distribution


def test_models_page_reports_a_bad_dataset_path(
    tiny_registry: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path))
    app = open_page("pages/models.py")
    app.text_input(key="eval_data").input(str(tmp_path / "missing"))
    app.form_submit_button[0].click().run()
    assert not app.exception
    assert any("no such file or folder" in error.value for error in app.error)


def test_models_page_names_the_line_of_a_malformed_csv(
    tiny_registry: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path))
    row = "1," + " ".join(["9"] * 70_000) + ",PublicTest"  # a pixels field over 131,072 characters
    (tmp_path / "fer2013.csv").write_text(f"emotion,pixels,Usage\n{row}\n")
    app = open_page("pages/models.py")
    app.text_input(key="eval_data").input(str(tmp_path / "fer2013.csv"))
    app.form_submit_button[0].click().run()
    assert not app.exception
    assert any("fer2013.csv, line 2: not a readable CSV row" in error.value for error in app.error)


def test_average_of_a_and_b_is_a_model_to_pick(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    assert "tiny_a+tiny_b" in app.selectbox(key="model_b").options[-1]
    app.selectbox(key="model_b").set_value("tiny_a+tiny_b").run()
    no_errors(app)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert "Model A · tiny_a" in metrics and "Model B · tiny_a+tiny_b" in metrics
    assert "Grad-CAM · tiny_a+tiny_b" in image_captions(app)


def test_models_page_shows_the_reliability_diagram(tiny_registry: list[str], fer_folders: Path) -> None:
    from core.evaluation.record import calibrate_models

    app = open_page("pages/models.py")
    no_errors(app)
    assert any("No model is calibrated yet" in info.value for info in app.info)
    calibrate_models(tiny_registry, str(fer_folders), "val", record=True, command="python -m core calibrate")
    app = open_page("pages/models.py")
    no_errors(app)
    rows = app.dataframe[-1].value
    assert list(rows["model"]) == tiny_registry and (rows["temperature"] > 0).all()
    figures = [chart.proto.spec for chart in app.get("plotly_chart")]
    assert any("Reliability" in spec and "tiny_b after" in spec for spec in figures)
