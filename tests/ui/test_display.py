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
        ("Spearman rank correlation", "—"),
        ("Top-20 % IoU", "25%"),
    ]
    assert agreement_figures({})[0][1] == "—"
