"""The video benchmark's clip and report (its timings are printed by `make bench`, never asserted)."""

from __future__ import annotations

from pathlib import Path

from core.bench import format_report, format_video_report, sample_clip
from core.video import iter_frames, probe


def test_video_clip_and_report(tmp_path: Path, detector) -> None:
    clip = sample_clip(tmp_path / "clip.mp4", seconds=0.2)
    info = probe(clip)
    assert (info.width, info.height, info.fps) == (640, 480, 30.0)
    frames = list(iter_frames(clip))
    assert len(frames) == 6 and all(len(detector.detect(f.image)) == 1 for f in frames[::5])
    row = {"clip_s": 10, "models": 2, "every": 1, "frames": 300, "faces": 300, "frames_per_s": 41.26}
    text = format_video_report([{**row, "peak_mb": 1010.4, "decode_only_frames_per_s": 512.0}])
    assert "| 10 s | 2 | 1 | 300 | 41.3 | 1010 |" in text and "Decoding alone: 512 frames/s" in text
    report = {"machine": "m", "pipeline": [], "classifiers": [], "training": [], "peak_memory_mb": 1.0}
    report["cold_start"] = {"server_ready_s": None, "first_result_s": None, "saliency_s": None, "runs": []}
    video = [{**row, "peak_mb": 1.0, "decode_only_frames_per_s": 1.0}]
    assert "| 10 s | 2 |" in format_report({**report, "video": video})
