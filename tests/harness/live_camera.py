"""Chromium's fake camera for the Live page: the drifting portrait as a Y4M file, the browser flags
that play it over loopback ICE, and the streamlit-webrtc component's buttons and box-colour count.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import av

from tests.harness.browser import wait_for
from tests.harness.live_peer import portrait_frames

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
