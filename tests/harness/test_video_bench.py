"""The video benchmark's clip, probes and report (its timings are printed by `make bench`, never asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.video.codec import iter_frames, probe
from tests.harness.bench import (
    bench_video,
    format_report,
    format_video_report,
    label_differences,
    sample_clip,
)


def test_video_clip_and_report(tmp_path: Path, detector) -> None:
    clip = sample_clip(tmp_path / "clip.mp4", seconds=0.2)
    info = probe(clip)
    assert (info.width, info.height, info.fps) == (640, 480, 30.0)
    frames = list(iter_frames(clip))
    assert len(frames) == 6 and all(len(detector.detect(f.image)) == 1 for f in frames[::5])
    row = {"clip_s": 10, "models": 2, "every": 1, "frames": 300, "faces": 300, "frames_per_s": 41.26}
    text = format_video_report([{**row, "peak_mb": 1010.4, "decode_only_frames_per_s": 512.0}])
    assert (
        "| 10 s | 2 | 1 | 300 | 41.3 |" in text
        and "| 1010 |" in text
        and "Decoding alone: 512 frames/s" in text
    )
    report = {"machine": "m", "pipeline": [], "classifiers": [], "training": [], "peak_memory_mb": 1.0}
    report["cold_start"] = {"server_ready_s": None, "first_result_s": None, "saliency_s": None, "runs": []}
    video = [{**row, "peak_mb": 1.0, "decode_only_frames_per_s": 1.0}]
    assert "| 10 s | 2 |" in format_report({**report, "video": video})


def test_a_long_clip_repeats_one_encoded_period(tmp_path: Path) -> None:
    clip = sample_clip(tmp_path / "long.mp4", seconds=10)
    frames = list(iter_frames(clip))
    assert len(frames) == probe(clip).frame_count == 300
    times = [frame.time for frame in frames]
    assert all(b > a for a, b in zip(times, times[1:], strict=False)) and abs(times[-1] - 299 / 30) < 1e-6
    first, again, between = (np.asarray(frames[i].image, float) for i in (0, 150, 40))
    # The second period decodes to the first one's pictures; the portrait has moved in between.
    assert np.abs(first - again).mean() < 1.0 < np.abs(first - between).mean()


def test_label_differences_count_frames_and_models() -> None:
    reference = {"a": ["happy", "happy", None, "sad"], "b": ["sad"] * 4}
    assert label_differences(reference, reference) == 0.0
    other = {"a": ["happy", "sad", "sad", "sad"], "b": ["sad"] * 4}
    assert label_differences(other, reference) == 2 / 8  # a changed label and a face only one run found


def test_bench_video_runs_each_case_in_a_fresh_process(tmp_path: Path) -> None:
    rows = bench_video([(1, 1, 1), (1, 1, 3), (2, 1, 3)])
    assert [(r["clip_s"], r["every"], r["frames"]) for r in rows] == [(1, 1, 30), (1, 3, 30), (2, 3, 60)]
    assert all(r["faces"] == r["frames"] and r["peak_mb"] > 100 and r["cpu_ms_per_frame"] > 0 for r in rows)
    assert (
        rows[0]["label_differs"] == 0.0 and 0.0 <= rows[1]["label_differs"] <= 1.0
    )  # every=1 is the reference
    assert rows[2]["label_differs"] is None  # no every=1 run of that clip to compare with
    text = format_video_report(rows)
    assert text.count("\n| 1 s |") == 2 and "Peak RSS, 2 s clip against 1 s (1 models, every 3):" in text
