"""FER_STUDIO_JOBS and FER_STUDIO_RAY_WORKERS: which runner, what is refused, no local worker for Ray jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.jobs import JobError, LocalRunner, SettingsError, check_settings, ensure_worker, get_runner, worker
from core.jobs.ray_runner import RayRunner
from core.training.config import TrainConfig
from tests.helpers import write_fer_folders


def test_the_setting_picks_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(get_runner()) is LocalRunner
    monkeypatch.setenv("FER_STUDIO_JOBS", "ray")
    runner = get_runner()
    assert isinstance(runner, RayRunner) and runner.address is None  # RAY_ADDRESS, else this machine's Ray
    monkeypatch.setenv("FER_STUDIO_JOBS", "http://head.example:8265")
    assert get_runner().address == "http://head.example:8265"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "value"), [("FER_STUDIO_JOBS", "cloud"), ("FER_STUDIO_RAY_WORKERS", "0")])
def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name}='{value}' is not allowed"):
        check_settings()


def test_no_local_worker_takes_jobs_that_ray_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_STUDIO_JOBS", "ray")
    assert ensure_worker() is None
    assert worker.main() == 2


def test_a_job_the_cluster_does_not_take_fails_resumably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fer_folders(tmp_path / "data" / "fer", count_per_class=2)
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("FER_STUDIO_JOBS", "http://127.0.0.1:9")  # nothing listens there
    runner = get_runner()
    config = TrainConfig(data=str(tmp_path / "data" / "fer"), epochs=1, device="cpu")
    with pytest.raises(JobError, match="did not take the job"):
        runner.submit(config, "nowhere")
    (job,) = runner.list_jobs()
    assert job.status == "failed" and "resume it once the cluster is up" in (job.error or "")
