"""RayRunner: the job system's backend on a Ray cluster, through the Ray Jobs API (issue 23).

Jobs keep their rows in the same JobStore (SQLite in $FER_STUDIO_HOME/jobs) and their folders,
run folders and registered models where local jobs put them: each job is a Ray job whose
entrypoint, core.scale.ray_entry (named, not imported: it sits above this wing), runs
core.jobs.execute.run_job on the cluster. So the cluster
must see $FER_STUDIO_HOME and the datasets at the same paths (this machine's Ray, or a shared
filesystem). Cancel sets the row's flag, which the running trainer reads after each batch (a
queued job's Ray job is stopped at once); status, log and metrics read the row, and a Ray job
that ended without finishing its row (killed, lost node) marks it failed or interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import core
from core.jobs.runner import LocalRunner
from core.jobs.settings import JobError, setting
from core.jobs.store import ACTIVE, FAILED, INTERRUPTED, QUEUED, Job, JobStore

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
ENTRYPOINT = "core.scale.ray_entry"
CORE_DIR = Path(core.__file__).resolve().parent
# Environment variables a Ray worker needs to find what this process finds (models, data, caches).
ENV_PREFIXES = ("FER_STUDIO_",)


def worker_env() -> dict[str, str]:
    """The FER_STUDIO_* settings of this process, for the workers' runtime_env."""
    return {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIXES)}


def runtime_env(ship_code: bool) -> dict[str, Any]:
    """Ray's runtime_env for our work: our settings, and (on a cluster) this checkout's core/ package."""
    env: dict[str, Any] = {"env_vars": worker_env()}
    if ship_code:
        env["py_modules"] = [str(CORE_DIR)]
    return env


class RayJobStore(JobStore):
    """JobStore whose running jobs are not judged by a process id: they run on other machines.

    RayRunner asks the Ray Jobs API instead (RayRunner.reconcile).
    """

    def _refresh(self) -> None:
        pass


class RayRunner(LocalRunner):
    """Submit, watch and stop trainings on a Ray cluster; `address` is its dashboard (None: RAY_ADDRESS)."""

    def __init__(self, address: str | None = None, store: JobStore | None = None) -> None:
        super().__init__(store or RayJobStore())
        self.address = address
        self._client: JobSubmissionClient | None = None

    @property
    def client(self) -> JobSubmissionClient:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError:
                raise ValueError(
                    "FER_STUDIO_JOBS=ray needs Ray: pip install -r requirements-ray.txt"
                ) from None
            self._client = JobSubmissionClient(self.address)
        return self._client

    def cancel(self, job_id: int) -> Job:
        job = self.store.request_cancel(job_id)
        if job.status not in ACTIVE and job.queue_id:  # it was queued: nothing of it runs yet
            self._stop(job.queue_id)
        return job

    def status(self, job_id: int) -> Job:
        return self.reconcile(self.store.get(job_id))

    def list_jobs(self) -> list[Job]:
        return [self.reconcile(job) if job.status in ACTIVE else job for job in self.store.list_jobs()]

    def log(self, job_id: int, lines: int = 200) -> str:
        """The job's own log; before it has one (or when the entrypoint failed early), Ray's log of it."""
        text = super().log(job_id, lines)
        job = self.store.get(job_id)
        if text or not job.queue_id:
            return text
        try:
            ray_log = self.client.get_job_logs(job.queue_id)
        except Exception:  # no such Ray job (any more), or the cluster is unreachable
            return ""
        return "".join(deque(ray_log.splitlines(keepends=True), maxlen=lines))

    def reconcile(self, job: Job) -> Job:
        """A queued or running job whose Ray job has ended without it: failed (or interrupted when stopped)."""
        if job.status not in ACTIVE or not job.queue_id:
            return job
        try:
            info = self.client.get_job_info(job.queue_id)
        except Exception:
            return job  # the cluster cannot say now; ask again later
        state = str(getattr(info.status, "value", info.status))
        if state not in ENDED:
            return job
        current = self.store.get(job.id)  # the entrypoint may have finished the row meanwhile
        if current.status not in ACTIVE:
            return current
        status = INTERRUPTED if state == "STOPPED" else FAILED
        reason = f"its Ray job {job.queue_id} ended ({state.lower()}) before the training did"
        if info.message:
            reason += f": {info.message.strip().splitlines()[-1]}"
        if current.status == QUEUED:
            self.store.claim(job.id, 0)  # queued -> running -> ended: the store's one way to an end
        self.store.finish(job.id, status, error=reason)
        return self.store.get(job.id)

    def _enqueue(self, job: Job) -> Job:
        workers = int(setting("FER_STUDIO_RAY_WORKERS"))
        python = setting_python()
        entrypoint = shlex.join([python, "-m", ENTRYPOINT, str(job.id), "--workers", str(workers)])
        submission = f"fer-studio-job-{job.id}-{int(time.time() * 1000)}"
        try:
            self.client.submit_job(
                entrypoint=entrypoint,
                submission_id=submission,
                runtime_env=runtime_env(ship_code=True),
                # One worker trains inside the entrypoint, which then holds a CPU; more train in Ray Train's.
                entrypoint_num_cpus=1 if workers == 1 else 0,
                metadata={"fer_studio_job": str(job.id), "name": job.name or ""},
            )
        except Exception as err:  # unreachable cluster, refused job: the row must not wait forever
            reason = f"the Ray cluster at {self.address or 'RAY_ADDRESS'} did not take the job ({_first_line(err)})"
            self.store.claim(job.id, 0)
            self.store.finish(job.id, FAILED, error=reason + "; resume it once the cluster is up")
            raise JobError(reason) from None
        self.store.set_queue_id(job.id, submission)
        return self.store.get(job.id)

    def _stop(self, submission: str) -> None:
        with contextlib.suppress(Exception):  # already ended or gone: nothing runs
            self.client.stop_job(submission)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def setting_python() -> str:
    """The interpreter the cluster runs jobs with: FER_STUDIO_RAY_PYTHON, else this one."""
    return os.environ.get("FER_STUDIO_RAY_PYTHON", "").strip() or sys.executable
