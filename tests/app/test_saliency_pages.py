"""The saliency comparison through AppTest: one face's two maps on the Analyze page, the Saliency page.

Models come from tiny_registry (random tiny_a and tiny_b) or small_pair (two small VGGs, for the stored
study); real MTCNN, real grad-cam, the study written by its own command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import (  # noqa: F401 (autouse fixtures)
    fresh_app,
    navigation_from_app_py,
    no_errors,
    open_page,
    store_small_study,
    write_fer_folders,
)


def specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def chart_titles(app: AppTest) -> list[str]:
    """Every chart's title and subplot titles."""
    titles = []
    for spec in specs(app):
        layout = spec["layout"]
        titles += [(layout.get("title") or {}).get("text", "")]
        titles += [a.get("text", "") for a in layout.get("annotations", [])]
    return titles


def trace_names(app: AppTest) -> list[str]:
    return [trace.get("name", "") for spec in specs(app) for trace in spec["data"]]


def test_analyze_compares_where_the_two_models_look(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    no_errors(app)
    assert any("Where the two models look" in md.value for md in app.markdown)
    titles = chart_titles(app)
    assert "A · tiny_a" in titles and "B · tiny_b" in titles and "B − A" in titles
    captions = [c for image in app.get("image") for c in image.captions]
    assert "Model A · tiny_a on the whole photo" in captions
    assert "Model B · tiny_b on the whole photo" in captions
    # Where each model looks, in numbers; how much they agree; whether each map is faithful; in words.
    assert "Where each map lies, by facial part" in chart_titles(app)
    assert {"Spearman ρ", "Top-20 % IoU"} <= {m.label for m in app.metric}
    names = trace_names(app)
    assert any(n.startswith("tiny_a map (area ") for n in names)
    assert any(n.startswith("tiny_b random order (area ") for n in names)
    assert any("tiny_a" in info.value and "tiny_b" in info.value and "%" in info.value for info in app.info)


def button_group(app: AppTest, key: str):
    return next(group for group in app.get("button_group") if group.key == key)


def test_flip_and_swipe_show_one_picture_and_opacity_reaches_the_maps(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    app.slider(key="image-0-compare-opacity").set_value(0.8).run()
    maps = [t for spec in specs(app) for t in spec["data"] if t.get("coloraxis")]
    assert len(maps) == 3 and all(t["opacity"] == 0.8 for t in maps), "A, B and B − A, at the opacity picked"

    view = button_group(app, "image-0-compare-view")
    assert view.options == ["Side by side", "Flip A ⇄ B", "Swipe"]
    view.set_value("Flip A ⇄ B").run()
    no_errors(app)
    button_group(app, "image-0-compare-flip").set_value("B · tiny_b").run()
    no_errors(app)
    titles = chart_titles(app)
    assert "B · tiny_b" in titles and "A · tiny_a" not in titles, "flipped to B alone"

    button_group(app, "image-0-compare-view").set_value("Swipe").run()
    app.slider(key="image-0-compare-swipe").set_value(30).run()
    no_errors(app)
    swipe = next(spec for spec in specs(app) if spec["layout"].get("shapes"))
    assert swipe["layout"]["shapes"][0]["x0"] == round(0.3 * 48) - 0.5, "the line where A ends"
    assert {"A · tiny_a", "B · tiny_b"} <= set(chart_titles(app))


@pytest.fixture
def stored_study(small_pair: list[str], tmp_path: Path) -> Path:
    return store_small_study(small_pair, tmp_path)


def test_saliency_page_shows_the_stored_study(stored_study: Path) -> None:
    app = open_page("pages/saliency.py")
    no_errors(app)
    assert any(
        "The paper's claim, tested:" in info.value and "fear (3 faces)" in info.value for info in app.info
    )
    titles = chart_titles(app)
    assert {"A · small_a", "B · small_b", "B − A"} <= set(titles), "Figure 5's three rows"
    assert "fear (3)" in titles, "all faces: the count of each emotion"
    assert {"eye on the left", "mouth", "rest of the crop"} <= set(titles), "a part-share panel per part"
    names = trace_names(app)
    assert any(n.startswith("small_b random order (area ") for n in names), "mean deletion curves"
    assert [row["model"] for row in app.dataframe[1].value.to_dict("records")] == ["small_a", "small_b"]
    sanity = [md.value for md in app.markdown if "resetting every layer" in md.value]
    assert len(sanity) == 2 and sanity[0].startswith("- small_a:")

    button_group(app, "study_subset").set_value("correct").run()
    no_errors(app)
    assert any(title.startswith("fear (") and "/" in title for title in chart_titles(app)), "A/B counts"


@pytest.mark.parametrize("public", [False, True])
def test_without_a_study_the_page_gives_the_command(
    tiny_registry: list[str], monkeypatch: pytest.MonkeyPatch, public: bool
) -> None:
    if public:
        monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    app = open_page("pages/saliency.py")
    no_errors(app)
    message = next(info.value for info in app.info if "No saliency study" in info.value)
    assert "python -m core saliency-study --models tiny_a tiny_b --record" in message
    labels = [button.label for button in app.button]
    assert ("Compute the study now" in labels) is not public, "a visitor of the public demo cannot start one"


def test_the_study_started_from_the_page_runs_in_its_own_process_and_then_shows(
    small_pair: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui import resources

    faces = write_fer_folders(tmp_path / "faces", count_per_class=2)
    quick = [
        "--data",
        str(faces),
        "--limit",
        "14",
        "--no-landmarks",
        "--layer-faces",
        "2",
        "--sanity-faces",
        "2",
    ]
    default = resources.study_arguments
    monkeypatch.setattr(resources, "study_arguments", lambda a, b: [*default(a, b), *quick, "--steps", "3"])
    app = open_page("pages/saliency.py")
    next(button for button in app.button if button.label == "Compute the study now").click().run()
    no_errors(app)
    assert any("Computing the study of **small_a** and **small_b**" in info.value for info in app.info)
    run = resources.study_runs()[("small_a", "small_b")]
    assert run.process.wait(timeout=240) == 0, run.log_tail(20)
    assert "saliency-study_small_a_vs_small_b.json" in run.log.read_text()
    app.run()
    no_errors(app)
    assert any("The paper's claim, tested:" in info.value for info in app.info), "the stored study is shown"


def test_a_damaged_study_says_why_and_how_to_redo_it(tiny_registry: list[str], isolated_home: Path) -> None:
    stored = isolated_home / "models" / "saliency-study_tiny_a_vs_tiny_b.json"
    stored.write_text("{not json")
    app = open_page("pages/saliency.py")
    assert not app.exception
    assert any("cannot be used" in w.value and "saliency-study --models" in w.value for w in app.warning)


def test_one_model_is_not_a_comparison(tiny_registry: list[str]) -> None:
    app = open_page("pages/saliency.py")
    app.selectbox(key="model_b").set_value("tiny_a").run()
    no_errors(app)
    assert any("Pick two different models" in info.value for info in app.info)
