"""Background training jobs: real worker processes, real (tiny) trainings, real SQLite.

Each test has its own FER_STUDIO_HOME (conftest's isolated_home) and data root; every worker
a test starts is stopped by the `no_stray_workers` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import (
    JobError,
    JobStore,
    LocalRunner,
    TrainingDisabled,
    ensure_worker,
    settings,
    stop_worker,
    worker,
    worker_pid,
)
from core.jobs.store import job_table, pid_alive
from core.models.registry import list_models
from core.training.config import TrainConfig
from tests.helpers import REPO, no_stray_workers, write_fer_folders  # noqa: F401 (autouse fixture)
from ui.charts import training_curves


def tiny_config(data_root: Path, epochs: int, **overrides) -> TrainConfig:
    values = dict(
        data=str(data_root / "fer"),
        architecture="vgg",
        arch_args={"widths": [8, 16]},
        epochs=epochs,
        batch_size=8,
        input_size=40,
        ema_decay=0,
        augment=False,
        threads=1,
    )
    return TrainConfig(**{**values, **overrides})


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m core ...` in a new process (same environment, so the same data folder)."""
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_submitted_job_runs_in_a_worker_and_registers_its_model(data_root: Path) -> None:
    runner = LocalRunner()
    started = time.monotonic()
    job = runner.submit(tiny_config(data_root, epochs=2), name="tiny_job")
    assert time.monotonic() - started < 5, "submit must return at once"
    assert job.status == "queued" and job.name == "tiny_job"
    # A row whose queue message was lost (the app died in between): the worker queues it again.
    orphan = JobStore().create("orphan", asdict(tiny_config(data_root, epochs=1)))

    wait_for(lambda: not runner.status(orphan.id).active, 120, "the jobs to end")
    assert runner.status(orphan.id).status == "succeeded"
    job = runner.status(job.id)
    assert job.status == "succeeded", job.error
    assert job.model == "tiny_job" and job.pid != os.getpid()
    assert [row["epoch"] for row in runner.metrics(job.id)] == [1, 2]
    assert "registered model tiny_job" in runner.log(job.id)
    card = next(card for card in list_models() if card["name"] == "tiny_job")
    assert card["architecture"] == "vgg" and card["evaluations"]
    assert "python -m core train" in card["command"] and "--save-as tiny_job" in card["command"]

    # A new process (the CLI) sees the job, its metrics and its model.
    listed = cli("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(j["id"], j["status"], j["model"]) for j in json.loads(listed.stdout)] == [
        (orphan.id, "succeeded", "orphan"),
        (job.id, "succeeded", "tiny_job"),
    ]
    shown = cli("jobs", "show", str(job.id))
    assert shown.returncode == 0 and "epoch   2" in shown.stdout
    assert "registered model: tiny_job" in shown.stdout
    # Resuming or cancelling a finished job is refused with one clear line.
    refused = cli("jobs", "cancel", str(job.id))
    assert refused.returncode == 2 and refused.stderr.startswith("error: job")
    assert "Traceback" not in refused.stderr
    with pytest.raises(JobError, match="only failed, cancelled or interrupted"):
        runner.resume(job.id)


@pytest.mark.slow
def test_one_job_at_a_time_and_cancel_queued_and_running_jobs(data_root: Path) -> None:
    runner = LocalRunner()
    long = runner.submit(tiny_config(data_root, epochs=200))
    second = runner.submit(tiny_config(data_root, epochs=1))
    third = runner.submit(tiny_config(data_root, epochs=1))
    wait_for(lambda: runner.status(long.id).epochs_done >= 1, 120, "the first job's first epoch")

    # The limit (FER_STUDIO_MAX_JOBS, default 1): the others wait in the queue, in order.
    assert [runner.status(j.id).status for j in (long, second, third)] == ["running", "queued", "queued"]

    assert runner.cancel(third.id).status == "cancelled"  # a queued job is cancelled at once
    asked = time.monotonic()
    assert runner.cancel(long.id).cancel_requested
    wait_for(lambda: runner.status(long.id).status == "cancelled", 10, "the running job to stop")
    assert time.monotonic() - asked < 10
    long = runner.status(long.id)
    assert (long.run_dir / "checkpoint.pt").exists() and long.error == "cancelled by the user"
    assert "the last epoch's checkpoint is kept" in runner.log(long.id)

    wait_for(lambda: not runner.status(second.id).active, 120, "the second job to end")
    second, third = runner.status(second.id), runner.status(third.id)
    assert second.status == "succeeded", second.error
    assert second.started_at >= long.finished_at, "the second job started before the first one stopped"
    assert third.status == "cancelled" and third.started_at is None, "a cancelled queued job never runs"
    assert [card["name"] for card in list_models()] == [second.name]


