"""The one interface the app and the CLI use to run trainings, and its local implementation.

JobRunner is what a backend provides; LocalRunner runs jobs on this machine (huey on SQLite
plus a detached worker process). A backend on a distributed engine (Ray, huey on Redis)
implements the same methods; see docs/jobs.md.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Protocol

from core.jobs import queue
from core.jobs.settings import JobError, check_data_path, require_training
from core.jobs.store import ACTIVE, CANCELLED, Job, JobStore
from core.jobs.worker import ensure_worker

if TYPE_CHECKING:
    from core.training.config import TrainConfig

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class JobRunner(Protocol):
    """Submit, watch and stop training jobs; every method returns at once."""

    def submit(self, config: TrainConfig, name: str | None = None) -> Job:
        """Queue a training; its model is registered under `name` when it succeeds."""
        ...

    def cancel(self, job_id: int) -> Job:
        """Drop a queued job, or stop a running one after its current batch (checkpoint kept)."""
        ...

    def resume(self, job_id: int) -> Job:
        """Queue a failed, cancelled or interrupted job again; it continues from its checkpoint."""
        ...

    def status(self, job_id: int) -> Job: ...

    def list_jobs(self) -> list[Job]:
        """All jobs, newest first."""
        ...

    def metrics(self, job_id: int) -> list[dict[str, Any]]:
        """Per-epoch metrics rows (train_loss, val_loss, val_accuracy, ...)."""
        ...

    def log(self, job_id: int, lines: int = 200) -> str:
        """The last lines of the job's log."""
        ...


class LocalRunner:
    """Jobs on this machine: rows in JobStore, messages in huey's SQLite queue, one worker process."""

    def __init__(self, store: JobStore | None = None) -> None:
        self.store = store or JobStore()

    def submit(self, config: TrainConfig, name: str | None = None) -> Job:
        require_training()
        config = validate_config(config)
        if name is not None:
            self._check_name(name)
        queue.pending_job_ids(self.store.root)  # a damaged queue refuses the job before its row exists
        job = self.store.create(name, asdict(config))
        return self._enqueue(job)

    def cancel(self, job_id: int) -> Job:
        job = self.store.request_cancel(job_id)
        if job.status == CANCELLED and job.queue_id:
            queue.revoke(job.queue_id, self.store.root)
        return job

    def resume(self, job_id: int) -> Job:
        require_training()
        return self._enqueue(self.store.requeue(job_id))

    def status(self, job_id: int) -> Job:
        return self.store.get(job_id)

    def list_jobs(self) -> list[Job]:
        return self.store.list_jobs()

    def metrics(self, job_id: int) -> list[dict[str, Any]]:
        return self.store.epochs(job_id)

    def log(self, job_id: int, lines: int = 200) -> str:
        path = self.store.folder(job_id) / "job.log"
        if not path.exists():
            return ""
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))

    def _enqueue(self, job: Job) -> Job:
        self.store.set_queue_id(job.id, queue.enqueue(job.id, self.store.root))
        ensure_worker()
        return self.store.get(job.id)

    def _check_name(self, name: str) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise JobError(f"model name {name!r}: use letters, digits, '_', '-' and '.' (at most 64)")
        from core.models.registry import list_models

        if any(card["name"] == name for card in list_models()):
            raise JobError(f"a model named {name!r} already exists; choose another name")
        if any(job.name == name and job.status in ACTIVE for job in self.store.list_jobs()):
            raise JobError(f"a queued or running job already trains a model named {name!r}")


def validate_config(config: TrainConfig) -> TrainConfig:
    """Check what only this machine can tell; dataset paths become absolute.

    The settings themselves (ranges, architecture arguments and their size) were checked when
    the TrainConfig was built (core.training.config.check_settings): no model is built here.
    """
    from core.models.registry import list_models
    from core.training.loop import resolve_device

    config = replace(config, data=str(check_data_path(config.data)))
    if config.val_data:
        config = replace(config, val_data=str(check_data_path(config.val_data)))
    try:
        resolve_device(config.device)
    except ValueError as err:
        raise JobError(str(err)) from None
    if config.scheme == "masked":
        names = [card["name"] for card in list_models()]
        if config.attention_model not in names:
            raise JobError(
                f"attention model {config.attention_model!r} is not a registered model "
                f"(registered: {', '.join(names) or 'none'})"
            )
    return config
