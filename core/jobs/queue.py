"""The queue between the app and the worker: huey on SQLite ($FER_STUDIO_HOME/jobs/queue.db).

A message carries only a job id; the job's parameters and state live in the JobStore. huey
gives the worker its ordering (strict FIFO), its pool of N worker threads and revocation.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huey import SqliteHuey
from huey.api import TaskWrapper

from core.jobs.settings import jobs_dir
from core.jobs.store import database_error

TASK_NAME = "fer_studio.train_job"
_queues: dict[Path, tuple[SqliteHuey, TaskWrapper]] = {}
_guard = threading.Lock()
_stop_flag = threading.Event()
QUEUE_ADVICE = "the worker puts the queued jobs of jobs.db back on a new queue when it starts"


@contextmanager
def _usable(root: Path | None) -> Iterator[None]:
    """Turn a damaged or unreadable queue.db into a JobStoreError that says what to do."""
    try:
        yield
    except sqlite3.Error as err:
        problem = database_error((root or jobs_dir()).resolve() / "queue.db", err, QUEUE_ADVICE)
        if problem is None:
            raise
        raise problem from err


def job_queue(root: Path | None = None) -> tuple[SqliteHuey, TaskWrapper]:
    """The huey instance of a jobs folder and its one task, created once per process."""
    root = (root or jobs_dir()).resolve()
    with _guard, _usable(root):
        if root not in _queues:
            root.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey(
                "fer-studio-jobs", filename=str(root / "queue.db"), results=False, strict_fifo=True
            )
            _queues[root] = (huey, huey.task(name=TASK_NAME)(_train_job))
    return _queues[root]


def enqueue(job_id: int, root: Path | None = None) -> str:
    """Put a job id on the queue; returns the message id (used to revoke it)."""
    huey, task = job_queue(root)
    message = task.s(job_id)
    with _usable(root):
        huey.enqueue(message)
    return str(message.id)


def revoke(queue_id: str, root: Path | None = None) -> None:
    """Drop a queued message: the worker skips it when it comes up."""
    huey, _ = job_queue(root)
    with _usable(root):
        huey.revoke_by_id(queue_id, revoke_once=True)


def pending_job_ids(root: Path | None = None) -> list[int]:
    """Job ids waiting in the queue, in the order they will run."""
    huey, _ = job_queue(root)
    with _usable(root):
        return [int(message.args[0]) for message in huey.pending()]


def use_stop_flag(flag: threading.Event) -> None:
    """The worker's consumer stop flag: once set, running trainings stop after their current batch."""
    global _stop_flag
    _stop_flag = flag


def _train_job(job_id: int) -> None:
    from core.jobs.execute import run_job  # torch is imported only where a job runs

    run_job(job_id, should_stop=lambda: _stop_flag.is_set())