@pytest.mark.slow
def test_killed_worker_leaves_the_job_interrupted_and_resume_continues(data_root: Path) -> None:
    runner = LocalRunner()
    job = runner.submit(tiny_config(data_root, epochs=8))
    wait_for(lambda: runner.status(job.id).epochs_done >= 1, 120, "the first epoch")
    first_worker = worker_pid()
    assert first_worker and runner.status(job.id).pid == first_worker
    os.kill(first_worker, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first_worker), 10, "the worker to die")

    killed = runner.status(job.id)
    assert killed.status == "interrupted", "a job whose worker died must not stay running"
    assert f"worker process {first_worker}" in killed.error
    assert killed.epochs_done < 8 and (killed.run_dir / "checkpoint.pt").exists()
    assert json.loads(cli("jobs", "list", "--json").stdout)[0]["status"] == "interrupted"

    # Resume (a new worker starts); then stop that worker politely: the job is interrupted again.
    assert runner.resume(job.id).status in ("queued", "running")
    wait_for(lambda: runner.status(job.id).epochs_done > killed.epochs_done, 120, "an epoch after resuming")
    second_worker = worker_pid()
    assert second_worker not in (None, first_worker)
    assert stop_worker(timeout=20)
    stopped = runner.status(job.id)
    assert stopped.status == "interrupted" and "worker was stopped" in stopped.error
    assert stopped.epochs_done < 8

    assert runner.resume(job.id).status in ("queued", "running")
    wait_for(lambda: not runner.status(job.id).active, 120, "the resumed job to end")
    resumed = runner.status(job.id)
    assert resumed.status == "succeeded", resumed.error
    assert runner.log(job.id).count("resuming from the checkpoint of epoch") == 2
    assert [row["epoch"] for row in runner.metrics(job.id)] == list(range(1, 9))
    summary = json.loads((resumed.run_dir / "summary.json").read_text())
    assert [row["epoch"] for row in summary["history"]] == list(range(1, 9))
    assert resumed.name in [card["name"] for card in list_models()]


def test_two_apps_on_one_data_folder_start_one_worker(data_root: Path) -> None:
    environment = {**os.environ, "FER_STUDIO_WORKER_IDLE": "0"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "worker"],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    worker._children.extend(processes)
    wait_for(lambda: sum(p.poll() is None for p in processes) == 1, 20, "one of the two workers to exit")
    survivor = next(p for p in processes if p.poll() is None)
    assert worker_pid() == survivor.pid
    assert ensure_worker() == survivor.pid, "ensure_worker must not start a second worker"
    assert [p.returncode for p in processes if p is not survivor] == [0]


