"""Cached resources and results: one detector and one copy of each model per process.

Photo analyses live in one BoundedCache shared by every session (a byte bound over all of
them, an hour at most each), and every heavy computation passes the process's Gate, so a
busy server queues visitors instead of slowing everyone down together.

Only what the Analyze page's first predictions need is imported here at the top; the
evaluation and region-study modules (scikit-learn, grad-cam) load when first used, which
keeps them out of the app's cold start.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from core.faces.detection import FaceDetector
from core.models.loading import load_model
from core.models.registry import LoadedModel, ModelLoadError
from core.pipeline import Analysis, add_saliency, analyze_within
from core.serving.bounded_cache import BoundedCache
from core.serving.gate import Gate
from core.serving.memory import freeze_long_lived, release_free_memory
from core.serving.public import limits

if TYPE_CHECKING:
    from core.explain.regions import RegionStudy

ModelKeys = tuple[tuple[str, float], ...]
OnWait = Callable[[int], None] | None
# A timedelta, not "1h": Streamlit parses a string with pandas, half a second of cold start.
ONE_HOUR = timedelta(hours=1)
SWEEP_SECONDS = 60.0


@st.cache_resource(show_spinner="Loading the face detector…")
def detector() -> FaceDetector:
    """The MTCNN face detector, shared by every session (it locks itself)."""
    found = FaceDetector()
    freeze_long_lived()
    return found


@st.cache_resource(show_spinner=False)
def job_worker() -> int | None:
    """Once per app process: restart the training worker if jobs were left waiting (None when none).

    A bad setting or a damaged job database costs the Train page only, which says what is wrong.
    """
    from core.jobs import JobError, ensure_worker

    try:
        return ensure_worker(when_queued=True)
    except JobError:
        return None


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def model(name: str, mtime: float) -> LoadedModel:
    """A registered model, loaded once per (name, weights mtime): a retrained model is reloaded."""
    del mtime  # part of the cache key only
    loaded = load_model(name)
    freeze_long_lived()
    return loaded


def usable_models(keys: ModelKeys) -> tuple[ModelKeys, list[str]]:
    """The keys whose model loads, and why each other one does not (ModelLoadError's message).

    A failed load is not cached, so a repaired model is picked up on the next run.
    """
    usable, problems = [], []
    for key in keys:
        try:
            model(*key)
        except ModelLoadError as err:
            problems.append(str(err))
        else:
            usable.append(key)
    return tuple(usable), problems


def models(keys: ModelKeys) -> list[LoadedModel]:
    """The models for (name, mtime) keys, from the cache."""
    return [model(name, mtime) for name, mtime in keys]


@st.cache_resource(show_spinner=False)
def gate() -> Gate:
    """The process's limit on analyses at once (FER_STUDIO_MAX_ANALYSES), shared by every session."""
    return Gate(limits().max_analyses)


@st.cache_resource(show_spinner=False)
def results() -> BoundedCache:
    """Analyses and heatmaps of every session: FER_STUDIO_CACHE_MB in all, an hour at most each.

    A background thread drops expired entries every minute, so an hour holds even when
    nobody visits.
    """
    cache = BoundedCache(limits().cache_bytes, ttl=ONE_HOUR.total_seconds())
    ref = weakref.ref(cache)
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(SWEEP_SECONDS):
            alive = ref()
            if alive is None:
                return
            alive.expire()
            del alive
            release_free_memory()  # pages freed by closed sessions go back even when nobody visits

    threading.Thread(target=sweep, name="result-cache-sweeper", daemon=True).start()
    return cache


class WaitNotice:
    """The gate's on_wait for a page: "waiting for N others" in a slot (an st.empty) while waiting.

    done() clears the slot, or leaves a one-line note of the wait when there was one.
    """

    def __init__(self, slot: Any) -> None:
        self.slot = slot
        self.since: float | None = None

    def __call__(self, ahead: int) -> None:
        if self.since is None:
            self.since = time.monotonic()
        others = "1 other" if ahead == 1 else f"{ahead} others"
        self.slot.info(
            f"Waiting for {others}: this server runs {_at_once()} at a time so that each one is quick.",
            icon=":material/hourglass_top:",
        )

    def done(self) -> None:
        if self.since is None:
            self.slot.empty()
        else:
            waited = time.monotonic() - self.since
            self.slot.caption(
                f"⏳ Waited {waited:.0f} s for a turn: this server runs {_at_once()} at a time."
            )


def _at_once() -> str:
    count = limits().max_analyses
    return "one analysis" if count == 1 else f"{count} analyses"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def analysis(data: bytes, keys: ModelKeys, flip_tta: bool, on_wait: OnWait = None) -> Analysis:
    """Faces and predictions (core.pipeline.analyze) for image bytes, within the visitor limits.

    Cached in memory by the bytes' SHA-256 (results()); computed behind the gate, calling
    on_wait(others ahead) while it waits. Results are shared: treat them as read-only.
    """
    key = ("analysis", _digest(data), keys, flip_tta)
    found = results().get(key)
    if found is not None:
        return found
    limit = limits()
    with gate().admit(on_wait):
        found = results().get(key)  # another visitor may have sent the same photo meanwhile
        if found is not None:
            return found
        found = analyze_within(data, models(keys), detector(), limit, flip_tta)
    release_free_memory()  # the full-size decode is gone: give its pages back
    results().put(key, found, found.nbytes())
    return found


def heatmaps(
    data: bytes,
    keys: ModelKeys,
    flip_tta: bool,
    cam_method: str,
    cam_class: int | None,
    on_wait: OnWait = None,
) -> list[dict[str, np.ndarray]]:
    """Each face's saliency heatmap per model for analysis()'s faces, cached and gated the same way."""
    key = ("heatmaps", _digest(data), keys, flip_tta, cam_method, cam_class)
    found = results().get(key)
    if found is not None:
        return found
    faces = analysis(data, keys, flip_tta, on_wait)
    with gate().admit(on_wait):
        explained = add_saliency(faces, models(keys), cam_method, cam_class)
    maps = [face.heatmaps for face in explained.faces]
    results().put(key, maps, sum(m.nbytes for face in maps for m in face.values()))
    return maps


@st.cache_data(show_spinner=False, ttl=ONE_HOUR)
def class_counts(data: str, split: str | None) -> dict[str, int]:
    """core.data.datasets.class_counts, re-read at most hourly."""
    from core.data.datasets import class_counts as count

    return count(data, split)


@st.cache_data(show_spinner=False, max_entries=64, ttl=ONE_HOUR)
def region_study(
    crop: np.ndarray,
    attention_key: tuple[str, float],
    keys: ModelKeys,
    n: int,
    lam: float,
    alpha: float,
    method: str,
    _on_wait: OnWait = None,
) -> RegionStudy:
    """core.explain.regions.study_regions for one crop, cached in memory, computed behind the gate."""
    from core.explain.regions import study_regions

    with gate().admit(_on_wait):
        return study_regions(crop, model(*attention_key), models(keys), n, lam, alpha, method)


@st.cache_data(show_spinner=False, max_entries=32)
def evaluation(
    key: tuple[str, float],
    data: str,
    split: str | None,
    data_stamp: float,
    occlusion: bool,
    _progress: Any = None,
    _on_wait: OnWait = None,
) -> dict[str, Any]:
    """core.evaluation.metrics.evaluate_model on a dataset, cached per model version, data and split.

    `data` must already be checked against the data roots (core.jobs.check_data_path).
    `data_stamp` (the dataset's modification time) is part of the key; `_progress`
    (fraction, text) and `_on_wait` (others ahead at the gate) are not, and are only
    called when the result is computed.
    """
    from core.data.datasets import load_dataset
    from core.evaluation.metrics import evaluate_model

    del data_stamp
    report = _progress or (lambda fraction, text: None)
    with gate().admit(_on_wait):
        report(0.0, f"loading {data}")
        faces = load_dataset(data, split)
        loaded = model(*key)
        result = evaluate_model(
            loaded.module,
            faces,
            loaded.preprocessing,
            occlusion=occlusion,
            progress=report,
            temperature=loaded.temperature,
        )
    result["data"] = data
    result["split"] = split
    return result


@st.cache_resource(show_spinner="Loading the face detector…")
def video_detector() -> FaceDetector:
    """The detector for video frames (searching a downscaled copy), shared by every session."""
    from core.video.analysis import video_detector as make

    found = make()
    freeze_long_lived()
    return found


@st.cache_resource(show_spinner=False)
def stream_slots() -> threading.BoundedSemaphore:
    """The process's places for live camera streams (FER_STUDIO_MAX_STREAMS), shared by every session.

    A stream that finds none free is told so at once: a camera cannot wait its turn in a queue.
    """
    return threading.BoundedSemaphore(limits().max_streams)
