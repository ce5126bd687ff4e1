"""The saliency comparison in a real headless Chromium: Analyze's two maps compared, the Saliency page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.browser import (
    body_text,
    chromium,
    missing_browser,
    open_page,
    running_app,
    wait_for,
    wait_until_idle,
)
from tests.helpers import store_small_study

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}"),
]


def click(driver, text: str) -> None:  # type: ignore[no-untyped-def]
    """Click the button (or segmented-control option) showing `text`."""
    from selenium.webdriver.common.by import By

    next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == text).click()


def no_exception(driver) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    shown = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not shown, [element.text for element in shown]


def test_compare_two_maps_then_open_the_saliency_page(
    tmp_path: Path, isolated_home: Path, small_pair: list[str]
) -> None:
    from selenium.webdriver.common.by import By

    store_small_study(small_pair, tmp_path)
    with running_app(isolated_home, tmp_path / "streamlit.log") as url, chromium() as driver:
        open_page(driver, url)
        wait_for(driver, lambda d: "How much the two maps agree" in body_text(d), what="the comparison")
        wait_until_idle(driver)
        text = body_text(driver)
        assert "Spearman ρ" in text and "Top-20 % IoU" in text
        assert "Model A · small_a on the whole photo" in text
        charts = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')
        assert len(charts) >= 4, "probabilities, the maps, the part shares, the deletion curves"
        no_exception(driver)

        click(driver, "Swipe")
        wait_for(driver, lambda d: "Swipe: A on the left" in body_text(d), what="the swipe slider")
        wait_until_idle(driver)
        click(driver, "Flip A ⇄ B")
        wait_for(driver, lambda d: "B · small_b" in body_text(d) and "Show" in body_text(d), what="the flip")
        wait_until_idle(driver)
        no_exception(driver)

        open_page(driver, url, "saliency")
        wait_for(driver, lambda d: "The paper's claim, tested" in body_text(d), what="the stored study")
        wait_until_idle(driver)
        text = body_text(driver)
        assert "Are the maps faithful?" in text and "Sanity check" in text
        assert len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')) == 4
        click(driver, "Correctly classified only")
        wait_until_idle(driver)
        no_exception(driver)
