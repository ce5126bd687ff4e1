"""Training jobs through the Ray Jobs API on a real local Ray (its dashboard on 127.0.0.1 serves that API)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.cli import main
from core.jobs import ACTIVE, Job, get_runner
from core.jobs.ray_runner import RayRunner
from core.models.registry import list_models
from core.training.config import TrainConfig
from tests.helpers import write_fer_folders
from tests.scale.conftest import ray

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard() -> Iterator[str]:
    """A local Ray with its dashboard (the Jobs API) on 127.0.0.1; yields the dashboard's address."""
    if ray.is_initialized():
        ray.shutdown()
    context = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    yield f"http://{context.dashboard_url}"
    ray.shutdown()


@pytest.fixture
def ray_jobs(dashboard: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FER_STUDIO_JOBS pointing at the local Ray, and a data root with a tiny generated dataset."""
    root = tmp_path / "data"
    write_fer_folders(root / "fer", count_per_class=6)
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(root))
    monkeypatch.setenv("FER_STUDIO_JOBS", dashboard)
    monkeypatch.delenv("FER_STUDIO_TRAINING", raising=False)
    return root / "fer"


def tiny(data: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        data=str(data), architecture="vgg", arch_args={"widths": [8, 16]}, epochs=epochs, batch_size=8, threads=1,
        device="cpu",
    )  # fmt: skip


def wait_for(check: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_two_worker_ray_job_trains_registers_and_shows_like_a_local_one(
    ray_jobs: Path, isolated_home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_RAY_WORKERS", "2")  # DDP on Ray Train's workers, inside the Ray job
    runner = get_runner()
    assert isinstance(runner, RayRunner)
    job = runner.submit(tiny(ray_jobs, epochs=2), "on_ray")
    assert job.queue_id and job.queue_id.startswith(f"fer-studio-job-{job.id}-")
    wait_for(lambda: runner.status(job.id).status not in ACTIVE)
    done: Job = runner.status(job.id)
    assert done.status == "succeeded", runner.log(job.id)
    assert [row["epoch"] for row in runner.metrics(job.id)] == [1, 2]
    assert "registered model on_ray" in runner.log(job.id)
    assert "Ray Train, 2 workers" in (done.run_dir / "summary.json").read_text()
    assert (done.run_dir / "checkpoint.pt").exists() and done.run_dir.is_relative_to(isolated_home / "jobs")
    card = next(card for card in list_models() if card["name"] == "on_ray")
    assert Path(card["path"]).parent == isolated_home / "models"
    assert main(["jobs", "show", str(job.id)]) == 0
    assert f"job {job.id}: succeeded, epoch 2/2, model on_ray" in capsys.readouterr().out


def test_a_ray_job_cancels_after_its_batch_and_a_lost_one_is_marked(ray_jobs: Path) -> None:
    runner = get_runner()
    job = runner.submit(tiny(ray_jobs, epochs=200), "long_on_ray")
    wait_for(lambda: len(runner.metrics(job.id)) >= 1)
    assert runner.cancel(job.id).status == "running"
    wait_for(lambda: runner.status(job.id).status not in ACTIVE, 60)
    stopped = runner.status(job.id)
    assert stopped.status == "cancelled" and (stopped.run_dir / "checkpoint.pt").exists()

    resumed = runner.resume(job.id)  # a new Ray job; stopping it through Ray leaves the row interrupted
    wait_for(lambda: runner.status(job.id).status == "running")
    assert isinstance(runner, RayRunner) and resumed.queue_id
    runner.client.stop_job(runner.status(job.id).queue_id)
    wait_for(lambda: runner.status(job.id).status not in ACTIVE, 60)
    assert runner.status(job.id).status in ("interrupted", "failed")
