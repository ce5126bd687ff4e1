"""Data-parallel training on Ray: Ray Train's TorchTrainer, DDP (gloo on CPU, nccl on GPUs).

The run folder is core.training.loop's: config.json, checkpoint.pt (same keys; the weights without
DDP's "module." prefix), best.pt, metrics.jsonl and summary.json, written by rank 0 into a folder
every worker reaches (a shared filesystem on a cluster). Each rank reads its share of the faces
(DistributedSampler) in batches of batch_size / workers, so the global batch is the local one.

Resume is exact: every rank reseeds its random generators at the start of each epoch from (seed,
epoch, rank) and the sampler shuffles by (seed, epoch), so a run resumed from checkpoint.pt
computes what an uninterrupted run computes. A stop request (should_stop, polled by the driver)
becomes a file in the run folder that the ranks agree on after every batch.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.jobs.ray_runner import worker_env
from core.training.config import TrainConfig
from core.training.loop import EpochCallback, StopRequested

STOP_FILE = "stop-requested"
POLL_SECONDS = 0.5


def train_distributed(
    config: TrainConfig,
    run_dir: str | Path,
    workers: int = 2,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    cpus_per_worker: int = 1,
    epochs_this_run: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) `run_dir` on `workers` Ray workers; returns summary.json's content.

    on_epoch receives each new metrics row in this thread; should_stop is polled here and ends the
    run after the ranks' current batch (StopRequested), the last epoch's checkpoint kept.
    epochs_this_run stops after that many epochs (StopRequested too): a preemptible slot's share.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (run_dir / STOP_FILE, run_dir / "summary.json"):
        stale.unlink(missing_ok=True)
    loop_config = {
        "config": asdict(config),
        "run_dir": str(run_dir),
        "env": worker_env(),
        "threads": config.threads or cpus_per_worker,
        "epochs_this_run": epochs_this_run,
    }
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=config.device.startswith("cuda"),
            resources_per_worker={"CPU": cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if config.device.startswith("cuda") else "gloo"),
        run_config=RunConfig(
            name=f"train-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(run_dir / "ray")
        ),
    )
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    watcher = MetricsWatcher(run_dir / "metrics.jsonl", on_epoch)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        watcher.deliver()
        if should_stop is not None and should_stop():
            (run_dir / STOP_FILE).touch()
    watcher.deliver()
    if "error" in outcome:
        raise outcome["error"]
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        raise StopRequested("stopped on Ray after the ranks' current batch")
    return json.loads(summary_path.read_text())


class MetricsWatcher:
    """Hands each metrics row that appears in metrics.jsonl (after the start) to on_epoch, once."""

    def __init__(self, path: Path, on_epoch: EpochCallback | None) -> None:
        self.path = path
        self.on_epoch = on_epoch
        self.delivered = {row["epoch"] for row in self._rows()}

    def deliver(self) -> None:
        for row in self._rows():
            if row["epoch"] not in self.delivered:
                self.delivered.add(row["epoch"])
                if self.on_epoch is not None:
                    self.on_epoch(row)

    def _rows(self) -> list[dict[str, Any]]:
        from core.training.loop import _parsed_rows

        if not self.path.exists():
            return []
        text = self.path.read_text()
        return _parsed_rows(text[: text.rfind("\n") + 1])


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one rank's random generators in one epoch."""
    return (seed * 1_000_003 + epoch * 9_973 + rank * 31) % 2**31


