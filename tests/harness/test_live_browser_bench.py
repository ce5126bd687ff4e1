"""The real-browser live benchmark's readings (the run itself is a measurement: `python -m tests.harness.live_browser_bench`)."""

from __future__ import annotations

import os
import time

from tests.harness.live_browser_bench import status_latency_ms, tree_cpu_seconds
from tests.harness.screenshots import analysed_frames

STATUS = "Live status: 412 frames analysed, 16.2 frames/s, latency 68 ms (median), 240 dropped."


def test_the_status_line_gives_frames_and_latency() -> None:
    assert analysed_frames(STATUS) == 412 and status_latency_ms(STATUS) == 68.0
    assert analysed_frames("Press Start") == 0 and status_latency_ms("Press Start") is None


def test_cpu_seconds_of_a_process_tree_grow_with_work() -> None:
    before = tree_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert tree_cpu_seconds(os.getpid()) - before >= 0.2
    assert tree_cpu_seconds(2**22 + 12345) == 0.0, "a process that is gone counts as nothing"
