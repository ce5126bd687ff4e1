"""What a host installs: requirements.txt alone resolves to a working app, without development tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.harness.browser import REPO

DEV_TOOLS = {"pytest", "ruff", "selenium", "mypy", "hypothesis"}


def requirement_names(path: Path) -> tuple[set[str], list[str]]:
    """The package names a requirements file lists, and its option lines (`-r ...`)."""
    names, options = set(), []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-"):
            options.append(line)
        elif line:
            names.add(Requirement(line).name.lower())
    return names, options


def test_runtime_requirements_carry_no_development_tools() -> None:
    runtime, runtime_options = requirement_names(REPO / "requirements.txt")
    dev, dev_options = requirement_names(REPO / "requirements-dev.txt")
    assert not runtime & DEV_TOOLS, (
        "a host installs requirements.txt: tests and lint belong in requirements-dev.txt"
    )
    assert runtime_options == [], "requirements.txt must install with plain `pip install -r` on any host"
    assert {"facenet-pytorch", "torch", "torchvision", "streamlit", "grad-cam"} <= runtime
    assert dev_options == ["-r requirements.txt", "-r requirements-ray.txt"] and dev >= DEV_TOOLS
    ray_names, _ = requirement_names(REPO / "requirements-ray.txt")  # optional (issue 23): not a host's
    assert ray_names == {"ray"} and "ray" not in runtime


@pytest.mark.slow
def test_requirements_resolve_alone_with_the_face_detector(tmp_path: Path) -> None:
    """pip resolves requirements.txt by itself (no --no-deps step) to a set holding the detector."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "-r", str(REPO / "requirements.txt")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    versions = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert versions["facenet-pytorch"] == "2.5.3"
    assert versions["torch"].split("+")[0] == "2.14.1"
    assert versions["torchvision"].split("+")[0] == "0.29.1"
    assert {"streamlit", "grad-cam", "opencv-python-headless", "huey"} <= versions.keys()
    assert not versions.keys() & DEV_TOOLS
