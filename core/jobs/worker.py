"""The worker process: one per data folder, holding an flock on jobs/worker.lock.

It runs huey's consumer with FER_STUDIO_MAX_JOBS threads, so at most that many trainings
run at once and the rest wait in order. On start it marks jobs left running by a dead
worker as interrupted and re-queues queued jobs whose message was lost. It exits after
FER_STUDIO_WORKER_IDLE seconds without work; submitting a job starts it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.jobs import queue
from core.jobs.settings import (
    REPO_ROOT,
    JobError,
    check_settings,
    data_roots,
    jobs_dir,
    max_running,
    setting,
    training_enabled,
    worker_idle_seconds,
    worker_niceness,
)
from core.jobs.store import QUEUED, RUNNING, JobStore, pid_alive
from core.paths import home_dir

LOCK_NAME = "worker.lock"
logger = logging.getLogger("fer_studio.worker")
_children: list[subprocess.Popen[bytes]] = []


def lock_path(root: Path | None = None) -> Path:
    return (root or jobs_dir()) / LOCK_NAME


def worker_pid(root: Path | None = None) -> int | None:
    """The pid of the worker that holds the lock of this data folder, or None when none runs."""
    path = lock_path(root)
    if not path.exists():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(20):  # the worker writes its pid just after taking the lock
                text = path.read_text().strip()
                if text.isdigit():
                    return int(text)
                time.sleep(0.05)
            return 0
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


def ensure_worker(when_queued: bool = False) -> int | None:
    """Start a detached worker for this data folder unless one runs; returns its pid, or None when
    training is off (or, with when_queued, when no job waits). Cheap: one flock test.

    Safe to call from several processes at once: a worker that cannot take the lock exits.
    """
    _reap()
    check_settings()  # a worker that cannot start would leave jobs waiting: say why here instead
    if not training_enabled() or setting("FER_STUDIO_JOBS") != "local":  # issue 23: Ray runs them
        return None
    root = jobs_dir()
    pid = worker_pid(root)
    if pid is not None:
        return pid
    if when_queued and not ((root / "jobs.db").exists() and JobStore(root).count(QUEUED)):
        return None
    root.mkdir(parents=True, exist_ok=True)
    # Absolute paths: the worker runs in the repository folder, not in this process's.
    environment = {
        **os.environ,
        "FER_STUDIO_HOME": str(home_dir().resolve()),
        "FER_STUDIO_DATA_ROOTS": os.pathsep.join(str(folder) for folder in data_roots()),
    }
    with open(root / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "worker"],
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the app does not reach running trainings
        )
    _children.append(process)
    return process.pid


def stop_worker(timeout: float = 30.0) -> bool:
    """Ask this data folder's worker to stop (SIGTERM: trainings stop after their batch, marked
    interrupted); SIGKILL it after `timeout` seconds. Returns whether a worker was running."""
    pid = worker_pid()
    if not pid:
        _reap()
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            _reap()
            time.sleep(0.05)
    _reap()
    return True


def main() -> int:
    """Run the worker in this process until it is stopped or idle; 0 if another worker runs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if (
        setting("FER_STUDIO_JOBS") != "local"
    ):  # issue 23: it would take Ray's queued jobs and mark its running ones
        logger.error("FER_STUDIO_JOBS=%s: jobs run on Ray, not in a local worker", setting("FER_STUDIO_JOBS"))
        return 2
    root = jobs_dir()
    root.mkdir(parents=True, exist_ok=True)
    descriptor = _take_lock(root, wait=1.0)
    if descriptor is None:
        logger.info("another worker holds %s; exiting", lock_path(root))
        return 0
    try:
        store = _start(root)
    except Exception as err:  # no job may wait for a worker that cannot start
        logger.exception("the worker cannot start")
        _fail_waiting(root, f"the job worker could not start: {err}")
        os.close(descriptor)
        raise
    while True:
        for job_id in store.interrupt_running("the worker stopped while the job ran; resume it to continue"):
            logger.warning("job %d was left running by a dead worker: marked interrupted", job_id)
        _requeue_lost(store, root)
        if not _serve(store, root):
            break
        # Idle: let go of the lock, then look once more, so that a job submitted meanwhile either
        # saw the lock free (and started a worker) or is seen here.
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        if not store.count(QUEUED):
            break
        if not _lock(descriptor, wait=5.0):
            break
        _write_pid(descriptor)
    os.close(descriptor)
    logger.info("worker %d exiting", os.getpid())
    return 0


def _start(root: Path) -> JobStore:
    """Check the settings, the job database and the queue before serving; raises what is wrong."""
    check_settings()
    with contextlib.suppress(OSError):
        os.nice(worker_niceness())  # trainings yield the CPU to the web app
    store = JobStore(root)
    queue.pending_job_ids(root)  # reads the queue once
    return store


def _fail_waiting(root: Path, reason: str) -> None:
    """Mark the queued jobs failed with `reason` (resume them once it is fixed), if the database can."""
    try:
        failed = JobStore(root).fail_queued(reason)
    except JobError as err:
        logger.error("could not mark the queued jobs failed: %s", err)
        return
    for job_id in failed:
        logger.warning("job %d failed: %s", job_id, reason)


def _serve(store: JobStore, root: Path) -> bool:
    """Run huey's consumer until a signal (False) or until idle for long enough (True)."""
    huey, _ = queue.job_queue(root)
    consumer = huey.create_consumer(
        workers=max_running(), worker_type="thread", periodic=False, initial_delay=0.1, max_delay=1.0
    )
    queue.use_stop_flag(consumer.stop_flag)
    idle = threading.Event()
    watcher = threading.Thread(
        target=_watch_idle, args=(store, consumer.stop_flag, idle), name="idle-watch", daemon=True
    )
    watcher.start()
    consumer.run()
    consumer.stop_flag.set()
    for _, thread in consumer.worker_threads:  # trainings notice the flag after their batch
        thread.join(timeout=60)
    return idle.is_set()


def _watch_idle(store: JobStore, stop_flag: threading.Event, idle: threading.Event) -> None:
    seconds = worker_idle_seconds()
    if seconds <= 0:
        return
    last_busy = time.monotonic()
    while not stop_flag.wait(1.0):
        if store.count(QUEUED, RUNNING):
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy >= seconds:
            logger.info("idle for %.0f s; stopping", seconds)
            idle.set()
            stop_flag.set()


def _requeue_lost(store: JobStore, root: Path) -> None:
    """Queued jobs without a message (the app died between the row and the message) go back in the queue."""
    waiting = set(queue.pending_job_ids(root))
    for job in reversed(store.list_jobs(QUEUED)):
        if job.id not in waiting:
            store.set_queue_id(job.id, queue.enqueue(job.id, root))
            logger.info("job %d had no queue message: queued again", job.id)


def _take_lock(root: Path, wait: float) -> int | None:
    descriptor = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    if not _lock(descriptor, wait):
        os.close(descriptor)
        return None
    _write_pid(descriptor)
    return descriptor


def _lock(descriptor: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _write_pid(descriptor: int) -> None:
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(os.getpid()).encode(), 0)


def _reap() -> None:
    """Collect exited workers this process started, so none lingers as a zombie."""
    for process in list(_children):
        if process.poll() is not None:
            _children.remove(process)
