"""Metrics against hand-computed values; occlusion report; confidence interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.datasets import FaceDataset
from core.evaluation.metrics import (
    accuracy_interval,
    classification_metrics,
    evaluate_model,
    occlude,
    paired_comparison,
    predict_dataset,
    region_removal_report,
)
from core.models.architectures import create_model
from tests.helpers import synthetic_faces


def one_hot(predictions: list[int]) -> np.ndarray:
    probabilities = np.full((len(predictions), 7), 0.01)
    probabilities[np.arange(len(predictions)), predictions] = 0.94
    return probabilities


def test_metrics_match_hand_computation() -> None:
    labels = np.array([0, 0, 3, 3, 3, 6])
    predictions = [0, 3, 3, 3, 6, 6]
    metrics = classification_metrics(labels, one_hot(predictions))
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # angry: P=1/1 R=1/2 F1=2/3; happy: P=2/3 R=2/3 F1=2/3; neutral: P=1/2 R=1 F1=2/3; 4 absent classes F1=0
    assert metrics["per_class"]["angry"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert metrics["per_class"]["happy"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["neutral"]["recall"] == 1.0
    assert metrics["macro_f1"] == pytest.approx(3 * (2 / 3) / 7)
    assert metrics["confusion"][3] == [0, 0, 0, 2, 0, 0, 1]
    assert metrics["confusion"][0][3] == 1
    assert metrics["loss"] == pytest.approx(
        -np.mean(np.log([0.94, 0.01, 0.94, 0.94, 0.01, 0.94]) - np.log(1.0 / 1.0)), rel=1e-3
    )


def test_interval_is_about_one_and_a_half_points_on_fer_val() -> None:
    low, high = accuracy_interval(0.70, 3589)
    assert 0.014 < (high - low) / 2 < 0.016
    assert low < 0.70 < high


def test_occlude_blanks_rows_only() -> None:
    images = np.full((2, 48, 48), 100, np.uint8)
    covered = occlude(images, "lower_face")
    assert (covered[:, 27:] == 0).all() and (covered[:, :27] == 100).all()
    assert (images == 100).all()
    with pytest.raises(ValueError, match="unknown occlusion"):
        occlude(images, "ears")


def test_evaluate_model_report_shape() -> None:
    torch.manual_seed(0)
    images, labels = synthetic_faces(4)
    model = create_model("seed_cnn").eval()
    report = evaluate_model(model, FaceDataset(images, labels, [""] * len(labels)))
    assert report["count"] == 28 and 0 <= report["accuracy"] <= 1
    assert len(report["labels"]) == len(report["predictions"]) == 28 and set(report["predictions"]) <= set(
        "0123456"
    )
    assert set(report["occlusion"]) == {"clean", "eyes", "lower_face"}
    drop = report["occlusion"]["eyes"]["drop"]["all"]
    assert drop == pytest.approx(
        report["occlusion"]["clean"]["all"] - report["occlusion"]["eyes"]["accuracy"]["all"]
    )
    assert report["occlusion"]["clean"]["all"] == pytest.approx(report["accuracy"])


def test_paired_comparison_counts_and_exact_mcnemar() -> None:
    labels = np.zeros(10, dtype=int)
    first = np.array([0] * 8 + [1] * 2)  # right on 8
    second = np.array([0] * 2 + [3] * 8)  # right on the first 2 only
    result = paired_comparison(labels, first, second)
    assert (result["both_right"], result["only_first"], result["only_second"], result["both_wrong"]) == (
        2,
        6,
        0,
        2,
    )
    assert result["p_value"] == pytest.approx(2 * 0.5**6)  # 6 of 6 discordant faces on one side
    assert paired_comparison(labels, first, first)["p_value"] == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        paired_comparison(labels, first[:5], second)


def test_region_removal_blacks_out_each_region_in_turn() -> None:
    torch.manual_seed(0)
    images, labels = synthetic_faces(4)
    faces = FaceDataset(images, labels, [""] * len(labels))
    model = create_model("seed_cnn").eval()
    maps = np.zeros(images.shape, np.uint8)
    maps[:, 24:, :] = 1  # region 1: the top half, region 2: the bottom half
    report = region_removal_report(model, faces, maps)
    assert set(report) == {"clean", "region_1", "region_2"}
    top_removed = images.copy()
    top_removed[:, :24] = 0
    expected = float((predict_dataset(model, top_removed).argmax(axis=1) == labels).mean())
    assert report["region_1"]["accuracy"]["all"] == pytest.approx(expected)
    assert report["region_1"]["drop"]["all"] == pytest.approx(report["clean"]["all"] - expected)
    with pytest.raises(ValueError, match="differ in shape"):
        region_removal_report(model, faces, maps[:3])
