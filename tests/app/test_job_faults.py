"""A damaged job database or queue, or a bad job setting, costs the Train page and the job commands
at most: one clear message that says what to do, every other page working, no job waiting forever.

Real SQLite files damaged the way a disk or a copy would, the real CLI, real AppTest pages and a
real worker process.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.jobs import JobStore, SettingsError, check_settings, ensure_worker, queue, settings
from core.jobs.store import FAILED, QUEUED
from tests.helpers import (  # noqa: F401 (fixtures)
    PAGES,
    REPO,
    fresh_app,
    navigation_from_app_py,
    no_stray_workers,
    open_page,
)

# The fixtures of the app and job tests: caches cleared, pages through app.py, a data root, no stray worker.

DAMAGE = ["random bytes", "overwritten header", "cut in half"]
BAD_SETTINGS = [
    ("FER_STUDIO_MAX_JOBS", "abc"),
    ("FER_STUDIO_MAX_JOBS", "0"),
    ("FER_STUDIO_WORKER_IDLE", "soon"),
    ("FER_STUDIO_WORKER_IDLE", "-5"),
    ("FER_STUDIO_WORKER_NICE", "high"),
    ("FER_STUDIO_WORKER_NICE", "40"),
    ("FER_STUDIO_TRAINING", "maybe"),
    ("FER_STUDIO_DATA_ROOTS", os.pathsep),
]


def jobs_dir(home: Path) -> Path:
    return home / "jobs"


def store_with_history(home: Path, jobs: int = 80) -> JobStore:
    """A job database of many pages: finished jobs with per-epoch rows, checkpointed into jobs.db."""
    store = JobStore(jobs_dir(home))
    for _ in range(jobs):
        job = store.create(
            None, {"architecture": "vgg", "scheme": "baseline", "epochs": 3, "note": "x" * 400}
        )
        for epoch in (1, 2, 3):
            store.add_epoch(job.id, {"epoch": epoch, "val_accuracy": 0.5, "note": "y" * 300})
    with sqlite3.connect(store.path) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    return store


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    if how == "random bytes":
        path.write_bytes(random.Random(0).randbytes(max(len(data), 4096)))
    elif how == "overwritten header":
        path.write_bytes(b"\0" * 100 + data[100:])
    elif how == "cut in half":
        path.write_bytes(data[: len(data) // 2])


def one_error_line(text: str) -> str:
    assert len(text.splitlines()) == 1 and text.startswith("error: "), text
    return text


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("command", [["list"], ["show", "1"], ["submit", "--epochs", "1"]])
def test_a_damaged_job_database_is_one_error_line_in_the_cli(
    data_root: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str], how: str, command: list[str]
) -> None:
    damage(store_with_history(isolated_home).path, how)
    if command[0] == "submit":
        command = [*command, "--data", str(data_root / "fer")]
    assert main(["jobs", *command]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "jobs.db is damaged" in err and "move jobs.db" in err


@pytest.mark.parametrize("page", PAGES)
def test_a_damaged_job_database_costs_the_train_page_only(
    tiny_registry: list[str], data_root: Path, isolated_home: Path, page: str
) -> None:
    damage(store_with_history(isolated_home, jobs=5).path, "random bytes")
    app = open_page(page)
    assert not app.exception, [e.value for e in app.exception]
    if page == "pages/train.py":
        (error,) = app.error
        assert "jobs.db is damaged" in error.value and "move jobs.db" in error.value
        assert not app.button, "no form over a job store that cannot take a job"
    else:
        assert not app.error, [e.value for e in app.error]
        assert app.selectbox(key="model_a").value == "tiny_a"
    if page == "pages/analyze.py":
        assert {m.label: m.value for m in app.metric}["Faces found"] == "1"


@pytest.mark.parametrize("how", DAMAGE)
def test_the_train_page_says_what_to_do_about_a_damaged_job_database(
    data_root: Path, isolated_home: Path, how: str
) -> None:
    damage(store_with_history(isolated_home).path, how)
    app = open_page("pages/train.py")
    assert not app.exception, [e.value for e in app.exception]
    (error,) = app.error
    assert "jobs.db is damaged" in error.value and "jobs worker --stop" in error.value


def test_a_damaged_queue_refuses_a_job_before_it_is_recorded(
    data_root: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs_dir(isolated_home).mkdir(parents=True)
    (jobs_dir(isolated_home) / "queue.db").write_bytes(random.Random(1).randbytes(8192))
    assert main(["jobs", "submit", "--epochs", "1", "--data", str(data_root / "fer")]) == 2
    assert "queue.db is damaged" in one_error_line(capsys.readouterr().err)
    assert JobStore().list_jobs() == []


def run_worker(**environment: str) -> subprocess.CompletedProcess[str]:
    """`python -m core jobs worker` in the foreground, as the app starts it."""
    return subprocess.run(
        [sys.executable, "-m", "core", "jobs", "worker"],
        cwd=REPO,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def queued_job(data_root: Path) -> int:
    store = JobStore()
    job = store.create("waiting", {"data": str(data_root / "fer"), "epochs": 1})
    store.set_queue_id(job.id, queue.enqueue(job.id))
    return job.id


def test_a_worker_that_cannot_start_fails_the_waiting_jobs_with_the_reason(data_root: Path) -> None:
    job_id = queued_job(data_root)
    finished = run_worker(FER_STUDIO_MAX_JOBS="abc")
    assert finished.returncode == 2
    assert "error: FER_STUDIO_MAX_JOBS='abc' is not allowed" in finished.stderr
    job = JobStore().get(job_id)
    assert job.status == FAILED and job.resumable
    assert "FER_STUDIO_MAX_JOBS='abc' is not allowed: use a whole number, 1 or more" in (job.error or "")


def test_a_worker_over_a_damaged_queue_fails_the_waiting_jobs(data_root: Path, isolated_home: Path) -> None:
    job_id = queued_job(data_root)
    queue._queues.clear()  # this process's huey keeps the old file open; the worker opens it anew
    damage(jobs_dir(isolated_home) / "queue.db", "random bytes")
    assert run_worker().returncode == 2
    job = JobStore().get(job_id)
    assert job.status == FAILED and "queue.db is damaged" in (job.error or "")


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_a_bad_setting_is_named_where_the_user_looks(
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    allowed = settings.SETTINGS[name].allowed
    with pytest.raises(SettingsError, match=re.escape(f"{name}='{value}' is not allowed: use {allowed}")):
        check_settings()
    assert main(["jobs", "submit", "--epochs", "1", "--data", str(data_root / "fer")]) == 2
    assert name in one_error_line(capsys.readouterr().err)
    assert JobStore().list_jobs() == [], "no job is queued for a worker that cannot start"
    with pytest.raises(SettingsError, match=name):
        ensure_worker()
    assert main(["jobs", "list"]) == 0
    assert capsys.readouterr().err.startswith(f"warning: {name}=")


def test_the_train_page_names_a_bad_setting_and_other_pages_work(
    tiny_registry: list[str], data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued_job(data_root)  # a job left waiting: app.py tries to start a worker for it
    monkeypatch.setenv("FER_STUDIO_MAX_JOBS", "abc")
    app = open_page("pages/train.py")
    assert not app.exception, [e.value for e in app.exception]
    (error,) = app.error
    assert "FER_STUDIO_MAX_JOBS='abc' is not allowed: use a whole number, 1 or more" in error.value
    analyze = open_page("pages/analyze.py")
    assert not analyze.exception and not analyze.error
    assert JobStore().list_jobs(QUEUED), "the job waits, visibly, for the setting to be fixed"


def test_good_settings_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in [
        ("FER_STUDIO_MAX_JOBS", "3"),
        ("FER_STUDIO_WORKER_IDLE", "0.5"),
        ("FER_STUDIO_WORKER_NICE", "0"),
        ("FER_STUDIO_TRAINING", "Off"),
    ]:
        monkeypatch.setenv(name, value)
    check_settings()
    assert (settings.max_running(), settings.worker_idle_seconds(), settings.training_enabled()) == (
        3,
        0.5,
        False,
    )
