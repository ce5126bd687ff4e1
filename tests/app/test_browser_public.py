"""Public mode in a real headless Chromium: the app as a host starts it, an upload over 1 MB, the pages.

The server runs with an audit hook (a sitecustomize.py on its PYTHONPATH) that logs every
unnamed temporary file it creates: Starlette spools a multipart upload over 1 MB into one
unless app.py keeps uploads in memory, and the Privacy text says photos never reach disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.harness.browser import (
    body_text,
    chromium,
    missing_browser,
    open_page,
    running_app,
    upload,
    wait_for,
    wait_until_idle,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}"),
]

TEMPFILE_HOOK = """
import os, sys

_LOG = os.environ["FER_STUDIO_TEMPFILE_LOG"]
_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _log_temporary_files(event, args):
    unnamed = event == "open" and _TMPFILE and isinstance(args[2], int) and args[2] & _TMPFILE == _TMPFILE
    if unnamed or event == "tempfile.mkstemp":
        with open(_LOG, "a") as log:
            log.write(f"{event} {args[0]}\\n")


sys.addaudithook(_log_temporary_files)
"""


def test_public_demo_in_the_browser(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str], astronaut: Image.Image, fer_folders: Path
) -> None:
    from selenium.webdriver.common.by import By

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TEMPFILE_HOOK)
    tempfiles = tmp_path / "tempfiles.log"
    tempfiles.write_text("")
    photo = tmp_path / "portrait.png"
    astronaut.resize((1200, 1200)).save(photo)
    assert photo.stat().st_size > 2**20, "large enough for Starlette to spool it"
    env = {
        "FER_STUDIO_PUBLIC": "1",
        "FER_STUDIO_DATA_ROOTS": str(fer_folders.parent),
        "PYTHONPATH": str(hook),
        "FER_STUDIO_TEMPFILE_LOG": str(tempfiles),
    }
    with running_app(isolated_home, tmp_path / "streamlit.log", env=env) as url, chromium() as driver:
        open_page(driver, url)
        text = body_text(driver)
        assert "Public demo limits" in text and "Up to 3 photos per upload" in text
        before = tempfiles.read_text()

        upload(driver, photo)
        wait_for(driver, lambda d: "portrait.png: boxes" in body_text(d), what="the uploaded photo's result")
        wait_until_idle(driver)
        text = body_text(driver)
        assert "Faces found" in text and "Grad-CAM · tiny_a" in text and "Grad-CAM · tiny_b" in text
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert tempfiles.read_text() == before, "the upload never went to a temporary file"

        open_page(driver, url, "models")
        driver.find_element(By.XPATH, "//*[contains(text(), 'Evaluate a model on a dataset')]").click()
        wait_until_idle(driver)
        text = body_text(driver)
        dataset = driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Dataset"]')
        assert dataset.get_attribute("value") == "fer", "the listed dataset is offered"
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stTextInput"]'), "no path to type"

        open_page(driver, url, "train")
        assert "Training is turned off" in body_text(driver)
