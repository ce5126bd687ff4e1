"""Run one job inside the worker: claim it, train (or resume), register the model, record the end.

The trainer owns the run folder (checkpoint.pt, metrics.jsonl, ...); this module only
mirrors each epoch's metrics into the job database and writes the job's log.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from core.jobs.settings import check_data_path
from core.jobs.store import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED, Job, JobStore
from core.training.config import FLAG_FOR_FIELD as TRAIN_FLAGS


class StopCheck:
    """should_stop for the trainer: the worker is stopping, or the user cancelled (read twice a second)."""

    def __init__(self, store: JobStore, job_id: int, worker_stopping: Callable[[], bool]) -> None:
        self.store = store
        self.job_id = job_id
        self.worker_stopping = worker_stopping
        self.interval = 0.5
        self.cancelled = False
        self._checked = 0.0

    def __call__(self) -> bool:
        if self.worker_stopping():
            return True
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self.cancelled = self.store.cancel_requested(self.job_id)
        return self.cancelled


def _never() -> bool:
    return False


def run_job(
    job_id: int,
    should_stop: Callable[[], bool] = _never,
    store: JobStore | None = None,
    train_fn: Callable[..., dict[str, Any]] | None = None,
) -> str:
    """Run a queued job to its end; returns its final status ('skipped' if it was not queued).

    train_fn trains in place of core.training.loop.train, with its arguments (config, run_dir, on_epoch=,
    should_stop=): core.scale.ray_train.train_distributed on Ray (issue 23).
    """
    store = store or JobStore()
    if not store.claim(job_id, os.getpid()):
        return "skipped"
    job = store.get(job_id)
    log = job_logger(job)
    stop = StopCheck(store, job_id, should_stop)
    try:
        status, error = _train_and_register(job, store, log, stop, train_fn)
    except Exception as err:  # a failed job keeps its error and log, whatever went wrong
        log.exception("job failed")
        status, error = FAILED, f"{type(err).__name__}: {err}"
    store.finish(job_id, status, error=error, model=job.name if status == SUCCEEDED else None)
    log.info("job %s", status + (f": {error}" if error else ""))
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)
    return status


def _train_and_register(
    job: Job,
    store: JobStore,
    log: logging.Logger,
    stop: StopCheck,
    train_fn: Callable[..., dict[str, Any]] | None = None,
) -> tuple[str, str | None]:
    from core.training.config import TrainConfig
    from core.training.loop import StopRequested, train
    from core.training.register import register_run

    config = TrainConfig.from_dict(job.params)
    check_data_path(config.data)
    if config.val_data:
        check_data_path(config.val_data)
    checkpoint = job.run_dir / "checkpoint.pt"
    if checkpoint.exists():
        log.info("resuming from the checkpoint of epoch %d", _checkpoint_epoch(checkpoint))
    else:
        log.info("starting job %d (%s): %s", job.id, job.name, json.dumps(job.params))

    def on_epoch(row: dict[str, Any]) -> None:
        store.add_epoch(job.id, row)
        log.info(
            "epoch %d/%d  loss %.4f  val loss %.4f  val acc %.4f  macro-F1 %.4f  %.0f img/s",
            row["epoch"],
            config.epochs,
            row["train_loss"],
            row["val_loss"],
            row["val_accuracy"],
            row["val_macro_f1"],
            row["images_per_second"],
        )

    try:
        summary = (train_fn or train)(config, job.run_dir, on_epoch=on_epoch, should_stop=stop)
    except StopRequested as stopped:
        log.info("%s; the last epoch's checkpoint is kept", stopped)
        if stop.cancelled:
            return CANCELLED, "cancelled by the user"
        return INTERRUPTED, "the worker was stopped; resume the job to continue"
    log.info("best val accuracy %.4f at epoch %d", summary["best"]["val_accuracy"], summary["best"]["epoch"])
    path = register_run(job.run_dir, job.name, command=train_command(job.params, job.run_dir, job.name))
    log.info("registered model %s: %s", job.name, path)
    return SUCCEEDED, None


def train_command(params: dict[str, Any], run_dir: Path, name: str) -> str:
    """The `python -m core train` command that reproduces a job (non-default values only)."""
    from core.training.config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    words = ["python", "-m", "core", "train"]
    for key, flag in TRAIN_FLAGS.items():
        value = params.get(key)
        if key == "data" or (key in params and value != defaults.get(key) and key != "arch_args"):
            words += [flag, str(value)]
        elif key == "arch_args" and value:
            words += [flag, json.dumps(value)]
    if params.get("class_weights"):
        words.append("--class-weights")
    if params.get("augment") is False:
        words.append("--no-augment")
    words += ["--run-dir", str(run_dir), "--save-as", name]
    return shlex.join(words)


def job_logger(job: Job) -> logging.Logger:
    """A logger that appends to the job's job.log (and nowhere else)."""
    log = logging.getLogger(f"fer_studio.job.{job.id}")
    for old in list(log.handlers):
        log.removeHandler(old)
    log.setLevel(logging.INFO)
    log.propagate = False
    job.folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(job.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return log


def _checkpoint_epoch(path: Path) -> int:
    import torch

    return int(torch.load(path, weights_only=True, map_location="cpu")["epoch"])
