"""The real-photo test command: corruption suite, scenes tables, cards, charts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.data.corruptions import CORRUPTIONS, SEVERITIES
from core.data.datasets import FaceDataset
from core.evaluation.metrics import predict_dataset
from core.evaluation.robustness import corruption_suite, corruption_table, subset
from core.evaluation.scenes import WIDTH_BINS, FaceOutcome, score_outcomes
from core.models.loading import load_model
from core.models.registry import ModelLoadError, find_model, read_card, update_card
from tests.helpers import synthetic_faces
from ui import charts


@pytest.fixture
def faces() -> FaceDataset:
    images, labels = synthetic_faces(4, seed=2)
    return FaceDataset(images, labels, [str(i) for i in range(len(labels))])


def test_corruption_suite_scores_every_corruption_and_severity(tiny_registry, faces: FaceDataset) -> None:
    models = [load_model(name) for name in tiny_registry]
    results = corruption_suite(models, faces, seed=3)
    assert list(results) == tiny_registry
    for model in models:
        result = results[model.name]
        predictions = predict_dataset(model.module, faces.images, model.preprocessing).argmax(1)
        assert result["clean"] == pytest.approx(float((predictions == faces.labels).mean()))
        assert list(result["accuracy"]) == list(CORRUPTIONS)
        assert all(len(row) == SEVERITIES for row in result["accuracy"].values())
        every = [v for row in result["accuracy"].values() for v in row]
        assert result["mean"] == pytest.approx(np.mean(every)) and result["count"] == len(faces)
    table = corruption_table(results)
    assert table.count("\n") == len(CORRUPTIONS) + 3  # header, rule, clean, corruptions, mean
    assert f" {tiny_registry[0]} (severity 1/2/3) |" in table.splitlines()[0]


def test_subset_is_seeded_and_bounded(faces: FaceDataset) -> None:
    assert len(subset(faces, 5, seed=1)) == 5
    assert subset(faces, 5, seed=1).sources == subset(faces, 5, seed=1).sources
    assert subset(faces, None) is faces and subset(faces, 10_000) is faces
    with pytest.raises(ValueError, match="at least 1"):
        subset(faces, 0)


def test_robustness_command_prints_tables_and_records_cards(
    tiny_registry, fer_folders: Path, tmp_path: Path, capsys
) -> None:
    argv = [
        "robustness",
        "--models",
        *tiny_registry,
        "--data",
        str(fer_folders),
        "--scenes",
        "2",
        "--limit",
        "20",
        "--min-face-size",
        "40",
        "30",
        "--record",
        "--save-scenes",
        str(tmp_path / "scenes"),
    ]
    assert main(argv) == 0
    truth = json.loads((tmp_path / "scenes" / "truth.json").read_text())
    assert sorted(truth) == ["scene_000.jpg", "scene_001.jpg"]
    assert all((tmp_path / "scenes" / name).stat().st_size > 1000 for name in truth)
    out = capsys.readouterr().out
    assert "## Corruption suite (20 val faces" in out and "| low resolution |" in out
    assert "## Faces in scenes (2 photos" in out
    scene_rows = [line for line in out.splitlines() if line.startswith(("| 40 |", "| 30 |"))]
    assert len(scene_rows) == 2 * len(tiny_registry)  # one per min face size and model
    assert "recall @40" in out and "recall @30" in out and "detect ms/photo" in out and "CPU ms/photo" in out
    for name in tiny_registry:
        card = read_card(find_model(name).with_suffix(".json"))  # still valid against the schema
        entry = card["robustness"]
        assert entry["command"] == "python -m core " + " ".join(argv)
        assert entry["corruptions"]["count"] == 20
        assert entry["scenes"]["min_face_size"] == 40  # the first size is the one recorded
        assert [(b["low"], b["high"]) for b in entry["scenes"]["bins"]] == list(WIDTH_BINS)
        assert entry["scenes"]["faces"] == sum(b["faces"] for b in entry["scenes"]["bins"])


def test_robustness_command_refuses_nothing_to_do(tiny_registry, fer_folders: Path, capsys) -> None:
    assert main(["robustness", "--data", str(fer_folders), "--scenes", "0", "--limit", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: nothing to run: --scenes 0 and --limit -1"
    assert main(["robustness", "--data", str(fer_folders), "--min-face-size", "5"]) == 2


def test_update_card_refuses_what_the_schema_does_not_allow(tiny_registry) -> None:
    path = find_model(tiny_registry[0]).with_suffix(".json")
    before = path.read_text()
    with pytest.raises(ModelLoadError, match="not recorded"):
        update_card(tiny_registry[0], {"robustness": {"corruptions": {"clean": 2.0}}})
    assert path.read_text() == before
    update_card(tiny_registry[0], {"robustness": {"command": "x"}})
    assert json.loads(path.read_text())["robustness"] == {"command": "x"}


def test_robustness_charts_from_recorded_results(tiny_registry, faces: FaceDataset) -> None:
    models = [load_model(name) for name in tiny_registry]
    corrupted = corruption_suite(models, faces)
    figure = charts.corruption_chart(corrupted)
    assert len(figure.data) == len(models) * (len(CORRUPTIONS) + 1)
    assert list(figure.data[0].x) == ["clean", "1", "2", "3"]
    assert figure.data[0].y[0] == pytest.approx(corrupted[tiny_registry[0]]["clean"])
    assert sum(trace.showlegend for trace in figure.data) == len(models)
    outcomes = [FaceOutcome(25, 1, {"m": None}), FaceOutcome(150, 3, {"m": 3})]
    scenes = {"m": {**score_outcomes(outcomes, "m"), "min_face_size": 40}}
    figure = charts.scenes_width_chart(scenes)
    bars, recall = figure.data
    assert len(bars.x) == len(WIDTH_BINS) and bars.y[0] == 0.0 and bars.y[-1] == 1.0
    assert "min face 40 px" in recall.name and recall.y[0] == 0.0
