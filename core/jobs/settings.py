"""Settings of the job system, all read from the environment at call time.

FER_STUDIO_HOME        data folder; jobs live in $FER_STUDIO_HOME/jobs (see core.home)
FER_STUDIO_TRAINING    "off" (or 0/false/no) turns training off; public mode (FER_STUDIO_PUBLIC=1) implies it
FER_STUDIO_MAX_JOBS    trainings that may run at once (default 1); the rest wait in order
FER_STUDIO_DATA_ROOTS  folders that datasets must lie in, separated by os.pathsep
                       (default: ../shared/datasets next to the repository and $FER_STUDIO_HOME/datasets)
FER_STUDIO_WORKER_IDLE seconds an idle worker waits before it exits (default 600; 0: never)
FER_STUDIO_WORKER_NICE niceness added to the worker, so trainings yield the CPU to the app (default 10)
"""

from __future__ import annotations

import os
from pathlib import Path

from core.home import home_dir
from core.public import public_mode

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_OFF = {"off", "0", "false", "no", "disabled"}


class JobError(ValueError):
    """A request the job system refuses (bad parameters, unknown job, wrong state); one clear line."""


class TrainingDisabled(JobError):
    """Training is turned off for this deployment."""


def jobs_dir() -> Path:
    """$FER_STUDIO_HOME/jobs: the job database, the queue, the worker lock and one folder per job."""
    return home_dir().resolve() / "jobs"


def training_enabled() -> bool:
    """False when FER_STUDIO_TRAINING is off or public mode is on."""
    if public_mode():
        return False
    return os.environ.get("FER_STUDIO_TRAINING", "on").strip().lower() not in _OFF


def training_off_reason() -> str:
    """Which setting turned training off, for messages."""
    return "FER_STUDIO_PUBLIC=1" if public_mode() else "FER_STUDIO_TRAINING=off"


def require_training() -> None:
    if not training_enabled():
        raise TrainingDisabled(f"training is turned off on this deployment ({training_off_reason()})")


def max_running() -> int:
    """How many trainings may run at once (FER_STUDIO_MAX_JOBS, default 1)."""
    value = os.environ.get("FER_STUDIO_MAX_JOBS", "1")
    try:
        return max(int(value), 1)
    except ValueError:
        raise JobError(f"FER_STUDIO_MAX_JOBS must be a whole number, not {value!r}") from None


def worker_idle_seconds() -> float:
    """How long an idle worker waits for new jobs before it exits (0: it never does)."""
    return float(os.environ.get("FER_STUDIO_WORKER_IDLE", "600"))


def worker_niceness() -> int:
    return int(os.environ.get("FER_STUDIO_WORKER_NICE", "10"))


def data_roots() -> list[Path]:
    """Folders that training datasets must lie in."""
    configured = os.environ.get("FER_STUDIO_DATA_ROOTS")
    if configured:
        return [Path(p).expanduser().resolve() for p in configured.split(os.pathsep) if p.strip()]
    return [(REPO_ROOT.parent / "shared" / "datasets").resolve(), (home_dir() / "datasets").resolve()]


def check_data_path(path: str | Path) -> Path:
    """The absolute path of a dataset if it exists inside a data root; JobError otherwise."""
    resolved = Path(path).expanduser().resolve()
    roots = data_roots()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise JobError(f"dataset {path} is outside the data roots ({allowed}); see FER_STUDIO_DATA_ROOTS")
    if not resolved.exists():
        raise JobError(f"dataset {path}: no such file or folder")
    return resolved


def dataset_choices() -> list[Path]:
    """Datasets found in the data roots: their sub-folders and .csv files."""
    found: list[Path] = []
    for root in data_roots():
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() or entry.suffix.lower() == ".csv":
                found.append(entry)
    return found
