"""ui.display: model defaults, cache keys, sample, display helpers and evaluation tables."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.evaluation.metrics import classification_metrics
from core.faces.images import decode_image
from core.labels import EMOTIONS
from ui import display as studio


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["x", "masked", "y", "baseline"], ("baseline", "masked")),
        (["x", "baseline", "y"], ("baseline", "x")),
        (["x", "masked"], ("masked", "x")),
        (["x", "y", "z"], ("x", "y")),
        (["only"], ("only", None)),
        ([], (None, None)),
    ],
)
def test_default_pair_prefers_baseline_and_masked(names: list[str], expected: tuple) -> None:
    assert studio.default_pair(names) == expected


def test_model_keys_follow_mtime_and_skip_repeats_and_unknown() -> None:
    cards = [{"name": "a", "mtime": 1.0}, {"name": "b", "mtime": 2.0}]
    assert studio.model_keys(cards, ["a", "b"]) == (("a", 1.0), ("b", 2.0))
    assert studio.model_keys(cards, ["a", "a", None, "gone"]) == (("a", 1.0),)
    retrained = [{"name": "a", "mtime": 5.0}, cards[1]]
    assert studio.model_keys(retrained, ["a", "b"]) != studio.model_keys(cards, ["a", "b"])


def test_model_keys_change_when_a_model_is_saved_again(tiny_registry: list[str]) -> None:
    import os

    from core.models.registry import list_models

    before = studio.model_keys(list_models(), tiny_registry)
    card = list_models()[0]
    os.utime(card["path"], (card["mtime"] + 10, card["mtime"] + 10))
    after = studio.model_keys(list_models(), tiny_registry)
    assert before[0][0] == after[0][0] and before[0][1] != after[0][1]


def test_sample_is_the_astronaut_png() -> None:
    image = decode_image(studio.sample_png(), "sample")
    assert image.size == (512, 512)


def test_png_bytes_and_enlarge() -> None:
    crop = np.arange(48 * 48, dtype=np.uint32).reshape(48, 48).astype(np.uint8)
    assert studio.png_bytes(crop).startswith(b"\x89PNG")
    assert studio.png_bytes(Image.fromarray(crop)).startswith(b"\x89PNG")
    assert studio.enlarge(crop, 96).shape == (96, 96)
    rgb = np.zeros((48, 48, 3), np.uint8)
    big = studio.enlarge(rgb, 144, smooth=False)
    assert big.shape == (144, 144, 3) and big.dtype == np.uint8


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ((721, 1), (360, 1)),
        ((10000, 10), (360, 1)),
        ((1, 721), (1, 360)),
        ((400, 300), (360, 270)),
        ((80, 60), (80, 60)),
    ],
)
def test_preview_fits_and_keeps_every_side_visible(size: tuple[int, int], shown: tuple[int, int]) -> None:
    image = Image.new("RGB", size, "white")
    assert studio.preview(image).size == shown
    assert image.size == size  # the photo itself is untouched


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("holiday photo.JPG", "holiday-photo"),
        ("a/b/c.png", "c"),
        ("..png", "image"),
        ("camera photo", "camera-photo"),
    ],
)
def test_file_stem(name: str, stem: str) -> None:
    assert studio.file_stem(name) == stem


def test_evaluation_tables() -> None:
    labels = np.repeat(np.arange(7), 3)
    metrics = classification_metrics(labels, 0.01 + 0.93 * np.eye(7)[labels])
    metrics["accuracy_95ci"] = [0.8, 1.0]
    evaluations = {"a": {"fer/val": metrics}, "b": {"other": metrics, "fer/val": metrics}, "c": {}}
    assert studio.evaluation_keys(evaluations) == ["fer/val", "other"]
    rows = studio.metrics_rows(evaluations, "fer/val")
    assert [row["model"] for row in rows] == ["a", "b"]
    assert (
        rows[0]["accuracy"] == 100.0
        and rows[0]["95% interval"] == "80.0 to 100.0"
        and rows[0]["images"] == 21
    )
    per_class = studio.per_class_rows(metrics)
    assert [row["emotion"] for row in per_class] == list(EMOTIONS)
    assert per_class[0] == {
        "emotion": "angry",
        "precision": 100.0,
        "recall": 100.0,
        "F1": 100.0,
        "support": 3,
    }
    assert studio.support_counts(metrics) == dict.fromkeys(EMOTIONS, 3)


def test_model_summary_reads_a_card() -> None:
    card = {
        "name": "m",
        "scheme": "masked",
        "architecture": "vgg",
        "training": {"epochs": 3},
        "evaluations": {"x": {}},
    }
    summary = studio.model_summary(card)
    assert summary["scheme"] == "masked" and summary["epochs"] == 3 and summary["evaluations"] == 1


def test_part_share_labels_are_readable_and_keep_order() -> None:
    from ui.display import part_share_labels

    labels = part_share_labels({"a": {"left_eye": 0.2, "mouth": 0.5, "chin_strap": 0.3}})
    assert list(labels["a"]) == ["eye on the left", "mouth", "chin strap"]
    assert labels["a"]["mouth"] == 0.5


def test_agreement_figures_show_nan_as_a_dash() -> None:
    from ui.display import agreement_figures

    figures = agreement_figures({"spearman": float("nan"), "top20_iou": 0.254})
    assert [(label, value) for label, value, _ in figures] == [
        ("Spearman ρ", "—"),
        ("Top-20 % IoU", "25%"),
    ]
    assert agreement_figures({})[0][1] == "—"


def interval(mean: float, spread: float = 0.01) -> dict[str, float]:
    return {"mean": mean, "lo": mean - spread, "hi": mean + spread}


def small_summary() -> dict:
    """The fields of a stored study (core.evaluation.saliency_study) the Saliency page reads."""
    from core.labels import EMOTIONS

    parts = {e: {"left_eye": interval(0.2), "mouth": interval(0.8)} for e in [*EMOTIONS, "all"]}
    faithful = {
        "faces": 9,
        "deletion_auc": interval(0.3),
        "random_deletion_auc": interval(0.5),
        "gap": interval(0.2),
        "beats_random": 0.75,
        "curve": [0.9, 0.4, 0.1],
        "random_curve": [0.9, 0.7, 0.1],
    }
    return {
        "models": ["a", "b"],
        "counts": {
            "all": dict.fromkeys(EMOTIONS, 5),
            "correct a": dict.fromkeys(EMOTIONS, 2),
            "correct b": dict.fromkeys(EMOTIONS, 3),
        },
        "parts": {"a": parts, "b": parts},
        "part_difference": {"fear": {"mouth": interval(0.031, 0.04)}},
        "faithfulness": {"a": faithful, "b": faithful},
        "layers": {"faces": 3, "rows": {"a": {"block1": faithful, "block2": faithful}}},
    }


def test_study_tables_read_the_stored_summary() -> None:
    from ui import display

    summary = small_summary()
    assert display.study_counts(summary, "all")["fear"] == "5"
    assert display.study_counts(summary, "correct")["fear"] == "2/3", "A's count then B's"
    rows = display.study_part_rows(summary)
    assert len(rows) == 2 * 8 * 2 and rows[1] == {
        "model": "a",
        "emotion": "angry",
        "part": "mouth",
        "share": 0.8,
        "low": 0.79,
        "high": 0.81,
    }
    assert display.part_difference_rows(summary) == [{"emotion": "fear", "mouth": "+3.1 (-0.9 to +7.1)"}]
    faithful = display.faithfulness_rows(summary)[0]
    assert faithful["deletion AUC (lower: faithful)"] == "0.300 (0.290 to 0.310)"
    assert faithful["map beats random on"] == "75% of faces"
    assert [row["layer"] for row in display.layer_rows(summary)] == ["block1", "block2"]
    curves, random = display.study_curves(summary)
    assert list(curves["a"].fractions) == [0.0, 0.5, 1.0] and random["b"].auc == 0.5


def test_study_mean_maps_split_the_stored_arrays_by_model_and_emotion() -> None:
    from ui import display

    arrays = {
        f"{role}_all": np.full((7, 4, 4), k, np.float32) for k, role in enumerate(("a", "b", "difference"))
    }
    maps, difference = display.study_mean_maps(arrays, ["base", "masked"], "all")
    assert list(maps) == ["base", "masked"] and list(maps["base"]) == list(EMOTIONS)
    assert maps["masked"]["fear"].mean() == 1 and difference["happy"].mean() == 2


def test_sanity_sentence_says_whether_the_maps_need_the_learned_weights() -> None:
    from ui.display import sanity_sentence

    falling = [
        {"reset_to": "fc", "mean": 0.6, "lo": 0.5, "hi": 0.7},
        {"reset_to": "conv1", "mean": 0.1, "lo": 0.0, "hi": 0.2},
    ]
    staying = [{**row, "mean": 0.9, "lo": 0.85, "hi": 0.95} for row in falling]
    assert "depend on what the model learned" in sanity_sentence("a", falling)
    assert "0.10 (0.00 to 0.20)" in sanity_sentence("a", falling)
    assert "show the picture more than the model" in sanity_sentence("b", staying)
    assert "no layer" in sanity_sentence("c", [])
