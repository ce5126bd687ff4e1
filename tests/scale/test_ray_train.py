"""Two-worker TorchTrainer (DDP, gloo on CPU) on generated faces: the run folder, and an exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.scale.ray_train import train_distributed
from core.training.config import TrainConfig
from core.training.loop import StopRequested

pytestmark = pytest.mark.slow

CHECKPOINT_KEYS = {
    "model", "optimizer", "scheduler", "ema", "generator", "torch_rng", "python_rng", "epoch", "history", "best", "config",
}  # fmt: skip


def tiny_config(data: Path) -> TrainConfig:
    return TrainConfig(
        data=str(data), architecture="vgg", arch_args={"widths": [8, 16]}, epochs=2, batch_size=8, threads=1,
        device="cpu", warmup_epochs=0.5,
    )  # fmt: skip


def comparable(rows: list[dict]) -> list[dict]:
    """Metrics rows without the timings."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")} for row in rows]


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_two_workers_train_and_resume_exactly(local_ray, fer_folders: Path, tmp_path: Path) -> None:
    config = tiny_config(fer_folders)
    rows: list[dict] = []
    summary = train_distributed(config, tmp_path / "straight", workers=2, on_epoch=rows.append)
    assert [row["epoch"] for row in rows] == [1, 2] and summary["best"]["epoch"] in (1, 2)
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert set(straight) == CHECKPOINT_KEYS and not any(k.startswith("module.") for k in straight["model"])
    for name in ("config.json", "best.pt", "metrics.jsonl", "summary.json"):
        assert (tmp_path / "straight" / name).exists()

    resumed_rows: list[dict] = []
    with pytest.raises(StopRequested):  # one epoch in this slot, then the run is resumed
        train_distributed(
            config, tmp_path / "resumed", workers=2, on_epoch=resumed_rows.append, epochs_this_run=1
        )
    assert not (tmp_path / "resumed" / "summary.json").exists()
    train_distributed(config, tmp_path / "resumed", workers=2, on_epoch=resumed_rows.append)
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)

    assert comparable(resumed_rows) == comparable(rows)
    assert comparable(resumed["history"]) == comparable(straight["history"])
    assert_same_tensors(resumed["model"], straight["model"])
    assert_same_tensors(resumed["ema"], straight["ema"])
    for a, b in zip(
        resumed["optimizer"]["state"].values(), straight["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
