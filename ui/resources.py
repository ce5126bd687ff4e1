"""Cached resources and results: one detector and one copy of each model per process.

Photo analyses, heatmaps, region studies and evaluations live in one BoundedCache shared by
every session (a byte bound over all of them, an hour at most each), and every heavy
computation passes the process's Gate (short lane: a photo; long lane: an evaluation or a
video), so a busy server queues visitors instead of slowing everyone down together. The gate,
the cache and the live-stream places are module-level singletons (core.serving.shared) that
no cache clearing replaces; nothing cached with st.cache_* here draws into the page.

Only what the Analyze page's first predictions need is imported here at the top; the
evaluation and region-study modules (scikit-learn, grad-cam) load when first used, which
keeps them out of the app's cold start.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from core.faces.detection import FaceDetector
from core.models.loading import load_model
from core.models.registry import LoadedModel, ModelLoadError
from core.pipeline import Analysis, add_saliency, analyze_within
from core.serving import budget, shared
from core.serving.bounded_cache import BoundedCache
from core.serving.gate import LONG, SHORT, Gate, Place, Stopped, Turn
from core.serving.memory import freeze_long_lived, release_free_memory
from core.serving.public import limits

if TYPE_CHECKING:
    from core.evaluation.saliency_store import SaliencyStudy
    from core.explain.compare import FaceComparison
    from core.explain.regions import RegionStudy
    from core.video.timeline import VideoResult

ModelKeys = tuple[tuple[str, float], ...]
OnWait = Callable[[Place], None] | None
# A timedelta, not "1h": Streamlit parses a string with pandas, half a second of cold start.
ONE_HOUR = timedelta(hours=1)


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


def gate() -> Gate:
    """The process's gate on heavy work (FER_STUDIO_MAX_ANALYSES places), shared by every session.

    A module-level singleton (core.serving.shared), so no cache clearing can replace it.
    """
    return shared.gate()


def results() -> BoundedCache:
    """Analyses, heatmaps, evaluations and region studies of every session: FER_STUDIO_CACHE_MB in
    all, an hour at most each; a module-level singleton like gate(). Expired entries go every
    minute even when nobody visits, and the memory they freed goes back to the system.
    """
    return shared.results(on_sweep=release_free_memory)


def visitor() -> str | None:
    """This page run's session id (the gate's owner), or None outside a Streamlit session."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


def visitor_left() -> Callable[[], bool] | None:
    """A check the gate calls while this session's work waits or runs: True once the tab closed."""
    from streamlit import runtime

    owner = visitor()
    if owner is None or not runtime.exists():
        return None
    server = runtime.get_instance()
    return lambda: not server.is_active_session(owner)


