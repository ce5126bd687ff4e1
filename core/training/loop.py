"""One training loop for both schemes: `baseline` and cluster-`masked` (arXiv 2411.00824).

Laid out like torchvision's reference scripts: `load_data`, `train_one_epoch`, `evaluate`,
and the loop, `train`. A run owns a folder: config.json, checkpoint.pt (last epoch, written
atomically), best.pt (weights of the best epoch on validation) and metrics.jsonl (one row
per epoch). Calling train() again on the same folder resumes from checkpoint.pt.

The checkpoint is the record of what is done: it holds every finished epoch's metrics row.
metrics.jsonl gets an epoch's row only after on_epoch has received it, so a crash between
the two leaves the row missing, and resuming hands it to on_epoch again and writes it then.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from core.data.corruptions import RandomCorruption
from core.data.datasets import FaceDataset, check_held_out, load_dataset
from core.evaluation.metrics import classification_metrics, predict_dataset
from core.labels import NUM_CLASSES
from core.models.architectures import create_model
from core.models.preprocess import DEFAULT_PREPROCESSING, to_tensor
from core.training.config import TrainConfig

CLUSTER_CHUNK = 2000  # faces per attention-and-k-means chunk: should_stop is polled between chunks


EpochCallback = Callable[[dict[str, Any]], None]
# What torch.optim.swa_utils.AveragedModel hands its multi_avg_fn.
TensorList = tuple[torch.Tensor, ...] | list[torch.Tensor]


class StopRequested(Exception):
    """Raised inside the loop when should_stop() says so; the last checkpoint stays."""


def build_augmentation(input_size: int, corrupt_probability: float = 0.0) -> v2.Compose:
    """Flip, shift/scale/rotate, brightness/contrast, random crop and erasing, on uint8 (1,48,48).

    corrupt_probability > 0 first damages that share of faces like real photos (core.data.corruptions).
    """
    return v2.Compose(
        [
            RandomCorruption(corrupt_probability),
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
            v2.ColorJitter(brightness=0.3, contrast=0.3),
            v2.RandomCrop(input_size),
            v2.RandomErasing(p=0.25, scale=(0.02, 0.12), value=0),
        ]
    )


class MaskedFaces(Dataset):
    """Training faces, optionally with one k-means cluster blacked out.

    cluster_maps: (N, 48, 48) per image, or (48, 48) shared by the whole dataset, holding
    the cluster id of every pixel. `random` replaces a sample, with probability p, by a
    copy with one random cluster removed; `expand` serves the original plus one copy per
    cluster, as the paper does.
    """

    def __init__(
        self,
        faces: FaceDataset,
        augment: v2.Compose | None,
        preprocessing: dict,
        cluster_maps: np.ndarray | None = None,
        clusters: int = 3,
        mode: str = "random",
        probability: float = 0.5,
    ) -> None:
        self.images = torch.from_numpy(faces.images)
        self.labels = torch.from_numpy(faces.labels)
        self.augment = augment
        self.preprocessing = preprocessing
        self.maps = None if cluster_maps is None else torch.from_numpy(cluster_maps)
        self.clusters = clusters
        self.copies = clusters + 1 if (self.maps is not None and mode == "expand") else 1
        self.mode = mode
        self.probability = probability

    def __len__(self) -> int:
        return len(self.labels) * self.copies

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source, variant = divmod(index, self.copies)
        image = self.images[source]
        if self.maps is not None:
            removed = -1
            if self.mode == "expand":
                removed = variant - 1
            elif random.random() < self.probability:
                removed = random.randrange(self.clusters)
            if removed >= 0:
                cluster_map = self.maps if self.maps.ndim == 2 else self.maps[source]
                image = image.masked_fill(cluster_map == removed, 0)
        image = image[None]
        if self.augment is not None:
            image = self.augment(image)
        return to_tensor(image, self.preprocessing)[0], self.labels[source]


def load_data(
    config: TrainConfig, train_data: FaceDataset | None = None, val_data: FaceDataset | None = None
) -> tuple[FaceDataset, FaceDataset]:
    """The training and validation faces (given ones, or read from config.data), with `limit` applied.

    DatasetError when the validation faces read would be the training faces themselves.
    """
    if train_data is None and val_data is None:
        check_held_out(config.data, config.train_split, config.val_data or config.data, config.val_split)
    train_faces = train_data if train_data is not None else load_dataset(config.data, config.train_split)
    val_faces = (
        val_data if val_data is not None else load_dataset(config.val_data or config.data, config.val_split)
    )
    if config.limit:
        order = np.random.default_rng(config.seed).permutation(len(train_faces))[: config.limit]
        train_faces = train_faces.subset(np.sort(order))
    return train_faces, val_faces


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    device: torch.device,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
    step_scheduler: Any = None,
    should_stop: Callable[[], bool] | None = None,
    description: str = "",
) -> tuple[float, int]:
    """One pass over `loader`; returns the mean training loss and the number of images seen.

    step_scheduler (a per-step schedule) steps after every batch; should_stop is polled after
    every batch and raises StopRequested.
    """
    model.train()
    total_loss, seen = 0.0, 0
    bar = tqdm(loader, desc=description, leave=False, disable=None)
    for inputs, targets in bar:
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        loss = criterion(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if step_scheduler is not None:
            step_scheduler.step()
        total_loss += loss.item() * len(targets)
        seen += len(targets)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        if should_stop is not None and should_stop():
            raise StopRequested(f"stopped during {description or 'an epoch'}")
    return total_loss / max(seen, 1), seen


def evaluate(model: nn.Module, faces: FaceDataset, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """Loss, accuracy, macro-F1 and per-class figures of `model` on `faces`."""
    return classification_metrics(faces.labels, predict_dataset(model, faces, preprocessing))


def train(
    config: TrainConfig,
    run_dir: str | Path,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    train_data: FaceDataset | None = None,
    val_data: FaceDataset | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in `run_dir`; returns the summary of the best epoch.

    on_epoch receives each epoch's metrics row (on resume, first any finished epoch's row that
    metrics.jsonl lacks); should_stop is polled after every batch and ends the run (raising
    StopRequested) with the last epoch's checkpoint kept.
    """
    run_dir = Path(run_dir)
    device = resolve_device(config.device)  # before any data is read: a missing GPU fails at once
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    _write_json(run_dir / "config.json", asdict(config))
    train_faces, val_faces = load_data(config, train_data, val_data)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    preprocessing = {**DEFAULT_PREPROCESSING, "input_size": config.input_size}
    # Two calls: torch's type stubs have no Module.to overload taking device and memory_format together.
    model = (
        create_model(config.architecture, **config.arch_args).to(device).to(memory_format=torch.channels_last)
    )
    if config.init_weights:
        _load_initial_weights(model, config.init_weights, device)
    cluster_maps = (
        _cluster_maps(config, train_faces, run_dir, device, should_stop)
        if config.scheme == "masked"
        else None
    )
    dataset = MaskedFaces(
        train_faces,
        build_augmentation(config.input_size, config.corrupt_probability) if config.augment else None,
        preprocessing,
        cluster_maps,
        config.clusters,
        config.mask_mode,
        config.mask_probability,
    )
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(dataset) > config.batch_size,
        generator=generator,
        # Workers start afresh each epoch, seeded from `generator`: that keeps resume exact.
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )

    weights = _class_weights(train_faces) if config.class_weights else None
    criterion = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(device), label_smoothing=config.label_smoothing
    )
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer, len(loader))
    ema = _ema(model, config.ema_decay)
    trained = _Trained(model, optimizer, scheduler, ema, generator)

    checkpoint_path = run_dir / "checkpoint.pt"
    start_epoch, best = 0, None
    history: list[dict[str, Any]] = []
    if checkpoint_path.exists():
        start_epoch, history, best = _load_checkpoint(checkpoint_path, trained, device)
    _catch_up_metrics(run_dir / "metrics.jsonl", history, on_epoch)

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        train_loss, seen = train_one_epoch(
            model,
            criterion,
            optimizer,
            loader,
            device,
            ema,
            scheduler if config.schedule == "cosine" else None,
            should_stop,
            f"epoch {epoch + 1}/{config.epochs}",
        )
        train_seconds = time.perf_counter() - started
        evaluated = ema.module if ema is not None else model
        metrics = evaluate(evaluated, val_faces, preprocessing)
        if config.schedule == "plateau":
            scheduler.step(metrics["accuracy"])
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": metrics["loss"],
            "val_accuracy": metrics["accuracy"],
            "val_macro_f1": metrics["macro_f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "images_per_second": seen / train_seconds,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if best is None or row["val_accuracy"] > best["val_accuracy"]:
            best = {**row, "per_class": metrics["per_class"]}
            _atomic_save(
                {k: v.detach().cpu() for k, v in evaluated.state_dict().items()}, run_dir / "best.pt"
            )
        _save_checkpoint(checkpoint_path, trained, epoch + 1, history, best, config)
        if on_epoch is not None:
            on_epoch(row)
        _append_metrics(run_dir / "metrics.jsonl", row)
    summary = {
        "best": best,
        "history": history,
        "epochs": config.epochs,
        "train_seconds": sum(r["seconds"] for r in history),
        "hardware": hardware_description(),
        "preprocessing": preprocessing,
        "train_images": len(train_faces),
        "val_images": len(val_faces),
    }
    _write_json(run_dir / "summary.json", summary)
    return summary


def _load_initial_weights(model: nn.Module, name: str, device: torch.device) -> None:
    """Start from a trained model's weights (registered name or .pt path) to fine-tune it; resuming a
    run then loads its checkpoint over them. ValueError when the architectures differ."""
    from core.models.registry import find_model, read_weights

    path = find_model(name)
    weights = {key: value.to(device) for key, value in read_weights(path, path.stem).items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ValueError(f"init weights {name}: not this architecture's weights ({first})") from None


@dataclass
class _Trained:
    """What a checkpoint saves and restores besides the metrics."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: torch.optim.swa_utils.AveragedModel | None
    generator: torch.Generator


def _save_checkpoint(
    path: Path,
    trained: _Trained,
    epoch: int,
    history: list[dict[str, Any]],
    best: dict[str, Any] | None,
    config: TrainConfig,
) -> None:
    _atomic_save(
        {
            "model": trained.model.state_dict(),
            "optimizer": trained.optimizer.state_dict(),
            "scheduler": trained.scheduler.state_dict(),
            "ema": trained.ema.state_dict() if trained.ema is not None else None,
            "generator": trained.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": _python_rng_plain(random.getstate()),
            "epoch": epoch,
            "history": history,
            "best": best,
            "config": asdict(config),
        },
        path,
    )


def _load_checkpoint(
    path: Path, trained: _Trained, device: torch.device
) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    """Restore weights, optimizer, schedule, average and random states; returns (epoch, history, best)."""
    state = torch.load(path, weights_only=True, map_location=device)
    trained.model.load_state_dict(state["model"])
    trained.optimizer.load_state_dict(state["optimizer"])
    trained.scheduler.load_state_dict(state["scheduler"])
    if trained.ema is not None and state.get("ema") is not None:
        trained.ema.load_state_dict(state["ema"])
    trained.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(_python_rng(state["python_rng"]))
    return state["epoch"], state["history"], state["best"]


def _catch_up_metrics(path: Path, history: list[dict[str, Any]], on_epoch: EpochCallback | None) -> None:
    """Make metrics.jsonl hold exactly the checkpoint's rows.

    A row the file lacks (the run died after the checkpoint, before the row was written) goes
    to on_epoch first, so a job table filled from on_epoch catches up too; rows past the
    checkpoint and a torn last line are dropped.
    """
    expected = "".join(json.dumps(row) + "\n" for row in history)
    current = path.read_text() if path.exists() else None
    if current == expected or (current is None and not history):
        return
    delivered = {row.get("epoch") for row in _parsed_rows(current or "")}
    for row in history:
        if row["epoch"] not in delivered and on_epoch is not None:
            on_epoch(row)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(expected)
    os.replace(temporary, path)


def _parsed_rows(text: str) -> list[dict[str, Any]]:
    """The metrics rows of metrics.jsonl that parse (a kill during a write can tear the last line)."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU when there is one, else the CPU; `cpu`, `cuda`, `cuda:1` … as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no GPU here")
    return device


def hardware_description() -> str:
    """A short description of the machine a run used, for model cards."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, {platform.machine()}"
    return f"CPU, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"


def _cluster_maps(
    config: TrainConfig,
    faces: FaceDataset,
    run_dir: Path,
    device: torch.device,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Per-image or dataset-level cluster maps from the baseline's attention, cached in the run.

    Per image this is core.explain.regions.dataset_regions (Grad-CAM, then one k-means per face, about
    30 ms each on one core, spread over the cores) in chunks, with a progress bar and
    should_stop polled between chunks.
    """
    from core.explain.clusters import cluster_attention, dataset_attention
    from core.explain.regions import dataset_regions
    from core.explain.saliency import attention_maps
    from core.models.loading import load_model

    cache = run_dir / "clusters.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return stored["maps"]
    if config.attention_model is None:  # check_settings rejects this before training starts
        raise ValueError("the masked scheme needs attention_model: a trained baseline")
    baseline = load_model(config.attention_model)
    baseline.module.to(device)  # Grad-CAM runs where the model is
    if config.cluster_scope == "dataset":
        attention = attention_maps(baseline, faces.images, faces.labels, method=config.cam_method)
        maps = cluster_attention(dataset_attention(attention), config.clusters, seed=config.seed)
    else:
        chunks = []
        for start in tqdm(range(0, len(faces), CLUSTER_CHUNK), desc="clusters", leave=False, disable=None):
            if should_stop is not None and should_stop():
                raise StopRequested("stopped while computing cluster maps")
            part = slice(start, start + CLUSTER_CHUNK)
            chunks.append(
                dataset_regions(
                    baseline,
                    faces.images[part],
                    faces.labels[part],
                    config.clusters,
                    config.cam_method,
                    config.seed,
                )
            )
        maps = np.concatenate(chunks)
    np.savez_compressed(cache, maps=maps.astype(np.uint8))
    return maps.astype(np.uint8)


def _class_weights(faces: FaceDataset) -> torch.Tensor:
    counts = np.bincount(faces.labels, minlength=NUM_CLASSES).astype(np.float64)
    counts[counts == 0] = 1.0
    weights = counts.sum() / (NUM_CLASSES * counts)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = max(int(config.warmup_epochs * steps_per_epoch), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """Exponential moving average of the weights, its decay warmed up as in timm.

    Without the warm-up, a 0.999 average still holds most of the random start after a few
    hundred steps, and the first epochs' validation says nothing. The update works on all
    tensors at once: a per-tensor function would read the step count from the GPU once per
    tensor, stalling the GPU dozens of times a step.
    """
    if not decay:
        return None

    @torch.no_grad()
    def average(averaged: TensorList, current: TensorList, steps: torch.Tensor | int) -> None:
        rate = min(decay, (1.0 + float(steps)) / (10.0 + float(steps)))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - rate)
        else:  # BatchNorm's integer batch counters
            for kept, new in zip(averaged, current, strict=True):
                kept.copy_(kept * rate + new * (1.0 - rate))

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=average, use_buffers=True)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _python_rng_plain(state: tuple) -> list:
    """random.getstate() as lists of ints, which torch.load(weights_only=True) accepts."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_rng(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file renamed over `path`: a failed write leaves the old file.

    A full disk (OSError, or the RuntimeError torch's zip writer raises for it, followed by
    another from closing the half-written file) becomes one OSError that names the file, and
    the temporary file is removed.
    """
    temporary = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as err:
        temporary.unlink(missing_ok=True)
        code = err.errno if isinstance(err, OSError) and err.errno else errno.EIO
        reason = os.strerror(code) if isinstance(err, OSError) else str(err).splitlines()[0][:200]
        raise OSError(
            code,
            f"could not write {path} ({reason}); is the disk full? The run stops; free space and resume it",
        ) from None


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)
