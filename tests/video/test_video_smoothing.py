"""Smoothing over time: fewer label flips on noisy input, raw values kept, time-based weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.models.loading import load_model
from core.video.analysis import VideoSettings, analyze_video, video_detector
from core.video.codec import VideoWriter
from core.video.smoothing import EmaSmoother, WindowSmoother, make_smoother


def flips(labels: list[int]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:], strict=False))


def noisy_probabilities(frames: int = 300, seed: int = 0) -> np.ndarray:
    """A true 'happy' (3) most frames, with noise that often puts another class on top."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (frames, 7))
    logits[:, 3] += 0.8
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["ema", "window"])
def test_smoothing_reduces_label_flips_on_noisy_input(kind: str) -> None:
    raw = noisy_probabilities()
    smoother = make_smoother(kind)
    smoothed = [smoother.update("face", i / 30, p) for i, p in enumerate(raw)]
    raw_flips, smooth_flips = flips(list(raw.argmax(1))), flips([int(np.argmax(s)) for s in smoothed])
    assert raw_flips > 100 and smooth_flips < raw_flips / 5
    assert np.mean(np.argmax(smoothed, axis=1) == 3) > np.mean(raw.argmax(1) == 3)


def test_ema_weighs_by_time_and_window_by_seconds() -> None:
    ema = EmaSmoother(half_life=0.5)
    ema.update("a", 0.0, np.array([1.0, 0.0]))
    assert np.allclose(ema.update("a", 0.5, np.array([0.0, 1.0])), [0.5, 0.5])  # one half-life later
    assert np.allclose(ema.update("b", 0.5, np.array([0.0, 1.0])), [0.0, 1.0])  # keys are apart
    window = WindowSmoother(seconds=1.0)
    for t, value in [(0.0, 0.0), (0.5, 1.0), (1.0, 2.0)]:
        last = window.update("a", t, np.array([value]))
    assert np.allclose(last, [1.5])  # 0.0 is a full second old: out
    assert np.allclose(make_smoother("none").update("a", 0, np.array([0.2, 0.8])), [0.2, 0.8])
    with pytest.raises(ValueError, match="choose one of ema, window, none"):
        make_smoother("median")


def test_video_keeps_raw_values_and_smooths_a_noisy_clip(
    tiny_registry, astronaut: Image.Image, tmp_path: Path
) -> None:
    torch.set_num_threads(1)  # a busy 2-core machine makes two torch threads ~10x slower
    face = astronaut.crop((130, 20, 320, 230)).resize((90, 100))
    rng = np.random.default_rng(0)
    path = tmp_path / "noisy.mp4"
    with VideoWriter(path, 10, 240, 180) as writer:
        for _ in range(30):
            frame = Image.new("RGB", (240, 180), (120, 120, 120))
            frame.paste(face, (70, 40))
            noise = rng.normal(0, 25, (180, 240, 1))
            writer.write(np.clip(np.asarray(frame, float) + noise, 0, 255).astype(np.uint8))
    model = load_model("tiny_a")
    results = {
        kind: analyze_video(path, [model], video_detector(), VideoSettings(smoothing=kind))
        for kind in ("none", "ema")
    }
    raw, smooth = results["none"], results["ema"]
    assert [p.frame for p in raw.points] == [p.frame for p in smooth.points] == list(range(30))
    for a, b in zip(raw.points, smooth.points, strict=True):
        assert np.allclose(a.raw["tiny_a"], b.raw["tiny_a"], atol=1e-5)  # raw values are kept as they were
        assert np.allclose(a.raw["tiny_a"], a.smoothed["tiny_a"])
    # The frame-to-frame jitter the noise puts into the probabilities is damped.
    raw_jitter = np.abs(np.diff([p.raw["tiny_a"] for p in smooth.points], axis=0)).sum()
    smooth_jitter = np.abs(np.diff([p.smoothed["tiny_a"] for p in smooth.points], axis=0)).sum()
    assert raw_jitter > 0 and smooth_jitter < raw_jitter / 2
