"""A tiny model on generated faces: loss goes down in both schemes, runs resume, stop keeps state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.datasets import FaceDataset
from core.models.loading import load_model
from core.training.config import TrainConfig
from core.training.loop import StopRequested, resolve_device, train
from tests.helpers import synthetic_faces

TINY = {
    "architecture": "vgg",
    "arch_args": {"widths": [8, 16]},
    "batch_size": 10,
    "lr": 0.05,
    "ema_decay": 0.0,
    "augment": False,
    "input_size": 48,
    "warmup_epochs": 0.2,
}


@pytest.fixture(scope="module")
def tiny_data() -> tuple[FaceDataset, FaceDataset]:
    images, labels = synthetic_faces(10, seed=0)
    val_images, val_labels = synthetic_faces(3, seed=1)
    return (
        FaceDataset(images, labels, [str(i) for i in range(len(labels))]),
        FaceDataset(val_images, val_labels, [str(i) for i in range(len(val_labels))]),
    )


def stop_after(batches: int):
    """A should_stop that asks to stop once `batches` batches have run (7 batches make an epoch)."""
    seen = {"n": 0}

    def should_stop() -> bool:
        seen["n"] += 1
        return seen["n"] > batches

    return should_stop


def run(tmp: Path, data, epochs: int = 3, **overrides) -> dict:
    config = TrainConfig(data="generated", epochs=epochs, **{**TINY, **overrides})
    return train(config, tmp, train_data=data[0], val_data=data[1])


def test_baseline_loss_goes_down_and_run_resumes(tmp_path: Path, tiny_data) -> None:
    rows: list[dict] = []
    config = TrainConfig(data="generated", epochs=2, **TINY)
    train(config, tmp_path, on_epoch=rows.append, train_data=tiny_data[0], val_data=tiny_data[1])
    assert [r["epoch"] for r in rows] == [1, 2]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2

    more = TrainConfig(data="generated", epochs=5, **TINY)
    summary = train(more, tmp_path, on_epoch=rows.append, train_data=tiny_data[0], val_data=tiny_data[1])
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]  # resumed at 3, not from scratch
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert summary["best"]["val_accuracy"] > 1 / 7
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[-1])["epoch"] == 5
    assert (tmp_path / "best.pt").exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("workers", [0, 1])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, tiny_data, workers: int) -> None:
    """Exact resume, also when worker processes load and augment the batches (a GPU run's set-up)."""
    whole = run(tmp_path / "whole", tiny_data, epochs=2, augment=True, workers=workers)
    config = TrainConfig(data="generated", epochs=2, **{**TINY, "augment": True, "workers": workers})
    with pytest.raises(StopRequested):
        train(
            config,
            tmp_path / "split",
            should_stop=stop_after(8),
            train_data=tiny_data[0],
            val_data=tiny_data[1],
        )
    resumed = run(tmp_path / "split", tiny_data, epochs=2, augment=True, workers=workers)
    assert resumed["history"][-1]["train_loss"] == pytest.approx(whole["history"][-1]["train_loss"], rel=1e-4)


def test_device_choice() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="workers"):
        TrainConfig(data="x", workers=-1)


def test_stop_request_keeps_last_checkpoint(tmp_path: Path, tiny_data) -> None:
    run(tmp_path, tiny_data, epochs=1)
    with pytest.raises(StopRequested):
        train(
            TrainConfig(data="generated", epochs=3, **TINY),
            tmp_path,
            should_stop=stop_after(1),
            train_data=tiny_data[0],
            val_data=tiny_data[1],
        )
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1


@pytest.fixture(scope="module")
def trained_baseline(tmp_path_factory, tiny_data) -> str:
    """A tiny baseline registered by path, the attention model of the masked scheme."""
    from core.models.registry import save_model
    from core.training.register import card_from_run

    run_dir = tmp_path_factory.mktemp("baseline")
    run(run_dir, tiny_data, epochs=3)
    weights = torch.load(run_dir / "best.pt", weights_only=True)
    return str(save_model(weights, card_from_run(run_dir), "tiny_baseline", run_dir / "models"))


@pytest.mark.parametrize(("mode", "scope"), [("random", "image"), ("expand", "image"), ("random", "dataset")])
def test_masked_scheme_trains_and_lowers_loss(
    tmp_path: Path, tiny_data, trained_baseline: str, mode: str, scope: str
) -> None:
    summary = run(
        tmp_path,
        tiny_data,
        epochs=3,
        scheme="masked",
        mask_mode=mode,
        cluster_scope=scope,
        attention_model=trained_baseline,
        mask_probability=0.7,
    )
    losses = [r["train_loss"] for r in summary["history"]]
    assert losses[-1] < losses[0]
    with np.load(tmp_path / "clusters.npz") as stored:
        maps = stored["maps"]
    assert maps.shape == ((48, 48) if scope == "dataset" else (70, 48, 48))
    assert set(np.unique(maps)) == {0, 1, 2}
    if mode == "expand":
        assert summary["train_images"] == 70  # the faces; each epoch serves them 4 times
        assert summary["history"][0]["images_per_second"] > 0


