"""evaluate_model's optional progress callback (used by the Models page's progress bar)."""

from __future__ import annotations

import torch

from core.data.datasets import FaceDataset
from core.evaluation.metrics import evaluate_model
from core.models.architectures import create_model
from tests.helpers import synthetic_faces


def test_progress_rises_from_zero_to_one() -> None:
    torch.manual_seed(0)
    images, labels = synthetic_faces(2)
    calls: list[tuple[float, str]] = []
    report = evaluate_model(
        create_model("seed_cnn").eval(),
        FaceDataset(images, labels, [""] * len(labels)),
        progress=lambda fraction, text: calls.append((fraction, text)),
    )
    fractions = [fraction for fraction, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and len(fractions) >= 4
    assert all(isinstance(text, str) and text for _, text in calls)
    assert "occlusion" in report


def test_progress_without_occlusion() -> None:
    images, labels = synthetic_faces(1)
    calls: list[float] = []
    evaluate_model(
        create_model("seed_cnn").eval(),
        FaceDataset(images, labels, [""] * len(labels)),
        occlusion=False,
        progress=lambda fraction, text: calls.append(fraction),
    )
    assert calls == [0.0, 1.0]
