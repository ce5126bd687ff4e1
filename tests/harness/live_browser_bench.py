"""The Live page end to end in a real browser: frames analysed per second and latency as the page's
status line reports them, and where the CPU goes (the app's server against Chromium).

    python -m tests.harness.live_browser_bench [--seconds 20] [--nice-browser]

The app runs as `make run` starts it, with this machine's registered models; headless Chromium's
fake camera plays the drifting portrait (640x480, 30 fps) over loopback-only ICE, as
tests/app/test_browser_live.py does. --nice-browser runs Chromium at the lowest CPU priority, so the
figures show what the server does when the browser is on another machine, as for a visitor,
while the browser still decodes and plays the stream. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from tests.harness.browser import app_server, body_text, chromium, missing_browser, open_page, wait_for
from tests.harness.live_camera import camera_flags, start_stream, write_y4m
from tests.harness.loadtest import process_tree
from tests.harness.screenshots import analysed_frames


def status_latency_ms(text: str) -> float | None:
    found = re.search(r"latency (\d+) ms", text)
    return float(found.group(1)) if found else None


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its live descendants, from /proc."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def lowest_priority(pid: int) -> None:
    """The process and its descendants at nice 19."""
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, member, 19)


def measure(seconds: float, nice_browser: bool) -> dict[str, float]:
    """One run: the page's analysed frames/s and median latency, and CPU per side, over `seconds`."""
    from core.paths import home_dir

    with tempfile.TemporaryDirectory(prefix="fer-live-bench-") as scratch:
        flags = camera_flags(write_y4m(Path(scratch) / "portrait.y4m", frames=188))
        env = {"FER_STUDIO_LIVE_LOOPBACK": "1", "FER_STUDIO_ICE_SERVERS": ""}
        with (
            app_server(home_dir(), Path(scratch) / "streamlit.log", env=env) as app,
            chromium(flags=flags) as driver,
        ):
            browser, server = driver.service.process.pid, app.process.pid
            if nice_browser:
                lowest_priority(browser)
            open_page(driver, app.url, "")
            open_page(driver, app.url, "live")
            start_stream(driver)
            driver.switch_to.default_content()
            wait_for(driver, lambda d: analysed_frames(body_text(d)) >= 60, 180, "a steady stream")
            if nice_browser:  # the renderers started with the page
                lowest_priority(browser)
            first, started = analysed_frames(body_text(driver)), time.monotonic()
            server_cpu, browser_cpu = tree_cpu_seconds(server), tree_cpu_seconds(browser)
            time.sleep(seconds)
            text = body_text(driver)
            elapsed = time.monotonic() - started
            server_used = tree_cpu_seconds(server) - server_cpu
            browser_used = tree_cpu_seconds(browser) - browser_cpu
    return {
        "seconds": elapsed,
        "analysed_frames_per_s": (analysed_frames(text) - first) / elapsed,
        "latency_median_ms": status_latency_ms(text) or 0.0,
        "server_cpu_percent": 100 * server_used / elapsed,
        "browser_cpu_percent": 100 * browser_used / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.live_browser_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nice-browser", action="store_true", help="Chromium at the lowest CPU priority")
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason:
        print(f"cannot measure: {reason}", file=sys.stderr)
        return 1
    row = measure(args.seconds, args.nice_browser)
    print(
        f"| Live page, real Chromium{' (niced)' if args.nice_browser else ''} | {row['seconds']:.0f} s | "
        f"{row['analysed_frames_per_s']:.1f} | {row['latency_median_ms']:.0f} | "
        f"{row['server_cpu_percent']:.0f} % | {row['browser_cpu_percent']:.0f} % |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
