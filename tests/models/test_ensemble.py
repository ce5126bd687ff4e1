"""The average of two registered models ("A+B"): a model like any other, with clear faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.explain.saliency import explain
from core.models.ensemble import ensemble_choices
from core.models.loading import load_model
from core.models.predict import predict_proba
from core.models.registry import ModelLoadError, list_models
from core.pipeline import analyze


def _calibrate(name: str, home: Path, temperature: float) -> None:
    card_path = home / "models" / f"{name}.json"
    card = json.loads(card_path.read_text())
    card["calibration"] = {"temperature": temperature}
    card_path.write_text(json.dumps(card))


@pytest.fixture
def crops() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (5, 48, 48)).astype(np.uint8)


def test_average_is_the_mean_of_the_members_calibrated_probabilities(
    tiny_registry: list[str], isolated_home: Path, crops: np.ndarray
) -> None:
    _calibrate("tiny_b", isolated_home, 0.5)
    first, second = (load_model(name) for name in tiny_registry)
    average = load_model("tiny_a+tiny_b")
    assert average.name == "tiny_a+tiny_b" and average.card["members"] == ["tiny_a", "tiny_b"]
    assert average.card["member_temperatures"] == [1.0, 0.5] and average.temperature == 1.0
    expected = (predict_proba(first, crops) + predict_proba(second, crops)) / 2
    assert np.allclose(predict_proba(average, crops), expected, atol=1e-5)
    mirrored = (predict_proba(first, crops, True) + predict_proba(second, crops, True)) / 2
    assert np.allclose(predict_proba(average, crops, flip_tta=True), mirrored, atol=1e-5)
    # Grad-CAM reads both members' layers; its forward pass gives the same probabilities.
    heat, probabilities = explain(average, crops)
    assert heat.shape == (5, 48, 48) and heat.min() >= 0 and heat.max() <= 1 + 1e-6
    assert np.allclose(probabilities, expected, atol=1e-5)


def test_average_runs_through_the_pipeline_and_the_cli(
    tiny_registry: list[str], astronaut, detector, capsys, tmp_path: Path
) -> None:
    average = load_model("tiny_a+tiny_b")
    result = analyze(astronaut, [load_model("tiny_a"), average], detector)
    assert len(result.faces) == 1 and set(result.faces[0].heatmaps) == {"tiny_a", "tiny_a+tiny_b"}
    assert np.isclose(result.faces[0].probabilities["tiny_a+tiny_b"].sum(), 1, atol=1e-5)
    from core.cli import main

    photo = tmp_path / "astronaut.png"
    astronaut.save(photo)
    assert main(["predict", str(photo), "--models", "tiny_a+tiny_b", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "tiny_a+tiny_b" in json.dumps(printed)


def test_broken_or_unknown_member_fails_cleanly(tiny_registry: list[str], isolated_home: Path) -> None:
    (isolated_home / "models" / "tiny_b.pt").write_bytes(b"not a weights file")
    with pytest.raises(ModelLoadError, match=r"model tiny_a\+tiny_b: its member cannot be used.*tiny_b"):
        load_model("tiny_a+tiny_b")
    with pytest.raises(ModelLoadError, match=r"tiny_a\+nope.*no model named 'nope'"):
        load_model("tiny_a+nope")
    with pytest.raises(ModelLoadError, match="two or more different models"):
        load_model("tiny_a+tiny_a")


def test_members_prepared_differently_are_refused(tiny_registry: list[str], isolated_home: Path) -> None:
    card_path = isolated_home / "models" / "tiny_b.json"
    card = json.loads(card_path.read_text())
    card["preprocessing"]["mean"] = 0.4
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="differently prepared faces"):
        load_model("tiny_a+tiny_b")


def test_average_is_offered_for_the_default_pair(tiny_registry: list[str]) -> None:
    cards = list_models()
    [offered] = ensemble_choices(cards, tiny_registry)
    assert offered["name"] == "tiny_a+tiny_b" and offered["mtime"] == max(c["mtime"] for c in cards)
    assert ensemble_choices(cards, ["tiny_a", None]) == []


def test_cli_evaluates_and_calibrates_the_average(
    tiny_registry: list[str], fer_folders: Path, capsys
) -> None:
    from core.cli import main

    data = ["--data", str(fer_folders), "--split", "val"]
    assert main(["evaluate", "--model", "tiny_a+tiny_b", *data, "--no-occlusion"]) == 0
    assert "tiny_a+tiny_b on" in capsys.readouterr().out
    assert main(["evaluate", "--model", "tiny_a+tiny_b", *data, "--record"]) == 2
    assert "has no card to record in" in capsys.readouterr().err
    assert main(["robustness", "--models", "tiny_a+tiny_b", "--scenes", "1", "--record", *data]) == 2
    assert "has no card to record in" in capsys.readouterr().err
    assert main(["calibrate", "--models", "tiny_a", "tiny_b", "tiny_a+tiny_b", *data]) == 0
    printed = capsys.readouterr().out
    assert "| tiny_a+tiny_b | 42 | members' own |" in printed
    assert "| tiny_b | " in printed.split("average of calibrated probabilities")[1]  # with its McNemar test