def train_loop(loop_config: dict[str, Any]) -> None:
    """What each Ray worker runs: core.training's loop with DDP, a sampler per rank, rank 0 writing."""
    import os

    import numpy as np
    import ray.train
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    os.environ.update(loop_config["env"])
    from core.models.architectures import create_model
    from core.models.preprocess import DEFAULT_PREPROCESSING
    from core.training import loop as local

    config = TrainConfig.from_dict(loop_config["config"])
    run_dir = Path(loop_config["run_dir"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(int(loop_config["threads"]))
    device = (
        torch.device("cuda", context.get_local_rank())
        if config.device.startswith("cuda")
        else torch.device("cpu")
    )
    local._seed_everything(config.seed)
    if rank == 0:
        local._write_json(run_dir / "config.json", asdict(config))
    train_faces, val_faces = local.load_data(config)
    preprocessing = {**DEFAULT_PREPROCESSING, "input_size": config.input_size}
    module = create_model(config.architecture, **config.arch_args).to(device)
    if config.init_weights:
        local._load_initial_weights(module, config.init_weights, device)
    cluster_maps = None
    if config.scheme == "masked":
        if rank == 0:
            local._cluster_maps(config, train_faces, run_dir, device)
        dist.barrier()
        cluster_maps = local._cluster_maps(config, train_faces, run_dir, device)  # rank 0's cache
    dataset = local.MaskedFaces(
        train_faces,
        local.build_augmentation(config.input_size, config.corrupt_probability) if config.augment else None,
        preprocessing,
        cluster_maps,
        config.clusters,
        config.mask_mode,
        config.mask_probability,
    )
    sampler: DistributedSampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed
    )
    per_rank = max(1, config.batch_size // world)
    loader = DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=len(sampler) > per_rank,
        num_workers=config.workers,
    )
    weights = local._class_weights(train_faces) if config.class_weights else None
    criterion = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(device), label_smoothing=config.label_smoothing
    )
    optimizer = local._optimizer(config, module)
    scheduler = local._scheduler(config, optimizer, len(loader))
    ema = local._ema(module, config.ema_decay)
    trained = local._Trained(module, optimizer, scheduler, ema, torch.Generator().manual_seed(config.seed))
    checkpoint_path = run_dir / "checkpoint.pt"
    start_epoch, best = 0, None
    history: list[dict[str, Any]] = []
    if checkpoint_path.exists():
        start_epoch, history, best = local._load_checkpoint(checkpoint_path, trained, device)
    if rank == 0:
        local._catch_up_metrics(run_dir / "metrics.jsonl", history, None)
    model = DistributedDataParallel(module)
    stop = _StopFlag(run_dir / STOP_FILE, device)
    last = config.epochs
    if loop_config.get("epochs_this_run"):
        last = min(config.epochs, start_epoch + int(loop_config["epochs_this_run"]))

    try:
        for epoch in range(start_epoch, last):
            seed = epoch_seed(config.seed, epoch, rank)
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            sampler.set_epoch(epoch)
            started = time.perf_counter()
            train_loss, seen = local.train_one_epoch(
                model,
                criterion,
                optimizer,
                loader,
                device,
                ema,
                scheduler if config.schedule == "cosine" else None,
                stop,
                f"epoch {epoch + 1}/{config.epochs} rank {rank}",
            )
            train_seconds = time.perf_counter() - started
            totals = torch.tensor([train_loss * seen, float(seen)], dtype=torch.float64, device=device)
            dist.all_reduce(totals)
            evaluated = ema.module if ema is not None else module
            metrics = local.evaluate(
                evaluated, val_faces, preprocessing
            )  # every rank: the plateau schedule needs it
            if config.schedule == "plateau":
                scheduler.step(metrics["accuracy"])
            row = {
                "epoch": epoch + 1,
                "train_loss": float(totals[0]) / max(float(totals[1]), 1.0),
                "val_loss": metrics["loss"],
                "val_accuracy": metrics["accuracy"],
                "val_macro_f1": metrics["macro_f1"],
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_second": float(totals[1]) / train_seconds,
                "seconds": time.perf_counter() - started,
            }
            history.append(row)
            if best is None or row["val_accuracy"] > best["val_accuracy"]:
                best = {**row, "per_class": metrics["per_class"]}
                if rank == 0:
                    local._atomic_save(
                        {k: v.detach().cpu() for k, v in evaluated.state_dict().items()}, run_dir / "best.pt"
                    )
            if rank == 0:
                local._save_checkpoint(checkpoint_path, trained, epoch + 1, history, best, config)
                local._append_metrics(run_dir / "metrics.jsonl", row)
            dist.barrier()  # no rank starts the next epoch (or leaves) before the checkpoint is written
            ray.train.report({key: value for key, value in row.items() if isinstance(value, float | int)})

    except local.StopRequested:
        return  # every rank saw the stop after the same batch; the last checkpoint stays

    if rank == 0 and last == config.epochs:
        summary = {
            "best": best,
            "history": history,
            "epochs": config.epochs,
            "train_seconds": sum(r["seconds"] for r in history),
            "hardware": f"Ray Train, {world} workers: {local.hardware_description()}",
            "preprocessing": preprocessing,
            "train_images": len(train_faces),
            "val_images": len(val_faces),
        }
        local._write_json(run_dir / "summary.json", summary)


class _StopFlag:
    """should_stop for every rank: rank 0 sees the stop file, all ranks agree (one all_reduce a batch)."""

    def __init__(self, path: Path, device: Any) -> None:
        self.path = path
        self.device = device

    def __call__(self) -> bool:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.path.exists() else 0.0], device=self.device)  # NCCL: on the GPU
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)
