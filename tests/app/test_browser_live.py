"""The Live page in a real headless Chromium with a fake camera playing the portrait: the stream comes
back with labelled boxes drawn on it.

The server offers only 127.0.0.1 and ignores the browser's other addresses
(FER_STUDIO_LIVE_LOOPBACK, core.ice), and no STUN/TURN server is set, so nothing leaves the machine.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

import av
import pytest

from core.browser import body_text, chromium, missing_browser, open_page, running_app, screenshot, wait_for
from core.live_peer import portrait_frames

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(missing_browser() is not None, reason=f"no headless browser: {missing_browser()}"),
]

AGREE, DISAGREE = (46, 204, 113), (241, 196, 15)  # core.pipeline.draw_labels' box colours
# Pixels near a box colour in the <video> the browser plays back (VP8 shifts colours a little).
COUNT_BOX_PIXELS = """
const video = document.querySelector('video');
if (!video || video.readyState < 2 || !video.videoWidth) return -1;
const canvas = document.createElement('canvas');
canvas.width = video.videoWidth; canvas.height = video.videoHeight;
const context = canvas.getContext('2d');
context.drawImage(video, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
const colours = arguments[0];
let count = 0;
for (let i = 0; i < data.length; i += 4) {
  for (const [r, g, b] of colours) {
    if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) {
      count++; break;
    }
  }
}
return count;
"""


def write_y4m(path: Path, frames: int = 30) -> Path:
    """The drifting portrait as a raw 4:2:0 Y4M file, Chromium's fake-camera format.

    The portrait on grey has no pixel within 40 of either box colour, so any seen are drawn boxes.
    """
    with av.open(str(path), "w", format="yuv4mpegpipe") as output:
        stream = output.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for array in islice(portrait_frames(30), frames):
            output.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        output.mux(stream.encode())
    return path


def has_button(driver, label: str) -> bool:
    from selenium.webdriver.common.by import By

    return any(b.text.strip().lower() == label for b in driver.find_elements(By.TAG_NAME, "button"))


def in_streamer(driver, check) -> bool:
    """check(driver) inside the streamlit-webrtc iframe, found afresh (a rerun may replace it)."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frames = driver.find_elements(By.CSS_SELECTOR, 'iframe[title*="webrtc"]')
    if not frames:
        return False
    driver.switch_to.frame(frames[0])
    try:
        return bool(check(driver))
    finally:
        driver.switch_to.default_content()


def enter_streamer(driver) -> None:
    """Switch into the streamlit-webrtc iframe once the page has drawn it (it comes after the page text)."""
    from selenium.webdriver.common.by import By

    selector = 'iframe[title*="webrtc"]'
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), 60, "the camera component")
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, selector))


def press(driver, label: str) -> None:
    """Click the streamlit-webrtc button with this label, inside the component's iframe."""
    from selenium.webdriver.common.by import By

    button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip().lower() == label)
    button.click()


def camera_flags(camera: Path) -> tuple[str, ...]:
    """Chromium's flags for a fake camera playing `camera` (a .y4m) without asking, over loopback ICE."""
    return (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    )


def start_stream(driver) -> None:
    """Inside the camera component, wait for Start and press it (the driver stays in the iframe)."""
    enter_streamer(driver)
    wait_for(driver, lambda d: has_button(d, "start"), 60, "the Start button")
    press(driver, "start")


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
