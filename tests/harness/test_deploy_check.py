"""`make deploy-check`: the host's own command in public mode, driven by headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import deploy_check
from tests.harness.browser import missing_browser


def test_deploy_check_fails_plainly_without_a_working_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a failed check keeps its folder: keep it here
    empty = tmp_path / "empty-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(empty)], check=True)
    assert deploy_check.main(["--venv", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "FAIL serve:" in out and "bin/streamlit does not exist" in out and "deploy check FAILED" in out
    assert "PASS" not in out and "Traceback" not in out

    assert deploy_check.main(["--venv", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}")
def test_deploy_check_passes_on_the_host_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`streamlit run app.py` in public mode, served from this environment: upload, both models, Grad-CAM."""
    monkeypatch.delenv("FER_STUDIO_SHIPPED_MODELS")  # the check needs the shipped models, as a host has them
    assert deploy_check.main(["--venv", sys.prefix]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    for step in ("serve", "sample", "upload", "train"):
        assert f"PASS {step}:" in out
    assert "FAIL" not in out and "deploy check PASSED" in out
