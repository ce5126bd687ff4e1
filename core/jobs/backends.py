"""get_runner: the job backend of this deployment, from FER_STUDIO_JOBS (issue 23)."""

from __future__ import annotations

from core.jobs.runner import JobRunner, LocalRunner
from core.jobs.settings import setting


def get_runner() -> JobRunner:
    """LocalRunner, or with FER_STUDIO_JOBS=ray (or a Ray dashboard address) RayRunner on that cluster."""
    backend = setting("FER_STUDIO_JOBS")
    if backend != "local":  # imported only when chosen: Ray is optional (requirements-ray.txt)
        from core.jobs.ray_runner import RayRunner

        return RayRunner(None if backend == "ray" else backend)
    return LocalRunner()
