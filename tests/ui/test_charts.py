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
