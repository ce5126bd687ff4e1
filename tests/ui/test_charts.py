"""ui.charts: each figure has the traces, shapes and values the pages rely on."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation.metrics import classification_metrics
from core.labels import EMOTIONS
from ui import charts


def uniform_metrics(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(7), 5)
    return classification_metrics(labels, rng.dirichlet(np.ones(7), size=len(labels)))


def test_probability_chart_has_one_bar_trace_per_model_in_class_order() -> None:
    probs = {"a": np.full(7, 1 / 7), "b": np.eye(7)[3]}
    figure = charts.probability_chart(probs)
    assert [trace.type for trace in figure.data] == ["bar", "bar"]
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[0].y) == list(EMOTIONS) and figure.data[0].orientation == "h"
    assert figure.data[1].x[3] == 1.0 and figure.data[1].text[3] == "100%"
    assert figure.data[0].marker.color != figure.data[1].marker.color
    assert figure.layout.barmode == "group"


def test_probability_chart_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="7 probabilities"):
        charts.probability_chart({"a": np.ones(5)})


def test_confusion_heatmap_normalises_rows_and_labels_counts() -> None:
    confusion = np.diag([5, 0, 2, 8, 1, 1, 3]).tolist()
    confusion[0][3] = 5
    figure = charts.confusion_heatmap(confusion, "c")
    heat = figure.data[0]
    assert heat.type == "heatmap"
    z = np.asarray(heat.z)
    assert z.shape == (7, 7)
    assert z[0, 0] == pytest.approx(0.5) and z[0, 3] == pytest.approx(0.5)
    assert (z[1] == 0).all()  # a class without images stays 0, not NaN
    assert heat.text[0][3] == "5"
    assert list(heat.x) == list(EMOTIONS) and list(heat.y) == list(EMOTIONS)
    with pytest.raises(ValueError):
        charts.confusion_heatmap([[1, 2], [3, 4]])


def test_class_difference_chart_is_b_minus_a_in_points() -> None:
    a, b = uniform_metrics(0)["per_class"], uniform_metrics(1)["per_class"]
    figure = charts.class_difference_chart(a, b, "base", "masked", "recall")
    bars = figure.data[0]
    expected = [100 * (b[e]["recall"] - a[e]["recall"]) for e in EMOTIONS]
    assert list(bars.x) == list(EMOTIONS)
    assert np.allclose(bars.y, expected)
    assert "masked minus base" in figure.layout.title.text


def test_class_distribution_chart_one_trace_per_split() -> None:
    counts = {"train": {"happy": 10, "sad": 4}, "val": {"happy": 2}}
    figure = charts.class_distribution_chart(counts)
    assert [trace.name for trace in figure.data] == ["train", "val"]
    assert list(figure.data[0].y) == [0, 0, 0, 10, 4, 0, 0]
    assert figure.data[1].customdata[3] == pytest.approx(1.0)


def test_occlusion_chart_has_a_trace_per_model_and_region() -> None:
    clean = {e: 0.5 for e in [*EMOTIONS, "all"]}
    report = {
        "clean": clean,
        "eyes": {"drop": {**{e: 0.1 for e in clean}}},
        "lower_face": {"drop": {**{e: 0.3 for e in clean}, "happy": 0.7}},
    }
    figure = charts.occlusion_chart({"a": report, "b": report})
    assert len(figure.data) == 4
    assert figure.data[1].name == "a: lower face covered"
    assert list(figure.data[0].x) == [*EMOTIONS, "all"]
    assert figure.data[1].y[3] == pytest.approx(70.0)


def test_region_removal_chart_tracks_the_original_class() -> None:
    probs = np.array([[0.1, 0, 0, 0.9, 0, 0, 0], [0.6, 0, 0, 0.4, 0, 0, 0], [0.2, 0, 0, 0.8, 0, 0, 0]])
    figure = charts.region_removal_chart({"a": probs})
    bars = figure.data[0]
    assert list(bars.x) == ["whole face", "region 1", "region 2"]
    assert np.allclose(bars.y, [0.9, 0.4, 0.8])
    assert "happy" in bars.name
    with pytest.raises(ValueError):
        charts.region_removal_chart({"a": probs}, ["only one label"])


def test_reliability_chart_draws_non_empty_bins_before_and_after() -> None:
    from core.evaluation.calibration import calibration_report

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 300)
    logits = rng.normal(size=(300, 7)) * 3
    logits[np.arange(300), labels] += 2  # right more often than not, and overconfident
    calibration = calibration_report(logits, labels)
    figure = charts.reliability_chart({"a": calibration})
    assert [trace.name for trace in figure.data[1:]] == [
        f"a before (ECE {calibration['ece_before']:.1%})",
        f"a after (ECE {calibration['ece_after']:.1%})",
    ]
    after = calibration["reliability_after"]
    assert list(figure.data[2].customdata) == [n for n in after["count"] if n]
    assert sum(figure.data[2].customdata) == 300
    assert list(figure.data[2].y) == [a for a in after["accuracy"] if a is not None]


def face_and_maps(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 256, (48, 48)).astype(np.uint8)
    a, b = np.zeros((48, 48)), np.zeros((48, 48))
    a[10:20, 10:20], b[30:40, 30:40] = 1.0, 0.5
    return crop, {"base": a, "masked": b}


def test_saliency_comparison_shares_one_scale_and_shows_b_minus_a_on_a_diverging_one() -> None:
    crop, maps = face_and_maps()
    figure = charts.saliency_comparison_figure(crop, maps, opacity=0.3)
    maps_traces = [trace for trace in figure.data if trace.coloraxis]
    assert [trace.coloraxis for trace in maps_traces] == ["coloraxis", "coloraxis", "coloraxis2"]
    assert all(trace.opacity == 0.3 for trace in maps_traces)
    difference = np.asarray(maps_traces[2].z)
    assert difference[15, 15] == -1.0 and difference[35, 35] == 0.5 and difference[0, 0] == 0.0
    layout = figure.layout
    assert (layout.coloraxis.cmin, layout.coloraxis.cmax) == (0, 1)
    assert layout.coloraxis2.cmin == -layout.coloraxis2.cmax and layout.coloraxis2.cmid == 0
    assert layout.coloraxis2.colorscale[len(layout.coloraxis2.colorscale) // 2][1].lower() in (
        "rgb(247,247,247)",
        "#f7f7f7",
    ), "zero is white"
    assert layout.height >= 224 + 60, "each picture at least 224 px tall"
    titles = [annotation.text for annotation in layout.annotations]
    assert titles == ["A · base", "B · masked", "B − A"]
    with pytest.raises(ValueError, match="one shape"):
        charts.saliency_comparison_figure(crop[:40], maps)
    with pytest.raises(ValueError, match="two maps"):
        charts.saliency_comparison_figure(crop, {"only": maps["base"]})


@pytest.mark.parametrize(
    ("split", "left", "right"), [(1.0, "base", "base"), (0.0, "masked", "masked"), (0.5, "base", "masked")]
)
def test_swipe_shows_a_left_of_the_line_and_b_right_of_it(split: float, left: str, right: str) -> None:
    crop, maps = face_and_maps()
    figure = charts.swipe_figure(crop, maps, split)
    shown = np.asarray(next(trace for trace in figure.data if trace.coloraxis).z)
    assert np.array_equal(shown[:, :10], maps[left][:, :10]) and np.array_equal(
        shown[:, -10:], maps[right][:, -10:]
    )
    assert len(figure.layout.shapes) == (1 if 0 < split < 1 else 0), "a line only where both show"
    labels = [annotation.text for annotation in figure.layout.annotations]
    assert ("A · base" in labels) == (split > 0) and ("B · masked" in labels) == (split < 1)
    with pytest.raises(ValueError, match="split"):
        charts.swipe_figure(crop, maps, 1.5)


def test_part_share_chart_has_one_bar_trace_per_model_with_percent_labels() -> None:
    shares = {"base": {"eyes": 0.5, "mouth": 0.25}, "masked": {"eyes": 0.1, "mouth": 0.6}}
    figure = charts.part_share_chart(shares)
    assert [trace.name for trace in figure.data] == ["base", "masked"]
    assert list(figure.data[1].y) == ["eyes", "mouth"] and list(figure.data[1].text) == ["10%", "60%"]
    assert figure.data[0].marker.color != figure.data[1].marker.color


def test_deletion_chart_draws_each_map_beside_its_random_order_with_areas() -> None:
    from types import SimpleNamespace

    fractions = np.linspace(0, 1, 5)
    curves = {"base": SimpleNamespace(fractions=fractions, probabilities=1 - fractions, auc=0.5)}
    random = {"base": SimpleNamespace(fractions=fractions, probabilities=np.full(5, 0.8), auc=0.8)}
    figure = charts.deletion_chart(curves, random)
    assert [trace.name for trace in figure.data] == ["base map (area 0.50)", "base random order (area 0.80)"]
    assert figure.data[0].line.color == figure.data[1].line.color
    assert (figure.data[0].line.dash, figure.data[1].line.dash) == ("solid", "dot")


def test_mean_maps_figure_is_three_rows_of_emotions_with_b_minus_a_last() -> None:
    rng = np.random.default_rng(1)
    first = {e: rng.random((12, 12)) for e in EMOTIONS}
    second = {e: rng.random((12, 12)) for e in EMOTIONS[:3]}
    figure = charts.mean_maps_figure({"base": first, "masked": second}, counts={"angry": 4})
    given = charts.mean_maps_figure({"base": first, "masked": second}, {"angry": np.zeros((12, 12))})
    assert not np.asarray(given.data[2].z).any(), "a difference given is drawn as given"
    assert len(figure.data) == 3 * 3, "only the emotions both models have"
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles[:3] == ["angry (4)", "disgust", "fear"]
    assert "B − A" in titles and "A · base" in titles
    difference = np.asarray(figure.data[2].z)
    assert np.allclose(difference, second["angry"] - first["angry"], atol=1e-6)
    limit = figure.layout.coloraxis2.cmax
    assert limit == pytest.approx(max(np.abs(second[e] - first[e]).max() for e in EMOTIONS[:3]), abs=1e-9)


def test_part_share_ci_chart_has_a_panel_per_part_and_asymmetric_error_bars() -> None:
    rows = [
        {"model": m, "emotion": e, "part": p, "share": 0.3, "low": 0.2, "high": 0.35}
        for p in ("eyes", "mouth")
        for m in ("base", "masked")
        for e in EMOTIONS
    ]
    figure = charts.part_share_ci_chart(rows)
    assert len(figure.data) == 4
    assert [a.text for a in figure.layout.annotations] == ["eyes", "mouth"]
    bar = figure.data[0]
    assert list(bar.x) == list(EMOTIONS)
    assert np.allclose(bar.error_y.array, 0.05) and np.allclose(bar.error_y.arrayminus, 0.1)
    assert [trace.showlegend for trace in figure.data] == [True, True, False, False]
    with pytest.raises(ValueError):
        charts.part_share_ci_chart([])


def test_sanity_chart_draws_a_band_and_a_line_per_model() -> None:
    steps = [
        {"reset_to": "classifier", "mean": 0.8, "lo": 0.7, "hi": 0.9},
        {"reset_to": "features.0", "mean": 0.1, "lo": 0.0, "hi": 0.2},
    ]
    figure = charts.sanity_chart({"base": steps, "masked": steps})
    lines = [trace for trace in figure.data if trace.mode == "lines+markers"]
    assert [trace.name for trace in lines] == ["base", "masked"]
    assert list(lines[0].x) == ["1. classifier", "2. features.0"] and list(lines[0].y) == [0.8, 0.1]
    band = figure.data[0]
    assert band.fill == "toself" and list(band.y) == [0.9, 0.2, 0.0, 0.7]
