"""Job rows in SQLite: status, parameters, per-epoch metrics, error and resulting model.

One database file, $FER_STUDIO_HOME/jobs/jobs.db (WAL mode, so the app, the CLI and the
worker read and write it at once). Every state change is one conditional UPDATE, so two
processes racing (a cancel and a worker claiming the job) cannot both win. A job recorded
as running whose worker process is gone is marked interrupted whenever rows are read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.jobs.settings import JobError, jobs_dir

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "interrupted",
)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
RESUMABLE = (FAILED, CANCELLED, INTERRUPTED)

SCHEMA = """
create table if not exists jobs (
    id integer primary key autoincrement,
    name text not null,
    status text not null,
    params text not null,
    created_at real not null,
    started_at real,
    finished_at real,
    pid integer,
    queue_id text,
    cancel_requested integer not null default 0,
    error text,
    model text
);
create table if not exists epochs (
    job_id integer not null references jobs(id),
    epoch integer not null,
    row text not null,
    primary key (job_id, epoch)
);
"""


@dataclass
class Job:
    """One training job as stored; `folder` holds run/ (the trainer's run folder) and job.log."""

    id: int
    name: str
    status: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    queue_id: str | None
    cancel_requested: bool
    error: str | None
    model: str | None
    epochs_done: int
    folder: Path

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def log_path(self) -> Path:
        return self.folder / "job.log"

    @property
    def epochs(self) -> int:
        return int(self.params.get("epochs", 0))

    @property
    def progress(self) -> float:
        """Finished epochs as a fraction of the planned ones (1.0 once succeeded)."""
        if self.status == SUCCEEDED:
            return 1.0
        return min(self.epochs_done / self.epochs, 1.0) if self.epochs else 0.0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


class JobStoreError(JobError):
    """The job database or the queue cannot be used (damaged or unreadable); the message says what to do."""


# SQLite's primary result codes for a file that is not (or no longer) a database, and for one
# that cannot be opened, read or written.
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNUSABLE = {3, 8, 10, 13, 14}  # SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN


def database_error(path: Path, err: sqlite3.Error, what: str) -> JobStoreError | None:
    """A JobStoreError saying what to do about a damaged or unusable SQLite file (`what` follows the
    advice to move it aside), or None for other errors (a busy database, a bug)."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in _DAMAGED:
        return JobStoreError(
            f"{path} is damaged ({err}): stop the worker (python -m core jobs worker --stop), then move "
            f"{path.name} and any {path.name}-wal and {path.name}-shm beside it out of {path.parent}; {what}"
        )
    if code in _UNUSABLE:
        return JobStoreError(
            f"{path} cannot be opened or written ({err}): check that folder's permissions and free space"
        )
    return None


def pid_alive(pid: int | None) -> bool:
    """Whether a process exists and is not a zombie (a killed worker the app has not reaped yet)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


STORE_ADVICE = (
    "an empty job list starts with the next command (the jobs it held are lost; their folders "
    "beside it and the models they registered stay)"
)


class JobStore:
    """Job rows in one SQLite file; each call opens a short connection, so it is safe across threads."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or jobs_dir()).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "jobs.db"
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma busy_timeout=30000")
            yield conn
        except sqlite3.Error as err:
            problem = database_error(self.path, err, STORE_ADVICE)
            if problem is None:
                raise
            raise problem from err
        finally:
            if conn is not None:
                conn.close()

    def folder(self, job_id: int) -> Path:
        return self.root / str(job_id)

    # --- writing -------------------------------------------------------------------------

    def create(self, name: str | None, params: dict[str, Any]) -> Job:
        """A new queued job (named jobID-ARCH-SCHEME unless `name` is given); its folder is created."""
        with self._connect() as conn:
            conn.execute("begin immediate")
            cursor = conn.execute(
                "insert into jobs (name, status, params, created_at) values (?, ?, ?, ?)",
                (name or "", QUEUED, json.dumps(params), time.time()),
            )
            job_id = int(cursor.lastrowid or 0)
            if not name:
                name = f"job{job_id}-{params.get('architecture', 'model')}-{params.get('scheme', 'baseline')}"
                conn.execute("update jobs set name = ? where id = ?", (name, job_id))
            conn.execute("commit")
        self.folder(job_id).mkdir(parents=True, exist_ok=True)
        return self.get(job_id)

    def set_queue_id(self, job_id: int, queue_id: str) -> None:
        with self._connect() as conn:
            conn.execute("update jobs set queue_id = ? where id = ?", (queue_id, job_id))

    def claim(self, job_id: int, pid: int) -> bool:
        """queued -> running for the worker `pid`; False if the job is no longer queued."""
        with self._connect() as conn:
            cursor = conn.execute(
                "update jobs set status = ?, pid = ?, started_at = ?, finished_at = null, error = null, "
                "cancel_requested = 0 where id = ? and status = ?",
                (RUNNING, pid, time.time(), job_id, QUEUED),
            )
            return cursor.rowcount == 1

    def request_cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once; ask a running one to stop after its current batch."""
        self._refresh()
        with self._connect() as conn:
            queued = conn.execute(
                "update jobs set status = ?, finished_at = ? where id = ? and status = ?",
                (CANCELLED, time.time(), job_id, QUEUED),
            ).rowcount
            running = (
                0
                if queued
                else conn.execute(
                    "update jobs set cancel_requested = 1 where id = ? and status = ?", (job_id, RUNNING)
                ).rowcount
            )
        job = self.get(job_id)
        if not (queued or running):
            raise JobError(
                f"job {job_id} has ended ({job.status}): only queued or running jobs can be cancelled"
            )
        return job

    def cancel_requested(self, job_id: int) -> bool:
        with self._connect() as conn:
            row = conn.execute("select cancel_requested from jobs where id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def add_epoch(self, job_id: int, row: dict[str, Any]) -> None:
        with self._connect() as conn:
            conn.execute(
                "insert or replace into epochs (job_id, epoch, row) values (?, ?, ?)",
                (job_id, int(row["epoch"]), json.dumps(row)),
            )

    def finish(self, job_id: int, status: str, error: str | None = None, model: str | None = None) -> None:
        """running -> a final status (succeeded, failed, cancelled or interrupted)."""
        if status not in STATUSES or status in ACTIVE:
            raise ValueError(f"{status!r} is not a final status")
        with self._connect() as conn:
            conn.execute(
                "update jobs set status = ?, error = ?, model = ?, finished_at = ? "
                "where id = ? and status = ?",
                (status, error, model, time.time(), job_id, RUNNING),
            )

    def requeue(self, job_id: int) -> Job:
        """failed, cancelled or interrupted -> queued again (the trainer resumes its checkpoint)."""
        self._refresh()
        marks = ", ".join("?" for _ in RESUMABLE)
        with self._connect() as conn:
            changed = conn.execute(
                "update jobs set status = ?, error = null, pid = null, started_at = null, "
                f"finished_at = null, cancel_requested = 0 where id = ? and status in ({marks})",
                (QUEUED, job_id, *RESUMABLE),
            ).rowcount
        job = self.get(job_id)
        if not changed:
            raise JobError(
                f"job {job_id} is {job.status}: only failed, cancelled or interrupted jobs can resume"
            )
        return job

    def interrupt_running(self, reason: str) -> list[int]:
        """Mark every running job interrupted: called by a worker that just took the lock."""
        with self._connect() as conn:
            ids = [r[0] for r in conn.execute("select id from jobs where status = ?", (RUNNING,))]
            conn.execute(
                "update jobs set status = ?, error = ?, finished_at = ? where status = ?",
                (INTERRUPTED, reason, time.time(), RUNNING),
            )
        return ids

    def fail_queued(self, reason: str) -> list[int]:
        """Mark every queued job failed (resumable): called by a worker that cannot start."""
        with self._connect() as conn:
            conn.execute("begin immediate")
            ids = [r[0] for r in conn.execute("select id from jobs where status = ?", (QUEUED,))]
            conn.execute(
                "update jobs set status = ?, error = ?, finished_at = ? where status = ?",
                (FAILED, reason, time.time(), QUEUED),
            )
            conn.execute("commit")
        return ids

    # --- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        self._refresh()
        jobs = self._select("where jobs.id = ?", (job_id,))
        if not jobs:
            raise JobError(f"no job {job_id}")
        return jobs[0]

    def list_jobs(self, status: str | None = None) -> list[Job]:
        """All jobs, newest first (or only those with one status)."""
        self._refresh()
        if status is None:
            return self._select("order by jobs.id desc", ())
        return self._select("where jobs.status = ? order by jobs.id desc", (status,))

    def count(self, *statuses: str) -> int:
        marks = ", ".join("?" for _ in statuses)
        with self._connect() as conn:
            row = conn.execute(f"select count(*) from jobs where status in ({marks})", statuses).fetchone()
        return int(row[0])

    def epochs(self, job_id: int) -> list[dict[str, Any]]:
        """The per-epoch metrics rows of a job, in order."""
        with self._connect() as conn:
            rows = conn.execute(
                "select row from epochs where job_id = ? order by epoch", (job_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _select(self, where: str, args: tuple[Any, ...]) -> list[Job]:
        query = (
            "select jobs.*, (select max(epoch) from epochs where epochs.job_id = jobs.id) as epochs_done "
            f"from jobs {where}"
        )
        with self._connect() as conn:
            rows = conn.execute(query, args).fetchall()
        return [self._job(row) for row in rows]

    def _job(self, row: sqlite3.Row) -> Job:
        return Job(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            params=json.loads(row["params"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            pid=row["pid"],
            queue_id=row["queue_id"],
            cancel_requested=bool(row["cancel_requested"]),
            error=row["error"],
            model=row["model"],
            epochs_done=row["epochs_done"] or 0,
            folder=self.folder(row["id"]),
        )

    def _refresh(self) -> None:
        """Mark running jobs whose worker process has died as interrupted."""
        with self._connect() as conn:
            running = conn.execute("select id, pid from jobs where status = ?", (RUNNING,)).fetchall()
            for job_id, pid in running:
                if not pid_alive(pid):
                    conn.execute(
                        "update jobs set status = ?, error = ?, finished_at = ? "
                        "where id = ? and status = ? and pid is ?",
                        (
                            INTERRUPTED,
                            f"the worker process {pid} ended while the job ran",
                            time.time(),
                            job_id,
                            RUNNING,
                            pid,
                        ),
                    )


def job_table(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """One row per job for a table: id, name, status, progress (0..1), epochs, parameters, times."""
    return [
        {
            "id": job.id,
            "model": job.name,
            "status": "cancelling" if job.cancel_requested and job.status == "running" else job.status,
            "progress": job.progress,
            "epochs": f"{job.epochs_done}/{job.epochs}",
            "architecture": job.params.get("architecture"),
            "scheme": job.params.get("scheme"),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at)),
            "error": job.error or "",
        }
        for job in jobs
    ]
