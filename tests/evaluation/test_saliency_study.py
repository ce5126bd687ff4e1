"""The saliency study on a tiny generated dataset with real tiny models: stored, validated, read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.data.datasets import load_dataset
from core.evaluation.saliency_store import StudyError, load_study
from core.evaluation.saliency_study import bootstrap, parameter_layers
from core.explain.compare import FACE_PARTS
from core.labels import EMOTIONS
from core.models.architectures import cam_layer_choices
from core.models.loading import load_model
from tests.helpers import write_fer_folders


def test_study_command_records_a_valid_study_that_load_study_reads(
    tiny_registry: list[str], tmp_path: Path, isolated_home: Path, capsys
) -> None:
    data = write_fer_folders(tmp_path / "fer", count_per_class=3)
    argv = [
        "saliency-study",
        "--models",
        *tiny_registry,
        "--data",
        str(data),
        "--limit",
        "21",
        "--no-landmarks",
    ]
    argv += ["--layer-faces", "7", "--sanity-faces", "3", "--steps", "4", "--record"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| fear |" in captured.out and "Claim: fear (3 faces): tiny_b puts" in captured.out
    assert "saliency-study_tiny_a_vs_tiny_b.json" in captured.err

    study = load_study(*tiny_registry)
    assert study is not None and study.path.parent == isolated_home / "models"
    summary = study.summary
    assert summary["faces"] == 21 and summary["models"] == tiny_registry
    assert summary["landmarks_found"] == 0  # typical landmarks for every face
    for name in tiny_registry:
        for emotion in [*EMOTIONS, "all"]:
            means = [summary["parts"][name][emotion][p]["mean"] for p in FACE_PARTS]
            assert sum(means) == pytest.approx(1.0, abs=1e-3)
            for p in FACE_PARTS:
                cell = summary["parts"][name][emotion][p]
                assert cell["lo"] <= cell["mean"] + 1e-9 and cell["mean"] <= cell["hi"] + 1e-9
        faithful = summary["faithfulness"][name]
        assert faithful["faces"] == 21 and len(faithful["curve"]) == 5
        assert list(summary["layers"]["rows"][name]) == list(cam_layer_choices(load_model(name).module))
        resets = summary["sanity"]["rows"][name]
        model = load_model(name)
        assert [row["reset_to"] for row in resets] == [n for n, _ in reversed(parameter_layers(model.module))]
    assert study.maps["a_all"].shape == (7, 48, 48)
    assert np.allclose(study.maps["difference_all"], study.maps["b_all"] - study.maps["a_all"], atol=1e-5)
    assert load_study("tiny_b", "tiny_a") is None  # the order matters: B - A
    drawn = tmp_path / "maps.png"
    assert main(["saliency-study", "--models", *tiny_registry, "--draw", str(drawn)]) == 0
    assert drawn.stat().st_size > 1000 and (tmp_path / "maps-correct.png").exists()

    study.path.write_text(json.dumps({**summary, "version": 99}))
    with pytest.raises(StudyError, match="version"):
        load_study(*tiny_registry)


def test_bootstrap_interval_holds_the_mean() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 0.1, (200, 2))
    low, high = bootstrap(values, rng)
    assert low["lo"] < low["mean"] < low["hi"] and abs(low["mean"] - 0.3) < 0.03
    assert high["hi"] - high["lo"] < 0.06


def test_study_reads_a_dataset_of_faces(tmp_path: Path) -> None:
    data = load_dataset(write_fer_folders(tmp_path / "fer", count_per_class=2), "val")
    assert len(data) == 14
