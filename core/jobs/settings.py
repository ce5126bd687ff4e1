"""Settings of the job system, all read from the environment at call time.

FER_STUDIO_HOME        data folder; jobs live in $FER_STUDIO_HOME/jobs (see core.paths)
FER_STUDIO_TRAINING    "off" (or 0/false/no) turns training off; public mode (FER_STUDIO_PUBLIC=1) implies it
FER_STUDIO_MAX_JOBS    trainings that may run at once (default 1); the rest wait in order
FER_STUDIO_DATA_ROOTS  folders that datasets must lie in, separated by os.pathsep
                       (default: ../shared/datasets next to the repository and $FER_STUDIO_HOME/datasets)
FER_STUDIO_WORKER_IDLE seconds an idle worker waits before it exits (default 600; 0: never)
FER_STUDIO_WORKER_NICE niceness added to the worker, so trainings yield the CPU to the app (default 10)
FER_STUDIO_JOBS        where jobs run: local (default), ray (the cluster of RAY_ADDRESS, else this machine's),
                       or a Ray dashboard address such as http://head:8265 (core.scale.ray_jobs; issue 23)
FER_STUDIO_RAY_WORKERS training workers per job on Ray (default 1; 2 or more: DDP with Ray Train)

SETTINGS says what each allows; check_settings() reads them all and names every bad one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.paths import REPO_ROOT, home_dir
from core.serving.public import public_mode

_ON = {"on", "1", "true", "yes", "enabled"}
_OFF = {"off", "0", "false", "no", "disabled"}


class JobError(ValueError):
    """A request the job system refuses (bad parameters, unknown job, wrong state); one clear line."""


class TrainingDisabled(JobError):
    """Training is turned off for this deployment."""


def jobs_dir() -> Path:
    """$FER_STUDIO_HOME/jobs: the job database, the queue, the worker lock and one folder per job."""
    return home_dir().resolve() / "jobs"


class SettingsError(JobError):
    """An environment setting has a value the job system cannot use; the message names it and what is allowed."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, the values it allows (in words) and how to read it."""

    name: str
    default: str
    allowed: str
    parse: Callable[[str], Any]  # raises ValueError for a value that is not allowed


def _switch(value: str) -> bool:
    if value.lower() in _ON:
        return True
    if value.lower() in _OFF:
        return False
    raise ValueError(value)


def _number(minimum: float, maximum: float | None = None, whole: bool = False) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = int(value) if whole else float(value)
        if not math.isfinite(number) or number < minimum or (maximum is not None and number > maximum):
            raise ValueError(value)
        return number

    return parse


def _backend(value: str) -> str:
    """local, ray, or an address with a scheme (http://, https://, ray://)."""
    if value.lower() in ("local", "ray") or "://" in value:
        return value.lower() if "://" not in value else value
    raise ValueError(value)


def _folders(value: str) -> list[Path]:
    folders = [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]
    if not folders:
        raise ValueError(value)
    return folders


SETTINGS = {
    setting.name: setting
    for setting in (
        Setting("FER_STUDIO_TRAINING", "on", "on or off (or 1/0, true/false, yes/no)", _switch),
        Setting("FER_STUDIO_MAX_JOBS", "1", "a whole number, 1 or more", _number(1, whole=True)),
        Setting("FER_STUDIO_WORKER_IDLE", "600", "seconds, 0 or more (0: never exit)", _number(0)),
        Setting("FER_STUDIO_WORKER_NICE", "10", "a whole number from 0 to 19", _number(0, 19, whole=True)),
        Setting("FER_STUDIO_DATA_ROOTS", "", f"one or more folders separated by {os.pathsep!r}", _folders),
        # issue 23: jobs on Ray
        Setting(
            "FER_STUDIO_JOBS", "local", "local, ray, or a Ray dashboard address (http://HOST:8265)", _backend
        ),
        Setting("FER_STUDIO_RAY_WORKERS", "1", "a whole number, 1 or more", _number(1, whole=True)),
    )
}


def setting(name: str) -> Any:
    """The value of one job setting from the environment (its default when unset or empty)."""
    spec = SETTINGS[name]
    raw = os.environ.get(name, "").strip()
    try:
        return spec.parse(raw or spec.default)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not allowed: use {spec.allowed}") from None


def check_settings() -> None:
    """Read every job setting once; SettingsError naming each bad variable and what it allows."""
    problems = []
    for name, spec in SETTINGS.items():
        if spec.default or os.environ.get(name, "").strip():
            try:
                setting(name)
            except SettingsError as err:
                problems.append(str(err))
    if problems:
        raise SettingsError("; ".join(problems))


def training_enabled() -> bool:
    """False when FER_STUDIO_TRAINING is off or public mode is on."""
    return not public_mode() and bool(setting("FER_STUDIO_TRAINING"))


def training_off_reason() -> str:
    """Which setting turned training off, for messages."""
    return "FER_STUDIO_PUBLIC=1" if public_mode() else "FER_STUDIO_TRAINING=off"


def require_training() -> None:
    """Every setting valid and training on; SettingsError or TrainingDisabled otherwise."""
    check_settings()
    if not training_enabled():
        raise TrainingDisabled(f"training is turned off on this deployment ({training_off_reason()})")


def max_running() -> int:
    """How many trainings may run at once (FER_STUDIO_MAX_JOBS, default 1)."""
    return int(setting("FER_STUDIO_MAX_JOBS"))


def worker_idle_seconds() -> float:
    """How long an idle worker waits for new jobs before it exits (0: it never does)."""
    return float(setting("FER_STUDIO_WORKER_IDLE"))


def worker_niceness() -> int:
    return int(setting("FER_STUDIO_WORKER_NICE"))


def data_roots() -> list[Path]:
    """Folders that training datasets must lie in."""
    if os.environ.get("FER_STUDIO_DATA_ROOTS", "").strip():
        return setting("FER_STUDIO_DATA_ROOTS")
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
