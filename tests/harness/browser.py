"""Drive the real app in headless Chromium: start `streamlit run app.py`, open pages, upload, screenshot.

Uses Debian's chromium and chromium-driver (/usr/bin); nothing here downloads a browser
or a driver. Shared by the browser test, `python -m tests.harness.screenshots` and `make bench`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.paths import REPO_ROOT

REPO = REPO_ROOT
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def missing_browser() -> str | None:
    """Why the browser cannot be driven here, or None when it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is absent (apt-get install -y chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -r requirements.txt)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AppServer:
    """A running app: its URL and its server process (for its pid and memory)."""

    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def app_server(
    home: Path,
    log: Path,
    port: int | None = None,
    timeout: float = 90,
    host: bool = False,
    env: Mapping[str, str] | None = None,
) -> Iterator[AppServer]:
    """The app on 127.0.0.1 with FER_STUDIO_HOME=home (and `env` added), stopped on exit.

    Started as `make run` starts it (ui.launch), or with `host` as a hosting platform does:
    `streamlit run app.py`, nothing warmed up before the first visitor.
    """
    port = port or free_port()
    entry = ["streamlit", "run", "app.py"] if host else ["ui.launch"]  # ui.launch: what `make run` starts
    command = [
        sys.executable, "-m", *entry,
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with serving(command, {"FER_STUDIO_HOME": str(home), **(env or {})}, port, log, timeout) as (
        url,
        process,
    ):
        yield AppServer(url, process)


@contextmanager
def running_app(
    home: Path,
    log: Path,
    port: int | None = None,
    timeout: float = 90,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The app as `make run` starts it (ui.launch), on 127.0.0.1 with FER_STUDIO_HOME=home; yields its URL.

    env adds to (or overrides) this process's environment, e.g. {"FER_STUDIO_PUBLIC": "1"}.
    """
    with app_server(home, log, port, timeout, env=env) as server:
        yield server.url


@contextmanager
def serving(
    command: list[str], env: Mapping[str, str], port: int, log: Path, timeout: float = 90
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a Streamlit server command from the repository until its health check answers "ok".

    `env` is added to this process's environment. Yields the URL and the server process;
    stops the server on exit. Raises RuntimeError if it exits, TimeoutError if it never answers.
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"streamlit exited with {process.returncode}: {log.read_text()[-2000:]}"
                    )
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")
                time.sleep(0.5)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def chromium(width: int = 1400, height: int = 1000, flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """Headless Chromium through chromedriver, with a fresh profile and `flags` added; yields a selenium driver."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *flags):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            driver.set_window_size(width, height)
            yield driver
        finally:
            driver.quit()


def body_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def wait_until_idle(driver: Any, timeout: float = 180, settle: float = 1.5) -> None:
    """Wait until the app has drawn something and no script run or spinner is in progress."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        busy = driver.find_elements(
            By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'
        ) or driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        drawn = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"] h1')
        if drawn and not busy:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None
        time.sleep(0.25)
    raise TimeoutError(f"the app was still busy after {timeout:.0f} s")


def wait_for(driver: Any, condition: Any, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(driver):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not met within {timeout:.0f} s; page says: {body_text(driver)[:800]}")


def open_page(driver: Any, url: str, path: str = "") -> None:
    """Open a page of the app by its URL path ("" for the landing page) and wait for it."""
    driver.get(f"{url}/{path}")
    wait_until_idle(driver)


def upload(driver: Any, *files: Path) -> None:
    """Put files into the page's first file uploader."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.CSS_SELECTOR, 'input[type="file"]')
    field.send_keys("\n".join(str(f) for f in files))


def screenshot(driver: Any, path: Path, width: int = 1400, max_height: int = 6000) -> Path:
    """Save a PNG of the whole page: the window is stretched to the main area's height first."""
    measure = (
        "const block = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        "if (!block) return document.body.scrollHeight;"
        "return Math.ceil(block.getBoundingClientRect().top + block.scrollHeight);"
    )
    height = 0
    for _ in range(5):  # charts re-lay themselves out at a new size: measure until it settles
        measured = int(driver.execute_script(measure))
        if measured == height:
            break
        height = measured
        driver.set_window_size(width, min(height + 60, max_height))
        time.sleep(1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