def test_masked_dataset_serves_copies_with_one_cluster_removed(tiny_data) -> None:
    from core.training.loop import MaskedFaces

    faces = tiny_data[0].subset(np.arange(2))
    maps = np.zeros((48, 48), np.uint8)
    maps[24:] = 1
    faces.images[:] = 200
    expanded = MaskedFaces(faces, None, {"input_size": 48}, maps, clusters=2, mode="expand")
    assert len(expanded) == 6
    original, top_removed, bottom_removed = (expanded[i][0][0] for i in range(3))
    assert (original > 0).all()
    assert (top_removed[:24] < -0.9).all() and (top_removed[24:] > 0).all()
    assert (bottom_removed[24:] < -0.9).all() and (bottom_removed[:24] > 0).all()


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="needs attention_model"):
        TrainConfig(data="x", scheme="masked")
    with pytest.raises(ValueError, match="scheme must be"):
        TrainConfig(data="x", scheme="fancy")


def test_trained_model_registers_and_loads(tmp_path: Path, tiny_data, trained_baseline: str) -> None:
    model = load_model(trained_baseline)
    assert model.card["scheme"] == "baseline" and model.card["training"]["epochs"] == 3
    assert not model.module.training


def test_weight_average_tracks_training_from_the_first_epochs(tmp_path: Path, tiny_data) -> None:
    raw = run(tmp_path / "raw", tiny_data, epochs=4)
    averaged = run(tmp_path / "ema", tiny_data, epochs=4, ema_decay=0.999)
    # A plain 0.999 average would still be mostly the random start after 28 steps.
    assert averaged["best"]["val_accuracy"] >= raw["best"]["val_accuracy"] - 0.1
    assert averaged["best"]["val_accuracy"] > 0.2  # chance is 1/7


def test_card_of_an_unfinished_run_says_how_far_it_got(tmp_path: Path, tiny_data) -> None:
    from core.training.register import card_from_run

    with pytest.raises(StopRequested):
        train(
            TrainConfig(data="generated", epochs=3, **TINY),
            tmp_path,
            should_stop=stop_after(8),
            train_data=tiny_data[0],
            val_data=tiny_data[1],
        )
    card = card_from_run(tmp_path, command="python -m core train ...")
    assert card["training"]["epochs"] == 3 and card["epochs_completed"] == 1
    assert card["best_epoch"] == 1 and len(card["history"]) == 1
    assert card["history"][0]["seconds"] > 0 and card["train_seconds"] == round(
        card["history"][0]["seconds"], 1
    )


def test_stop_while_computing_cluster_maps(tmp_path: Path, tiny_data, trained_baseline: str) -> None:
    config = TrainConfig(
        data="generated", epochs=1, scheme="masked", attention_model=trained_baseline, **TINY
    )
    with pytest.raises(StopRequested, match="cluster maps"):
        train(config, tmp_path, should_stop=lambda: True, train_data=tiny_data[0], val_data=tiny_data[1])
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "clusters.npz").exists()


class Killed(BaseException):
    """Stands for kill -9: nothing in the trainer catches it, so nothing after it runs."""


def kill_at_epoch_two(where: str, store, job_id: int, monkeypatch: pytest.MonkeyPatch):
    """on_epoch filling the job table as the worker does, and a kill at `where` during epoch 2."""
    import builtins

    import core.training.loop

    def on_epoch(row: dict) -> None:
        if where == "job table" and row["epoch"] == 2 and not killed["done"]:
            killed["done"] = True
            raise Killed
        store.add_epoch(job_id, row)

    def open_dying_at_the_second_row(path, mode="r", *args, **kwargs):
        if str(path).endswith("metrics.jsonl") and "a" in mode:
            appends["n"] += 1
            if appends["n"] == 2:
                raise Killed
        return builtins.open(path, mode, *args, **kwargs)

    killed, appends = {"done": False}, {"n": 0}
    if where == "metrics row":
        monkeypatch.setattr(core.training.loop, "open", open_dying_at_the_second_row, raising=False)
    return on_epoch


