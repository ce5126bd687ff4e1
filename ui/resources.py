"""Cached resources and results: one detector and one copy of each model per process.

Only what the Analyze page's first predictions need is imported here at the top; the
evaluation and region-study modules (scikit-learn, grad-cam) load when first used, which
keeps them out of the app's cold start.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from core.faces import FaceDetector
from core.pipeline import Analysis, add_saliency, analyze
from core.registry import LoadedModel, load_model

if TYPE_CHECKING:
    from core.regions import RegionStudy

ModelKeys = tuple[tuple[str, float], ...]
# A timedelta, not "1h": Streamlit parses a string with pandas, half a second of cold start.
ONE_HOUR = timedelta(hours=1)


@st.cache_resource(show_spinner="Loading the face detector…")
def detector() -> FaceDetector:
    """The MTCNN face detector, shared by every session (it locks itself)."""
    return FaceDetector()


@st.cache_resource(show_spinner=False)
def job_worker() -> int | None:
    """Once per app process: restart the training worker if jobs were left waiting (None when none)."""
    from core.jobs import ensure_worker

    return ensure_worker(when_queued=True)


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def model(name: str, mtime: float) -> LoadedModel:
    """A registered model, loaded once per (name, weights mtime): a retrained model is reloaded."""
    del mtime  # part of the cache key only
    return load_model(name)


def models(keys: ModelKeys) -> list[LoadedModel]:
    """The models for (name, mtime) keys, from the cache."""
    return [model(name, mtime) for name, mtime in keys]


@st.cache_data(show_spinner=False, max_entries=8, ttl=ONE_HOUR)
def analysis(data: bytes, keys: ModelKeys, flip_tta: bool) -> Analysis:
    """Faces and predictions (core.pipeline.analyze) for image bytes, in memory for an hour (never on disk)."""
    return analyze(data, models(keys), detector(), None, None, flip_tta)


@st.cache_data(show_spinner=False, max_entries=8, ttl=ONE_HOUR)
def heatmaps(
    data: bytes, keys: ModelKeys, flip_tta: bool, cam_method: str, cam_class: int | None
) -> list[dict[str, np.ndarray]]:
    """Each face's saliency heatmap per model for analysis()'s faces, cached the same way."""
    explained = add_saliency(analysis(data, keys, flip_tta), models(keys), cam_method, cam_class)
    return [face.heatmaps for face in explained.faces]


@st.cache_data(show_spinner=False, ttl=ONE_HOUR)
def class_counts(data: str, split: str | None) -> dict[str, int]:
    """core.data.class_counts, re-read at most hourly."""
    from core.data import class_counts as count

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
) -> RegionStudy:
    """core.regions.study_regions for one crop, cached in memory."""
    from core.regions import study_regions

    return study_regions(crop, model(*attention_key), models(keys), n, lam, alpha, method)


@st.cache_data(show_spinner=False, max_entries=32)
def evaluation(
    key: tuple[str, float],
    data: str,
    split: str | None,
    data_stamp: float,
    occlusion: bool,
    _progress: Any = None,
) -> dict[str, Any]:
    """core.evaluation.evaluate_model on a dataset, cached per model version, data and split.

    `data_stamp` (the dataset's modification time) is part of the key; `_progress`
    (fraction, text) is not, and is only called when the result is computed.
    """
    from core.data import load_dataset
    from core.evaluation import evaluate_model

    del data_stamp
    report = _progress or (lambda fraction, text: None)
    report(0.0, f"loading {data}")
    faces = load_dataset(data, split)
    loaded = model(*key)
    result = evaluate_model(loaded.module, faces, loaded.preprocessing, occlusion=occlusion, progress=report)
    result["data"] = data
    result["split"] = split
    return result


@st.cache_resource(show_spinner="Loading the face detector…")
def video_detector() -> FaceDetector:
    """The detector for video frames (searching a downscaled copy), shared by every session."""
    from core.video_analysis import video_detector as make

    return make()
