"""Deploy the app as a host does, then use it in headless Chromium: `make deploy-check`.

1. A fresh virtual environment in a temporary folder, `pip install -r requirements.txt` alone
   (nothing else), then `pip check`.
2. The host's own start command, `streamlit run app.py`, from that environment, on 127.0.0.1,
   with FER_STUDIO_PUBLIC=1 (public mode) and FER_STUDIO_TRAINING=off.
3. Headless Chromium uploads a photo and sees both shipped models' predictions and their
   Grad-CAM overlays; the Train page says training is off.

Prints one PASS or FAIL line per step and exits 1 when any step failed. The browser is driven
from the interpreter that runs this script (it needs selenium, a development tool); the app
runs only on what requirements.txt installed.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.browser import (
    REPO,
    body_text,
    chromium,
    free_port,
    missing_browser,
    open_page,
    serving,
    upload,
    wait_for,
    wait_until_idle,
)

REQUIREMENTS = REPO / "requirements.txt"
# What a host sets: public mode, and (until public mode implies it) training off.
HOST_ENV = {"FER_STUDIO_PUBLIC": "1", "FER_STUDIO_TRAINING": "off", "STREAMLIT_SERVER_HEADLESS": "true"}
SHIPPED_MODELS = ("baseline", "masked")
TRAINING_OFF = re.compile(r"training is (turned )?off", re.IGNORECASE)


class CheckFailed(Exception):
    """A step of the deploy check did not hold; the message says what was seen."""


def host_command(venv: Path, port: int) -> list[str]:
    """The start command of the Dockerfile and of Streamlit Community Cloud, on 127.0.0.1."""
    streamlit = str(venv / "bin" / "streamlit")
    return [streamlit, "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1"]


def folder_megabytes(folder: Path) -> float:
    """Size on disk of every file under `folder` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / 1e6


def peak_rss_megabytes(pid: int) -> float:
    """A live process's peak resident memory (VmHWM), NaN where /proc does not tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def install(venv: Path, python: str, log: Path) -> str:
    """Create `venv` and install requirements.txt into it, as a host does; then `pip check`."""
    started = time.monotonic()
    with open(log, "ab") as output:
        for command in (
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(REQUIREMENTS)],
        ):
            if subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode != 0:
                raise CheckFailed(f"`{' '.join(command)}` failed; see {log}")
    seconds = time.monotonic() - started
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise CheckFailed(f"pip check: {check.stdout.strip() or check.stderr.strip()}")
    return f"installed in {seconds:.0f} s, {folder_megabytes(venv):,.0f} MB on disk; pip check clean"


def both_models_seen(driver: Any, what: str) -> None:
    """Wait for both shipped models' Grad-CAM; their predictions must be on the page, no exception."""
    from selenium.webdriver.common.by import By

    wait_for(
        driver,
        lambda d: all(f"Grad-CAM · {name}" in body_text(d) for name in SHIPPED_MODELS),
        what=f"both Grad-CAM overlays of {what}",
    )
    wait_until_idle(driver)  # the run is over: what is drawn now is this run's result
    text = body_text(driver)
    for letter, name in zip("AB", SHIPPED_MODELS, strict=True):
        if f"Model {letter} · {name}" not in text:
            raise CheckFailed(f"no prediction of model {letter} ({name}) for {what}; page says: {text[:500]}")
        if f"Grad-CAM · {name}" not in text or "Grad-CAM: computing" in text:
            raise CheckFailed(f"no finished Grad-CAM of {name} for {what}; page says: {text[:500]}")
    if driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'):
        raise CheckFailed(f"the page shows an exception: {text[:500]}")


def analyze_sample(driver: Any, url: str) -> str:
    """The Analyze page opens on the sample portrait, read by both shipped models."""
    open_page(driver, url)
    both_models_seen(driver, "the sample")
    return f"the sample portrait: predictions and Grad-CAM of {' and '.join(SHIPPED_MODELS)}"


def analyze_upload(driver: Any, photo: Path) -> str:
    """Upload `photo` on Analyze; both shipped models' predictions and Grad-CAM must appear."""
    upload(driver, photo)
    wait_for(driver, lambda d: f"{photo.name}: boxes" in body_text(d), what="the uploaded photo's result")
    both_models_seen(driver, photo.name)
    return f"uploaded {photo.name}: predictions and Grad-CAM of {' and '.join(SHIPPED_MODELS)}"