class WaitNotice:
    """The gate's on_wait for a page: place in line, estimated wait and a Stop button in a slot.

    The slot (an st.empty) is redrawn about every second while waiting, so a click on Stop
    (a rerun) or a closed tab ends the wait at once and frees the place. done() clears the
    slot, or leaves a one-line note of the wait when there was one.
    """

    _stops = itertools.count()

    def __init__(self, slot: Any) -> None:
        self.slot = slot
        self.since: float | None = None
        self._text: Any = None

    def __call__(self, place: Place) -> None:
        if self.since is None:
            self.since = time.monotonic()
            with self.slot.container():
                self._text = st.empty()
                st.button(
                    "Stop",
                    key=f"gate-stop-{next(self._stops)}",
                    icon=":material/stop_circle:",
                    help="Leave the line: your place goes to the next visitor.",
                )
        others = "1 other" if place.ahead == 1 else f"{place.ahead} others"
        wait = f"about {place.wait_s:.0f} s" if place.wait_s >= 1 else "a moment"
        self._text.info(
            f"Waiting for {others} ({wait}): this server runs {_at_once()} at a time so that "
            "each one is quick; a photo goes before longer work.",
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

    Cached in memory by the bytes' SHA-256 (results()); computed in the gate's short lane,
    calling on_wait(Place) while it waits. Results are shared: treat them as read-only.
    """
    key = ("analysis", _digest(data), keys, flip_tta)
    found = results().get(key)
    if found is not None:
        return found
    limit = limits()
    cost = budget.photo_cost(limit.max_faces, len(keys), grad_cam=False)
    with _admit(on_wait, SHORT, cost):
        found = results().get(key)  # another visitor may have sent the same photo meanwhile
        if found is not None:
            return found
        found = analyze_within(data, models(keys), detector(), limit, flip_tta)
    release_free_memory()  # the full-size decode is gone: give its pages back
    results().put(key, found, found.nbytes())
    return found


@contextmanager
def _admit(on_wait: OnWait, lane: str, cost: budget.Cost) -> Iterator[Turn]:
    """A place at the gate for this session's work of `cost`, in `lane`.

    Work stopped because its visitor left ends the page run quietly (st.stop), not with an error.
    """
    try:
        with gate().admit(
            on_wait, lane=lane, owner=visitor(), estimate_s=cost.seconds, should_stop=visitor_left()
        ) as turn:
            yield turn
    except Stopped:
        st.stop()


def long_turn(on_wait: OnWait = None, seconds: float = 60.0) -> AbstractContextManager[Turn]:
    """A place in the gate's long lane for this session's work (a video): call turn.checkpoint()
    between frames. GateRefused when this session already has long work running or waiting."""
    return _admit(on_wait, LONG, budget.Cost("This work", int(seconds * budget.FACE_PASSES_PER_S), 1, 1))


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
    with _admit(on_wait, SHORT, budget.photo_cost(len(faces.faces), len(keys), grad_cam=False)):
        explained = add_saliency(faces, models(keys), cam_method, cam_class)
    maps = [face.heatmaps for face in explained.faces]
    results().put(key, maps, sum(m.nbytes for face in maps for m in face.values()))
    return maps


def _comparison_bytes(comparison: FaceComparison) -> int:
    return sum(m.nbytes for m in comparison.maps.values()) + comparison.crop.nbytes + 4096


def _comparison_cost() -> budget.Cost:
    """One face, two models: a Grad-CAM pass (when the maps are not reused) and the deletion images."""
    from core.pipeline import PAGE_RANDOM_MAPS, PAGE_STEPS

    return budget.Cost("Comparing two maps", 1, 2, 2 + PAGE_STEPS * (1 + PAGE_RANDOM_MAPS))


def comparison(
    data: bytes,
    keys: ModelKeys,
    flip_tta: bool,
    cam_method: str,
    cam_class: int | None,
    face: int,
    on_wait: OnWait = None,
) -> FaceComparison:
    """Where models A and B (the first two keys) look on face `face` (0-based) of analysis()'s faces,
    reusing heatmaps()'s maps; cached and gated the same way."""
    from dataclasses import replace

    from core.pipeline import compare_in_analysis

    key = ("comparison", _digest(data), keys, flip_tta, cam_method, cam_class, face)
    found = results().get(key)
    if found is not None:
        return found
    faces = analysis(data, keys, flip_tta, on_wait)
    maps = heatmaps(data, keys, flip_tta, cam_method, cam_class, on_wait)
    explained = replace(
        faces,
        faces=[
            replace(result, heatmaps=face_maps) for result, face_maps in zip(faces.faces, maps, strict=True)
        ],
        cam_method=cam_method,
        cam_class=cam_class,
    )
    model_a, model_b = models(keys)[:2]
    with _admit(on_wait, SHORT, _comparison_cost()):
        found = compare_in_analysis(explained, face, model_a, model_b, cam_method)
    results().put(key, found, _comparison_bytes(found))
    return found


def frame_comparison(
    data: bytes,
    run: tuple,
    result: VideoResult,
    frame: int,
    track: int,
    keys: ModelKeys,
    cam_method: str,
    on_wait: OnWait = None,
) -> FaceComparison:
    """core.video.analysis.frame_comparison for one face of one frame of an analysed clip; cached by
    the clip's bytes and `run` (the settings its result was made with), computed behind the gate."""
    from core.video.analysis import frame_comparison as compare

    key = ("frame-comparison", _digest(data), run, keys, frame, track, cam_method)
    found = results().get(key)
    if found is not None:
        return found
    model_a, model_b = models(keys)[:2]
    with _admit(on_wait, SHORT, _comparison_cost()):
        found = compare(data, result, frame, track, model_a, model_b, cam_method)
    results().put(key, found, _comparison_bytes(found))
    return found


@st.cache_data(show_spinner=False, ttl=ONE_HOUR)
def class_counts(data: str, split: str | None) -> dict[str, int]:
    """core.data.datasets.class_counts, re-read at most hourly (draws nothing: safe to replay)."""
    from core.data.datasets import class_counts as count

    return count(data, split)


def region_study(
    crop: np.ndarray,
    attention_key: tuple[str, float],
    keys: ModelKeys,
    n: int,
    lam: float,
    alpha: float,
    method: str,
    on_wait: OnWait = None,
) -> RegionStudy:
    """core.explain.regions.study_regions for one crop, cached in results(), computed in the short lane.

    Not an st.cache_data function: on_wait draws into the page, which a cached replay cannot redo.
    Priced first: (n + 1) masked faces x (the models and the attention model) x 2 passes; public
    mode refuses more than its budget (OverBudget), whatever value the browser sent for n.
    """
    from core.explain.regions import study_regions

    key = (
        "regions",
        _digest(np.ascontiguousarray(crop).tobytes()),
        attention_key,
        keys,
        n,
        lam,
        alpha,
        method,
    )
    found = results().get(key)
    if found is not None:
        return found
    cost = budget.check(budget.Cost("This region study", n + 1, len(keys) + 1, 2))  # a crafted n is refused
    with _admit(on_wait, SHORT, cost):
        study = study_regions(crop, model(*attention_key), models(keys), n, lam, alpha, method)
    arrays = [study.crop, study.attention, study.cluster_map, study.masked, *study.probabilities.values()]
    results().put(key, study, sum(int(np.asarray(a).nbytes) for a in arrays))
    return study


def evaluation_size(data: str, split: str | None) -> int:
    """How many faces an evaluation of `data`/`split` reads here (all, or public mode's cap)."""
    return budget.evaluation_faces(sum(class_counts(data, split).values()))


def evaluation(
    key: tuple[str, float],
    data: str,
    split: str | None,
    data_stamp: float,
    occlusion: bool,
    progress: Callable[[float, str], None] | None = None,
    on_wait: OnWait = None,
) -> dict[str, Any]:
    """core.evaluation.metrics.evaluate_model on a dataset, cached per model version, data and split.

    `data` must already be checked against the data roots (core.jobs.check_data_path) and the
    work is priced first (core.serving.budget: public mode refuses with OverBudget what is too
    large). Computed in the gate's long lane, giving way to photos between batches of faces;
    `progress(fraction, text)` is called before each batch, `on_wait(Place)` while waiting.
    Results live in results() (not st.cache_data: they draw nothing when found there).
    """
    from core.data.datasets import load_dataset
    from core.evaluation.metrics import CHECKPOINT_BATCH, OCCLUSIONS, evaluate_model

    faces = evaluation_size(data, split)
    cost = budget.check_evaluation(split, faces, occlusion, len(OCCLUSIONS))
    cache_key = ("evaluation", key, data, split, data_stamp, occlusion, faces)
    found = results().get(cache_key)
    if found is not None:
        return found
    report = progress or (lambda fraction, text: None)
    batches = max(1, -(-faces // CHECKPOINT_BATCH) * cost.passes)
    with _admit(on_wait, LONG, cost) as turn:
        found = results().get(cache_key)  # another visitor asked for the same meanwhile
        if found is not None:
            return found
        done = 0

        def checkpoint() -> None:
            nonlocal done
            turn.checkpoint()
            report(
                min(done / batches, 1.0),
                f"{min(done * CHECKPOINT_BATCH, faces * cost.passes):,} of "
                f"{faces * cost.passes:,} face passes",
            )
            done += 1

        report(0.0, f"loading {os.path.basename(data)}")
        dataset = load_dataset(data, split)
        if faces < len(dataset):  # public mode's cap: a fixed sample, every class in proportion
            dataset = dataset.subset(np.sort(np.random.default_rng(0).permutation(len(dataset))[:faces]))
        loaded = model(*key)
        result = evaluate_model(
            loaded.module,
            dataset,
            loaded.preprocessing,
            occlusion=occlusion,
            temperature=loaded.temperature,
            checkpoint=checkpoint,
        )
    result.update(data=data, split=split, faces_evaluated=faces, evaluated_at=time.time())
    results().put(cache_key, result, len(json.dumps(result, default=str)))
    return result


@st.cache_resource(show_spinner="Loading the face detector…")
def video_detector() -> FaceDetector:
    """The detector for video frames (searching a downscaled copy), shared by every session."""
    from core.video.analysis import video_detector as make

    found = make()
    freeze_long_lived()
    return found


def stream_slots() -> threading.BoundedSemaphore:
    """The process's places for live camera streams (FER_STUDIO_MAX_STREAMS), shared by every session.

    A stream that finds none free is told so at once: a camera cannot wait its turn in a queue.
    A module-level singleton (core.serving.shared), so no cache clearing frees more places.
    """
    return shared.stream_slots()


def _study_stamp(a: str, b: str) -> float:
    """The newest modification time of a stored study of a and b (0 when there is none)."""
    from core.evaluation.saliency_store import study_name
    from core.models.registry import model_dirs

    stamps = [path.stat().st_mtime for d in model_dirs() if (path := d / f"{study_name(a, b)}.json").exists()]
    return max(stamps, default=0.0)


@st.cache_resource(show_spinner=False, max_entries=8)
def _stored_study(a: str, b: str, stamp: float) -> SaliencyStudy | None:
    from core.evaluation.saliency_store import load_study

    del stamp  # part of the cache key only: a study stored again is read again
    return load_study(a, b)


def saliency_study(a: str, b: str) -> SaliencyStudy | None:
    """The stored saliency study of models a and b (core.evaluation.saliency_store.load_study), read once
    per version of its file and shared (treat it as read-only); None when there is none. StudyError
    (not cached) when the file is there but unusable."""
    return _stored_study(a, b, _study_stamp(a, b))


@dataclass
class StudyRun:
    """A saliency study computing in its own process (`python -m core saliency-study ... --record`)."""

    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        # tqdm rewrites its line with carriage returns: keep the last state of each line.
        kept = [line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]
        return "\n".join(kept[-lines:])


@st.cache_resource(show_spinner=False)
def study_runs() -> dict[tuple[str, str], StudyRun]:
    """The studies started from this app process, by (A, B), shared by every session."""
    return {}


def study_arguments(a: str, b: str) -> list[str]:
    """The arguments of `python -m core` that compute and store the study of a and b (the defaults)."""
    return ["saliency-study", "--models", a, b, "--record"]


def start_study(a: str, b: str) -> StudyRun:
    """Start `python -m core saliency-study --models a b --record` in its own process (never in public
    mode: the page does not offer it), its output in $FER_STUDIO_HOME/logs; one per pair at a time."""
    from core.evaluation.saliency_store import study_name
    from core.paths import REPO_ROOT, home_dir

    runs = study_runs()
    running = runs.get((a, b))
    if running is not None and running.process.poll() is None:
        return running
    log = home_dir() / "logs" / f"{study_name(a, b)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "core", *study_arguments(a, b)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    runs[(a, b)] = StudyRun(process, log, time.time())
    return runs[(a, b)]
