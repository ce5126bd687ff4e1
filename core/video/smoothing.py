"""Smooth each face's class probabilities over time: exponential moving average or window average.

The default is the exponential moving average (EMA): it needs one vector of state per face
and model, reacts from the first frame, and its weight follows the time between frames
(a half-life in seconds), so a frame rate change, a dropped frame or a live stream that
skips frames smooth the same way. The window average weighs the last `seconds` equally:
easier to explain, but it keeps every vector of the window and an outlier counts fully
until it drops out. Both are causal (they use only past frames), so the live camera can use
them too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import numpy as np

SMOOTHING = ("ema", "window", "none")
DEFAULT_SMOOTHING = "ema"
EMA_HALF_LIFE = 0.25  # seconds: a new expression outweighs the old one after about 1/4 s
WINDOW_SECONDS = 0.5


class EmaSmoother:
    """Exponential moving average per key, with a half-life in seconds."""

    def __init__(self, half_life: float = EMA_HALF_LIFE) -> None:
        self.half_life = half_life
        self._state: dict[Hashable, tuple[float, np.ndarray]] = {}

    def update(self, key: Hashable, time: float, probabilities: np.ndarray) -> np.ndarray:
        """The smoothed probabilities of `key` (a track and model) after this frame."""
        values = np.asarray(probabilities, dtype=np.float32)
        previous = self._state.get(key)
        if previous is None or self.half_life <= 0:
            smoothed = values
        else:
            last_time, last = previous
            keep = 0.5 ** (max(time - last_time, 0.0) / self.half_life)
            smoothed = keep * last + (1 - keep) * values
        self._state[key] = (time, smoothed)
        return smoothed


class WindowSmoother:
    """Mean of the probabilities of the last `seconds` per key."""

    def __init__(self, seconds: float = WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self._windows: dict[Hashable, deque[tuple[float, np.ndarray]]] = {}

    def update(self, key: Hashable, time: float, probabilities: np.ndarray) -> np.ndarray:
        """The mean over this frame and the frames of `key` less than `seconds` before it."""
        window = self._windows.setdefault(key, deque())
        window.append((time, np.asarray(probabilities, dtype=np.float32)))
        while time - window[0][0] >= self.seconds and len(window) > 1:
            window.popleft()
        return np.mean([values for _, values in window], axis=0)


class NoSmoothing:
    """The raw probabilities, unchanged."""

    def update(self, key: Hashable, time: float, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(probabilities, dtype=np.float32)


def make_smoother(kind: str = DEFAULT_SMOOTHING) -> EmaSmoother | WindowSmoother | NoSmoothing:
    """A smoother by name: 'ema' (default), 'window' or 'none'."""
    if kind == "ema":
        return EmaSmoother()
    if kind == "window":
        return WindowSmoother()
    if kind == "none":
        return NoSmoothing()
    raise ValueError(f"unknown smoothing {kind!r}; choose one of {', '.join(SMOOTHING)}")