def training_is_off(driver: Any, url: str) -> str:
    """The Train page must say that training is off."""
    open_page(driver, url, "train")
    wait_for(driver, lambda d: TRAINING_OFF.search(body_text(d)), timeout=60, what="'training is off'")
    return "the Train page says training is off"


def sample_photo(folder: Path) -> Path:
    """A portrait that is not the built-in sample: the astronaut, mirrored, as a JPEG."""
    from PIL import Image, ImageOps

    from ui.display import sample_png

    photo = folder / "portrait.jpg"
    ImageOps.mirror(Image.open(io.BytesIO(sample_png()))).convert("RGB").save(photo, quality=90)
    return photo


class Report:
    """Runs steps in order, prints one PASS/FAIL line each, and remembers which failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def fail(self, name: str, message: str) -> None:
        print(f"FAIL {name}: {message}", flush=True)
        self.failed.append(name)

    def step(self, name: str, action: Callable[[], str]) -> bool:
        """Run one step; True when it passed."""
        started = time.monotonic()
        try:
            detail = action()
        except Exception as error:  # noqa: BLE001 - every failure becomes one FAIL line
            self.fail(name, " ".join(str(error).split())[:800] or repr(error))
            return False
        print(f"PASS {name}: {detail} ({time.monotonic() - started:.0f} s)", flush=True)
        return True

    def finish(self, work: Path) -> int:
        """The closing line and the exit code: 0 when every step passed."""
        if self.failed:
            print(f"deploy check FAILED ({', '.join(self.failed)}); logs in {work}", flush=True)
            return 1
        print("deploy check PASSED", flush=True)
        return 0


def run_check(venv: Path, work: Path, install_first: bool, python: str) -> int:
    """All steps against `venv` (installed first when asked); 0 when every step passed."""
    report = Report()
    if install_first:
        if not report.step("install", lambda: install(venv, python, work / "install.log")):
            return report.finish(work)
    else:
        print(f"SKIP install: serving from the existing environment {venv}", flush=True)
    streamlit = venv / "bin" / "streamlit"
    problem = missing_browser() or (None if streamlit.exists() else f"{streamlit} does not exist")
    if problem is not None:
        report.fail("serve", problem)
        return report.finish(work)

    home = work / "home"
    home.mkdir(exist_ok=True)
    port = free_port()
    env = {**HOST_ENV, "FER_STUDIO_HOME": str(home)}
    started = time.monotonic()
    try:
        with (
            serving(host_command(venv, port), env, port, work / "streamlit.log", timeout=180) as (
                url,
                server,
            ),
            chromium() as driver,
        ):
            answered = time.monotonic() - started
            print(f"PASS serve: `streamlit run app.py` answers on {url} after {answered:.0f} s", flush=True)
            photo = sample_photo(work)
            if report.step("sample", lambda: analyze_sample(driver, url)):
                print(f"INFO server peak RSS after the sample: {peak_rss_megabytes(server.pid):,.0f} MB")
                report.step("upload", lambda: analyze_upload(driver, photo))
                print(f"INFO server peak RSS after the upload: {peak_rss_megabytes(server.pid):,.0f} MB")
            report.step("train", lambda: training_is_off(driver, url))
    except Exception as error:  # noqa: BLE001 - the server never came up, or the browser did not start
        report.fail("serve", " ".join(str(error).split())[:1500])
    return report.finish(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.deploy_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=None,
        help="serve from this existing environment instead (no install, kept); for reruns of the browser part",
    )
    parser.add_argument("--python", default="python3.11", help="interpreter of the fresh environment")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (venv, logs)")
    args = parser.parse_args(argv)
    if args.venv is not None and not (args.venv / "bin" / "python").exists():
        print(f"error: {args.venv} is not a virtual environment (no bin/python)", file=sys.stderr)
        return 2
    if args.venv is None and shutil.which(args.python) is None:
        print(f"error: {args.python} not found; pass --python", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="fer-deploy-check-"))
    started = time.monotonic()
    code = 1
    try:
        venv = args.venv.resolve() if args.venv is not None else work / "venv"
        code = run_check(venv, work, install_first=args.venv is None, python=args.python)
    finally:
        print(f"deploy check took {time.monotonic() - started:.0f} s", flush=True)
        if args.keep or code != 0:  # a failure keeps its logs to read
            print(f"kept {work}", flush=True)
        else:
            removing = time.monotonic()
            shutil.rmtree(work, ignore_errors=True)
            print(f"removed {work} in {time.monotonic() - removing:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
