"""Retake the screenshots in docs/screenshots/: `python -m tests.harness.screenshots` (or `make screenshots`).

Starts `streamlit run app.py` and drives headless Chromium over every page. Uses the
registry of FER_STUDIO_HOME (and the shipped models/); when it holds no model, two
randomly initialised demo models are registered in a temporary home and evaluated on
FER2013's val split (or on generated faces when the dataset is absent), so every chart
has something to show. Demo models' predictions mean nothing: say so wherever they appear.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from tests.harness.browser import (
    REPO,
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

PAGES = {"analyze": "", "saliency": "saliency", "clusters": "clusters", "models": "models", "train": "train"}
FER2013 = REPO.parent / "shared" / "datasets" / "fer2013"


def demo_registry(home: Path) -> list[str]:
    """Register two small randomly initialised models in `home` (predictions are meaningless)."""
    import torch

    from core.models.architectures import create_model
    from core.models.registry import save_model

    names = []
    for seed, (name, architecture, args, scheme) in enumerate(
        [("demo_baseline", "seed_cnn", {}, "baseline"), ("demo_masked", "vgg", {"widths": [8, 16]}, "masked")]
    ):
        torch.manual_seed(seed)
        card = {"architecture": architecture, "arch_args": args, "scheme": scheme}
        save_model(create_model(architecture, **args), card, name, home / "models")
        names.append(name)
    return names


def prepare_demo(home: Path) -> None:
    """Two demo models in `home`, each evaluated (and recorded in its card) on some labelled faces."""
    os.environ["FER_STUDIO_HOME"] = str(home)
    from core.evaluation.record import evaluate_and_record

    data, split = (str(FER2013), "val") if (FER2013 / "val").is_dir() else (None, "val")
    if data is None:
        from tests.helpers import write_fer_folders

        data = str(write_fer_folders(home / "generated-faces", count_per_class=20))
    for name in demo_registry(home):
        evaluate_and_record(name, data, split)
        print(f"registered and evaluated demo model {name} on {data} ({split})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.screenshots", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument(
        "--home", type=Path, default=None, help="FER_STUDIO_HOME to show (default: the current one)"
    )
    parser.add_argument("--demo", action="store_true", help="always use freshly registered demo models")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args(argv)

    reason = missing_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    if args.home:
        os.environ["FER_STUDIO_HOME"] = str(args.home)
    from core.models.registry import list_models
    from core.paths import home_dir

    with tempfile.TemporaryDirectory(prefix="fer-screenshots-") as scratch:
        home = home_dir()
        if args.demo or not list_models():
            home = Path(scratch) / "home"
            prepare_demo(home)
        log = Path(scratch) / "streamlit.log"
        with running_app(home, log) as url, chromium(width=args.width) as driver:
            for name, path in PAGES.items():
                open_page(driver, url, path)
                if name == "clusters":
                    wait_for(driver, lambda d: "Each region removed" in body_text(d), what="the regions")
                if name == "analyze":
                    wait_for(
                        driver, lambda d: "How much the two maps agree" in body_text(d), what="the comparison"
                    )
                    wait_until_idle(driver)
                print(screenshot(driver, args.out / f"{name}.png", width=args.width))
                if name == "analyze":  # the comparison of the two maps alone, for the README
                    print(block_screenshot(driver, "Where the two models look", args.out / "compare.png"))
                driver.set_window_size(args.width, 1000)
            # The Analyze page after a real upload (a mirrored sample, to show the upload path).
            from ui.display import sample_png

            photo = Path(scratch) / "portrait.jpg"
            Image.open(io.BytesIO(sample_png())).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo)
            open_page(driver, url, "")
            upload(driver, photo)
            wait_for(driver, lambda d: "portrait.jpg: boxes" in body_text(d), what="the upload's result")
            wait_until_idle(driver)
            print(screenshot(driver, args.out / "analyze-upload.png", width=args.width))
            # The Video page with a generated clip: the portrait's face walking across the frame.
            from selenium.webdriver.common.by import By

            open_page(driver, url, "video")
            upload(driver, walking_clip(Path(scratch) / "walk.mp4"))
            wait_for(driver, lambda d: "Analyse" in body_text(d), what="the Analyse button")
            next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Analyse").click()
            wait_for(driver, lambda d: "Face track" in body_text(d), what="the video's tracks", timeout=300)
            wait_until_idle(driver)
            print(screenshot(driver, args.out / "video.png", width=args.width))
        print(live_screenshot(home, Path(scratch), args.out / "live.png", args.width))
    return 0


def block_screenshot(driver: Any, heading: str, path: Path) -> Path:
    """A PNG of the smallest block of the page holding `heading` (the page already stretched to its
    whole height by screenshot())."""
    from selenium.webdriver.common.by import By

    blocks = [
        block
        for block in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVerticalBlock"]')
        if heading in block.text
    ]
    smallest = min(blocks, key=lambda block: len(block.text))
    path.parent.mkdir(parents=True, exist_ok=True)
    smallest.screenshot(str(path))
    return path


def analysed_frames(text: str) -> int:
    """The count in the Live page's status line ("Live status: N frames analysed, ...")."""
    import re

    found = re.search(r"Live status: (\d+) frames analysed", text)
    return int(found.group(1)) if found else 0


def live_screenshot(home: Path, scratch: Path, out: Path, width: int) -> Path:
    """The Live page streaming Chromium's fake camera (the drifting portrait) through both models,
    over loopback-only ICE, as tests/app/test_browser_live.py does."""
    from tests.harness.live_camera import (
        AGREE,
        COUNT_BOX_PIXELS,
        DISAGREE,
        camera_flags,
        start_stream,
        write_y4m,
    )

    # One whole period of the portrait's drift (2π s at 30 fps), so Chromium's looping of the file
    # does not make the face jump (a jump leaves the last labels a moment behind the face).
    flags = camera_flags(write_y4m(scratch / "portrait.y4m", frames=188))
    env = {"FER_STUDIO_LIVE_LOOPBACK": "1", "FER_STUDIO_ICE_SERVERS": ""}
    with (
        running_app(home, scratch / "streamlit-live.log", env=env) as url,
        chromium(width=width, flags=flags) as driver,
    ):
        open_page(driver, url, "")  # the landing page first: the sidebar then has the model pickers
        open_page(driver, url, "live")
        start_stream(driver)
        wait_for(
            driver,
            lambda d: int(d.execute_script(COUNT_BOX_PIXELS, [AGREE, DISAGREE])) > 300,
            120,
            "a labelled box on the stream",
        )
        driver.switch_to.default_content()
        wait_for(driver, lambda d: analysed_frames(body_text(d)) >= 60, 120, "a steady stream")
        from selenium.webdriver.common.by import By

        wait_for(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]'),
            30,
            "the chart",
        )
        return screenshot(driver, out, width=width)


def walking_clip(path: Path, seconds: float = 4.0, fps: int = 15) -> Path:
    """A 640x480 clip of the sample portrait's face moving across a grey frame."""
    from core.video.codec import VideoWriter
    from ui.display import sample_png

    portrait = Image.open(io.BytesIO(sample_png())).convert("RGB")
    face = portrait.crop((130, 20, 320, 230)).resize((160, 176))
    frames = round(seconds * fps)
    with VideoWriter(path, fps, 640, 480) as writer:
        for index in range(frames):
            frame = Image.new("RGB", (640, 480), (128, 128, 128))
            frame.paste(face, (60 + round(400 * index / frames), 150))
            writer.write(frame)
    return path


if __name__ == "__main__":
    sys.exit(main())