@pytest.mark.parametrize("where", ["metrics row", "job table"])
def test_kill_after_the_checkpoint_leaves_no_epoch_missing(
    tmp_path: Path, tiny_data, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after epoch 2's checkpoint, before its row reached metrics.jsonl or the job table."""
    import core.training.loop
    from core.jobs.store import JobStore

    store = JobStore()
    job = store.create("crashing", {"architecture": "vgg", "scheme": "baseline", "epochs": 3})
    on_epoch = kill_at_epoch_two(where, store, job.id, monkeypatch)
    config = TrainConfig(data="generated", epochs=3, **TINY)
    with pytest.raises(Killed):
        train(config, tmp_path, on_epoch=on_epoch, train_data=tiny_data[0], val_data=tiny_data[1])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2
    monkeypatch.delattr(core.training.loop, "open", raising=False)  # the restarted process writes normally

    summary = train(config, tmp_path, on_epoch=on_epoch, train_data=tiny_data[0], val_data=tiny_data[1])
    written = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in written] == [1, 2, 3]
    assert written == summary["history"] == store.epochs(job.id)


def test_a_torn_metrics_line_is_mended_on_resume(tmp_path: Path, tiny_data) -> None:
    """A kill during the write of epoch 2's row leaves half a line; resuming leaves valid rows only."""
    from core.training.register import card_from_run

    run(tmp_path, tiny_data, epochs=2)
    metrics = tmp_path / "metrics.jsonl"
    text = metrics.read_text()
    metrics.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    rows: list[dict] = []
    config = TrainConfig(data="generated", epochs=3, **TINY)
    summary = train(config, tmp_path, on_epoch=rows.append, train_data=tiny_data[0], val_data=tiny_data[1])
    assert [row["epoch"] for row in rows] == [2, 3]  # epoch 2's row is delivered again, then epoch 3
    written = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert written == summary["history"] and card_from_run(tmp_path)["epochs_completed"] == 3


def test_fine_tuning_starts_from_given_weights(tmp_path: Path, tiny_data) -> None:
    """init_weights: the run starts where a trained model ended (a tiny learning rate barely moves it)."""
    run(tmp_path / "first", tiny_data, epochs=2, seed=1)  # another seed: other initial weights
    start = torch.load(tmp_path / "first" / "best.pt", weights_only=True)
    run(tmp_path / "tuned", tiny_data, epochs=1, lr=1e-6, init_weights=str(tmp_path / "first" / "best.pt"))
    tuned = torch.load(tmp_path / "tuned" / "best.pt", weights_only=True)
    run(tmp_path / "fresh", tiny_data, epochs=1, lr=1e-6)
    fresh = torch.load(tmp_path / "fresh" / "best.pt", weights_only=True)
    key = next(k for k, v in start.items() if v.is_floating_point() and v.ndim > 1)
    assert torch.allclose(tuned[key], start[key], atol=1e-4)
    assert not torch.allclose(fresh[key], start[key], atol=1e-2)


def test_robust_augmentation_and_missing_init_weights(tmp_path: Path, tiny_data) -> None:
    summary = run(tmp_path / "robust", tiny_data, epochs=1, augment=True, corrupt_probability=1.0)
    assert summary["history"][0]["train_loss"] > 0
    with pytest.raises(ValueError, match="init weights .*best.pt: not this architecture's weights"):
        run(
            tmp_path / "wider",
            tiny_data,
            epochs=1,
            arch_args={"widths": [8, 32]},
            init_weights=str(tmp_path / "robust" / "best.pt"),
        )
    with pytest.raises(ValueError, match="init weights: no model named .*nothing.pt"):
        TrainConfig(data="generated", init_weights=str(tmp_path / "nothing.pt"))
    with pytest.raises(ValueError, match="corrupt probability must be from 0.0 to 1.0"):
        TrainConfig(data="generated", corrupt_probability=1.5)


@pytest.mark.parametrize(
    "failure",
    [
        OSError(28, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0"),
    ],
    ids=["oserror", "zip-writer"],
)
def test_a_full_disk_stops_the_run_with_one_clear_error_and_no_temporary_file(
    tmp_path: Path, tiny_data, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    import errno

    import core.training.loop

    def full_disk(obj, path, *args, **kwargs) -> None:
        Path(path).write_bytes(b"half a checkpoint")  # what a write cut short leaves behind
        raise failure

    monkeypatch.setattr(core.training.loop.torch, "save", full_disk)
    with pytest.raises(OSError, match="could not write .*best.pt.*is the disk full") as raised:
        run(tmp_path, tiny_data, epochs=1)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, "one error, not two"
    if isinstance(failure, OSError):
        assert raised.value.errno == errno.ENOSPC
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"
    assert not (tmp_path / "best.pt").exists()
