"""Background training jobs: submit a run, watch it, cancel or resume it.

    runner.py    the JobRunner interface and LocalRunner (the app and the CLI use only this)
    ray_runner.py  RayRunner: jobs through the Ray Jobs API (FER_STUDIO_JOBS=ray; optional, issue 23)
    backends.py  get_runner: the runner FER_STUDIO_JOBS picks
    store.py     job rows, per-epoch metrics and states in SQLite
    queue.py     huey on SQLite carrying job ids to the worker
    worker.py    the worker process (one per data folder, an flock) and ensure_worker()
    execute.py   what the worker does with one job: train, register the model, record the end
    settings.py  environment settings: data folder, training on/off, concurrency, data roots
    charts.py    plotly figures of a job's curves

Nothing here imports streamlit, and only execute.py (in the worker) imports torch eagerly.
"""

from core.jobs.backends import get_runner
from core.jobs.runner import JobRunner, LocalRunner, validate_config
from core.jobs.settings import (
    JobError,
    SettingsError,
    TrainingDisabled,
    check_data_path,
    check_settings,
    data_roots,
    dataset_choices,
    max_running,
    training_enabled,
)
from core.jobs.store import ACTIVE, RESUMABLE, STATUSES, Job, JobStore, JobStoreError
from core.jobs.worker import ensure_worker, stop_worker, worker_pid

__all__ = [
    "ACTIVE",
    "RESUMABLE",
    "STATUSES",
    "Job",
    "JobError",
    "JobRunner",
    "JobStore",
    "JobStoreError",
    "LocalRunner",
    "SettingsError",
    "TrainingDisabled",
    "check_data_path",
    "check_settings",
    "data_roots",
    "dataset_choices",
    "ensure_worker",
    "get_runner",
    "max_running",
    "stop_worker",
    "training_enabled",
    "validate_config",
    "worker_pid",
]
