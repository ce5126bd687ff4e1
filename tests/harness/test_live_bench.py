"""The live benchmark runs through streamlit-webrtc's track and reports (its timings are printed by
`make bench`, never asserted)."""

from __future__ import annotations

import torch

from tests.harness.bench import bench_live, bench_live_webrtc, format_live_report, format_live_webrtc_report


def test_live_bench_measures_and_reports(isolated_home) -> None:
    torch.set_num_threads(1)
    row = bench_live(seconds=1.0, every=2)  # two random models: no model is registered here
    assert row["sent"] == 30 and row["every"] == 2 and len(row["models"]) == 2
    assert 0 < row["analysed"] <= row["sent"] and row["analysed"] + row["dropped"] <= row["sent"]
    assert 0 < row["latency_median_ms"] <= row["latency_p95_ms"]
    assert row["analysed_frames_per_s"] > 0
    text = format_live_report([row])
    assert f"| 1 s, 30 frames | {' + '.join(row['models'])} | 2 |" in text


def test_live_bench_over_webrtc_gets_labelled_frames_back(isolated_home) -> None:
    """A real WebRTC connection on loopback: the camera peer (its own process) sends stamped frames,
    streamlit-webrtc's worker runs the processor, and labelled frames come back to the peer."""
    torch.set_num_threads(1)
    row = bench_live_webrtc(seconds=2.0, every=2)
    assert row["sent"] > 60 and len(row["models"]) == 2
    assert 0 < row["shown"] <= row["received"], "the peer decoded frames and read their numbers"
    assert row["shown_frames_per_s"] > 0 and row["server_frames_per_s"] > 0
    assert 0 < row["latency_median_ms"] <= row["latency_p95_ms"] < 10_000
    text = format_live_webrtc_report([row])
    assert f"| 2 s | {' + '.join(row['models'])} | 2 | {row['shown_frames_per_s']:.1f} |" in text
