"""The app in a real headless Chromium: start `streamlit run app.py`, upload a photo, see the result."""

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
    screenshot,
    upload,
    wait_for,
    wait_until_idle,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}"),
]


def test_upload_a_photo_and_see_every_result(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str], astronaut: Image.Image
) -> None:
    from selenium.webdriver.common.by import By

    photo = tmp_path / "portrait.jpg"
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    with running_app(isolated_home, tmp_path / "streamlit.log") as url, chromium() as driver:
        open_page(driver, url)
        text = body_text(driver)
        assert "Analyze" in text and "Privacy" in text
        assert "Model A" in text and "Model B" in text, "the sample is analysed before any upload"

        upload(driver, photo)
        wait_for(driver, lambda d: "portrait.jpg: boxes" in body_text(d), what="the uploaded photo's result")
        wait_until_idle(driver)
        text = body_text(driver)
        assert "Face 1" in text and "Faces found" in text
        assert "Grad-CAM · " in text and "Grad-CAM: computing" not in text, "the overlays replace their slots"
        assert driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]'), "the probability chart"
        assert len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDownloadButton"]')) == 3
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        shot = screenshot(driver, tmp_path / "analyze-upload.png")
        assert shot.stat().st_size > 20_000
        assert Image.open(shot).size[0] >= 1000
