"""Temperature scaling: fitted on a trained model, stored in its card, applied wherever probabilities are made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.data.datasets import load_dataset
from core.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    scaled_probabilities,
)
from core.evaluation.metrics import dataset_logits, predict_dataset
from core.explain.saliency import explain
from core.labels import EMOTIONS
from core.models.loading import load_model
from core.models.predict import predict_proba
from core.models.preprocess import to_tensor
from core.models.registry import ModelLoadError, save_model
from tests.helpers import write_fer_folders


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny VGG trained to overconfidence (plain cross-entropy, many steps) on generated faces,
    registered in its own folder; and FER-style data whose val split has a quarter of its
    faces filed under the wrong emotion, so that the model is sure and often wrong there."""
    from core.models.architectures import create_model

    root = write_fer_folders(tmp_path_factory.mktemp("fer"), count_per_class=8)
    for number, folder in enumerate(sorted((root / "val").iterdir())):
        wrong = root / "val" / EMOTIONS[(EMOTIONS.index(folder.name) + 1) % len(EMOTIONS)]
        for moved in sorted(folder.glob("*.png"))[:2]:
            moved.rename(wrong / f"moved_{number}_{moved.name}")
    faces = load_dataset(root, "train")
    torch.manual_seed(0)
    module = create_model("vgg", widths=[8, 16])
    optimiser = torch.optim.Adam(module.parameters(), lr=0.01)
    inputs, labels = to_tensor(faces.images), torch.from_numpy(faces.labels)
    module.train()
    for _ in range(40):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(module(inputs), labels).backward()
        optimiser.step()
    module.eval()
    card = {"architecture": "vgg", "arch_args": {"widths": [8, 16]}, "scheme": "baseline"}
    return save_model(module, card, "tiny_trained", tmp_path_factory.mktemp("models")), root


def test_fitted_temperature_lowers_nll_and_keeps_every_prediction(trained, capsys) -> None:
    weights, root = trained
    model = load_model(str(weights))
    assert model.temperature == 1.0  # a card without calibration
    faces = load_dataset(root, "val")
    logits = dataset_logits(model.module, faces, model.preprocessing)
    temperature = fit_temperature(logits, faces.labels)
    assert nll(logits, faces.labels, temperature) < nll(logits, faces.labels) - 1e-3
    # A minimum: moving the temperature either way makes the fit worse.
    for moved in (temperature * 1.2, temperature / 1.2):
        assert nll(logits, faces.labels, temperature) < nll(logits, faces.labels, moved)
    assert (scaled_probabilities(logits, temperature).argmax(1) == logits.argmax(1)).all()

    # The command fits the same temperature, prints the table and stores it in the card ...
    code = main(["calibrate", "--models", str(weights), "--data", str(root), "--split", "val", "--record"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| model | faces | temperature |" in printed and f"{temperature:.3f}" in printed
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["calibration"]["temperature"] == pytest.approx(temperature, rel=1e-3)
    assert card["calibration"]["fitted_on"] == f"{root.name}/val"
    assert card["calibration"]["ece_before"] == pytest.approx(
        expected_calibration_error(scaled_probabilities(logits), faces.labels), abs=1e-6
    )
    assert sum(card["calibration"]["reliability_after"]["count"]) == len(faces)

    # ... and every path from logits to probabilities applies it, argmax unchanged.
    calibrated = load_model(str(weights))
    assert calibrated.temperature == pytest.approx(temperature, rel=1e-3)
    expected = scaled_probabilities(logits, calibrated.temperature)
    assert np.allclose(predict_proba(calibrated, faces.images), expected, atol=1e-4)
    assert np.allclose(
        predict_dataset(
            calibrated.module, faces, calibrated.preprocessing, temperature=calibrated.temperature
        ),
        expected,
        atol=1e-4,
    )
    _, explained = explain(calibrated, faces.images[:5])
    assert np.allclose(explained, expected[:5], atol=1e-4)
    assert (
        predict_proba(calibrated, faces.images).argmax(1) == predict_proba(model, faces.images).argmax(1)
    ).all()


def test_ece_of_known_inputs() -> None:
    # Four faces at confidence 0.9, three of them right (gap 0.15); two at 0.6, both right (gap 0.4).
    def row(top: int, confidence: float) -> list[float]:
        rest = (1 - confidence) / 6
        return [confidence if k == top else rest for k in range(7)]

    probabilities = np.array([row(0, 0.9)] * 4 + [row(1, 0.6)] * 2)
    labels = np.array([0, 0, 0, 3, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx((4 * 0.15 + 2 * 0.4) / 6)
    table = reliability(probabilities, labels)
    # 0.9 lies in (13/15, 14/15], 0.6 in (8/15, 9/15]: bins 13 and 8.
    assert [i for i, c in enumerate(table["count"]) if c] == [8, 13]
    assert table["accuracy"][13] == pytest.approx(0.75) and table["confidence"][8] == pytest.approx(0.6)
    assert table["accuracy"][0] is None and len(table["edges"]) == 16
    # Perfectly calibrated: each bin's accuracy equals its confidence.
    assert expected_calibration_error(np.array([row(0, 0.5)] * 2), np.array([0, 2])) == pytest.approx(0)


def test_card_temperature_round_trip_and_bad_temperature(isolated_home: Path) -> None:
    torch.manual_seed(0)
    from core.models.architectures import create_model

    module = create_model("vgg", widths=[8, 16]).eval()
    card = {"architecture": "vgg", "arch_args": {"widths": [8, 16]}, "calibration": {"temperature": 2.5}}
    path = save_model(module, card, "warm")
    model = load_model("warm")
    assert model.temperature == 2.5
    crops = np.random.default_rng(0).integers(0, 255, (4, 48, 48)).astype(np.uint8)
    logits = dataset_logits(module, crops, model.preprocessing)
    assert np.allclose(predict_proba(model, crops), scaled_probabilities(logits, 2.5), atol=1e-5)

    broken = json.loads(path.with_suffix(".json").read_text())
    broken["calibration"]["temperature"] = 0
    path.with_suffix(".json").write_text(json.dumps(broken))
    with pytest.raises(ModelLoadError, match="warm.*calibration/temperature"):
        load_model("warm")


def test_calibration_measured_on_damaged_faces(tiny_registry: list[str], fer_folders: Path, capsys) -> None:
    from core.data.corruptions import corrupt_all
    from core.evaluation.record import damaged

    faces = load_dataset(fer_folders, "val")
    assert np.array_equal(damaged(faces.images, "blur", 2), corrupt_all(faces.images, "blur", 2, 0))
    mixed = damaged(faces.images, "mixed", 3)
    assert mixed.shape == faces.images.shape and np.array_equal(mixed, damaged(faces.images, "mixed", 3))
    assert (mixed != faces.images).any(axis=(1, 2)).mean() > 0.9
    data = ["--data", str(fer_folders), "--split", "val", "--corruption", "mixed", "--severity", "3"]
    assert main(["calibrate", "--models", *tiny_registry, *data]) == 0
    assert "on fer/val, mixed at severity 3" in capsys.readouterr().out
    assert main(["calibrate", "--models", *tiny_registry, *data, "--record"]) == 2
    assert "leave out --corruption" in capsys.readouterr().err