def test_an_idle_worker_exits(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_STUDIO_WORKER_IDLE", "1")
    pid = ensure_worker()
    assert pid and ensure_worker(when_queued=True) in (pid, None)
    wait_for(lambda: worker_pid() == pid, 10, "the worker to take its lock")
    wait_for(lambda: not pid_alive(pid), 15, "the idle worker to exit")
    assert worker_pid() is None
    assert ensure_worker(when_queued=True) is None, "no job waits: no worker is started"


def test_a_running_job_whose_process_is_gone_reads_as_interrupted(data_root: Path) -> None:
    store = JobStore()
    job = store.create(None, {"architecture": "vgg", "scheme": "baseline", "epochs": 3})
    assert job.name == f"job{job.id}-vgg-baseline"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert store.claim(job.id, gone.pid) and not store.claim(job.id, gone.pid)
    job = store.get(job.id)
    assert job.status == "interrupted" and str(gone.pid) in job.error
    assert store.requeue(job.id).status == "queued"


def test_a_failed_job_keeps_its_error_and_log(data_root: Path) -> None:
    from core.jobs.execute import run_job

    broken = data_root / "broken"
    (broken / "train" / "not-an-emotion").mkdir(parents=True)
    store = JobStore()
    job = store.create(None, asdict(tiny_config(data_root, epochs=1, data=str(broken))))
    assert run_job(job.id, store=store) == "failed"
    assert run_job(job.id, store=store) == "skipped", "only a queued job runs"
    job = store.get(job.id)
    assert job.status == "failed" and "not-an-emotion" in job.error
    log = LocalRunner(store).log(job.id)
    assert "Traceback" in log and "job failed" in log


def test_training_off_refuses_jobs(data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from core.cli import main

    monkeypatch.setenv("FER_STUDIO_TRAINING", "off")
    with pytest.raises(TrainingDisabled):
        LocalRunner().submit(tiny_config(data_root, epochs=1))
    assert ensure_worker() is None and worker_pid() is None
    assert main(["jobs", "submit", "--data", str(data_root / "fer")]) == 2
    assert "training is turned off" in capsys.readouterr().err


def test_datasets_and_names_are_checked(data_root: Path, tmp_path: Path, capsys) -> None:
    from core.cli import main

    outside = write_fer_folders(tmp_path / "elsewhere", count_per_class=1)
    runner = LocalRunner()
    with pytest.raises(JobError, match="outside the data roots"):
        runner.submit(tiny_config(data_root, epochs=1, data=str(outside)))
    with pytest.raises(JobError, match="outside the data roots"):
        runner.submit(tiny_config(data_root, epochs=1, data=str(data_root / ".." / "elsewhere")))
    with pytest.raises(JobError, match="model name"):
        runner.submit(tiny_config(data_root, epochs=1), name="../escape")
    with pytest.raises(JobError, match="attention model"):
        runner.submit(tiny_config(data_root, epochs=1, scheme="masked", attention_model="missing"))
    assert runner.list_jobs() == []
    assert main(["jobs", "submit", "--data", str(outside)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: dataset") and error.count("\n") == 1
    assert [p.name for p in settings.dataset_choices()] == ["fer"]


def test_jobs_and_trained_models_share_the_home(isolated_home: Path) -> None:
    from core.models.registry import model_dirs

    assert settings.jobs_dir() == isolated_home.resolve() / "jobs"
    assert model_dirs()[-1] == isolated_home / "models"


def test_job_figures_and_table() -> None:
    rows = [
        {"epoch": 1, "train_loss": 1.9, "val_loss": 1.8, "val_accuracy": 0.3, "val_macro_f1": 0.2},
        {"epoch": 2, "train_loss": 1.5, "val_loss": 1.6, "val_accuracy": 0.4, "val_macro_f1": 0.3},
    ]
    figure = training_curves(rows)
    assert [trace.name for trace in figure.data] == ["train loss", "val loss", "val accuracy", "val macro-F1"]
    assert list(figure.data[2].y) == [0.3, 0.4]
    assert training_curves([]).layout.annotations[-1].text == "no finished epoch yet"
    store = JobStore()
    job = store.create("named", {"architecture": "vgg", "scheme": "baseline", "epochs": 4})
    store.claim(job.id, os.getpid())
    store.add_epoch(job.id, {**rows[0]})
    (table,) = job_table(store.list_jobs())
    assert table["status"] == "running" and table["progress"] == 0.25 and table["epochs"] == "1/4"


# --- the Train page ------------------------------------------------------------------------


def finished_job(rows: int = 2) -> int:
    """A succeeded job written straight into the store (no worker)."""
    store = JobStore()
    job = store.create("shown", {"architecture": "vgg", "scheme": "baseline", "epochs": rows})
    store.claim(job.id, os.getpid())
    for epoch in range(1, rows + 1):
        row = {"epoch": epoch, "train_loss": 2.0 / epoch, "val_loss": 1.9, "val_accuracy": 0.2}
        store.add_epoch(job.id, {**row, "val_macro_f1": 0.1, "images_per_second": 100.0})
    store.finish(job.id, "succeeded", model="shown")
    return job.id


def test_train_page_renders_jobs_when_training_is_on(data_root: Path) -> None:
    finished_job()
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Train"
    assert [b.label for b in at.button] == ["Start training"]
    assert at.dataframe[0].value["status"].tolist() == ["succeeded"]
    assert at.get("plotly_chart") and at.code[0].value == "(no log yet)"
    assert not at.info


def test_train_page_submits_a_job(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.jobs
    import core.jobs.runner

    monkeypatch.setattr(core.jobs.runner, "ensure_worker", lambda: None)  # no worker: the job stays queued
    monkeypatch.setattr(core.jobs, "ensure_worker", lambda when_queued=False: None)
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=60).run()
    epochs = next(widget for widget in at.number_input if widget.label == "Epochs")
    epochs.set_value(3)
    next(widget for widget in at.text_input if widget.label == "Model name").input("from_page")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Job 1 queued" in at.success[0].value
    (job,) = LocalRunner().list_jobs()
    assert (job.name, job.status, job.params["epochs"]) == ("from_page", "queued", 3)
    assert job.params["data"] == str((data_root / "fer").resolve())


def test_train_page_says_when_training_is_off(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_STUDIO_TRAINING", "off")
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "Training is turned off" in at.info[0].value
    assert not at.button and not at.get("plotly_chart")
