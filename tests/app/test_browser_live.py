"""The Live page in a real headless Chromium with a fake camera playing the portrait: the stream comes
back with labelled boxes drawn on it.

The server offers only 127.0.0.1 and ignores the browser's other addresses
(FER_STUDIO_LIVE_LOOPBACK, core.video.ice), and no STUN/TURN server is set, so nothing leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness.browser import (
    body_text,
    chromium,
    missing_browser,
    open_page,
    running_app,
    screenshot,
    wait_for,
)
from tests.harness.live_camera import (
    AGREE,
    COUNT_BOX_PIXELS,
    DISAGREE,
    camera_flags,
    has_button,
    in_streamer,
    start_stream,
    write_y4m,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}"),
]


def test_the_live_stream_comes_back_with_labelled_boxes(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str]
) -> None:
    from selenium.webdriver.common.by import By

    flags = camera_flags(write_y4m(tmp_path / "portrait.y4m"))
    env = {"FER_STUDIO_LIVE_LOOPBACK": "1", "FER_STUDIO_ICE_SERVERS": ""}
    with (
        running_app(isolated_home, tmp_path / "streamlit.log", env=env) as url,
        chromium(flags=flags) as driver,
    ):
        open_page(driver, url, "live")
        assert "Press Start and allow the camera" in body_text(driver)
        start_stream(driver)
        counts: list[int] = []

        def boxes_seen(d) -> bool:
            counts.append(int(d.execute_script(COUNT_BOX_PIXELS, [AGREE, DISAGREE])))
            return counts[-1] > 300

        wait_for(driver, boxes_seen, 120, "a labelled box on the received stream")
        driver.switch_to.default_content()
        wait_for(driver, lambda d: "Live status:" in body_text(d), 60, "the live status line")
        # the status names the faces of the latest analysed frame: both models' labels, once a face is in it
        wait_for(driver, lambda d: "tiny_a:" in body_text(d) and "tiny_b:" in body_text(d), 60, "both labels")
        wait_for(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]'),
            30,
            "the live chart",
        )
        if os.environ.get("FER_STUDIO_LIVE_SHOT"):
            screenshot(driver, Path(os.environ["FER_STUDIO_LIVE_SHOT"]))
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_a_refused_or_missing_camera_is_explained(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str]
) -> None:

    cases = {
        "NotAllowedError": ("--use-fake-ui-for-media-stream=deny", "--use-fake-device-for-media-stream"),
        "NotFoundError": ("--use-fake-ui-for-media-stream",),  # allowed, but this machine has no camera
    }
    with running_app(isolated_home, tmp_path / "streamlit.log", env={"FER_STUDIO_LIVE_LOOPBACK": "1"}) as url:
        for error, flags in cases.items():
            with chromium(flags=flags) as driver:
                open_page(driver, url, "live")
                start_stream(driver)
                wait_for(driver, lambda d, e=error: e in body_text(d), 30, f"the browser's {error}")
                driver.switch_to.default_content()
                text = body_text(driver)
                assert f"{error} or" in text or f"says {error}" in text, "the page explains this error"
                assert "Live status:" not in text


def test_a_stream_stops_at_its_maximum_length(
    tmp_path: Path, isolated_home: Path, tiny_registry: list[str]
) -> None:
    from selenium.webdriver.common.by import By

    flags = camera_flags(write_y4m(tmp_path / "portrait.y4m", frames=10))
    env = {"FER_STUDIO_LIVE_LOOPBACK": "1", "FER_STUDIO_MAX_STREAM_SECONDS": "3"}
    with (
        running_app(isolated_home, tmp_path / "streamlit.log", env=env) as url,
        chromium(flags=flags) as driver,
    ):
        open_page(driver, url, "live")
        start_stream(driver)
        driver.switch_to.default_content()
        wait_for(driver, lambda d: "reached the limit of 3 s" in body_text(d), 120, "the end of the stream")

        # the page holds the stream stopped (desired_playing_state=False), without its Start and Stop buttons
        def stopped(d) -> bool:
            return in_streamer(
                d, lambda f: not has_button(f, "stop") and not f.find_elements(By.TAG_NAME, "video")
            )

        wait_for(driver, stopped, 30, "the stream stopped")
        button = next(
            b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Start a new stream"
        )
        button.click()
        wait_for(driver, lambda d: "reached the limit" not in body_text(d), 30, "a fresh stream offered")
        assert "Press Start and allow the camera" in body_text(driver)
        wait_for(
            driver, lambda d: in_streamer(d, lambda f: has_button(f, "start")), 30, "the Start button back"
        )
