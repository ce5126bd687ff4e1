"""`make loadtest`: many visitors at once against the app as a host runs it, with figures.

Starts `streamlit run app.py` on 127.0.0.1 (public mode, training off, the shipped models)
and, for each N in --sessions, opens N sessions over Streamlit's websocket protocol
(tests/harness/streamlit_client.py: the server's work, without N browsers on the same cores). Every
session loads the Analyze page, waits for the others, then all upload at once, each its own
generated photo (the sample portrait's face flipped, rotated, lit and placed 1-4 times).
Measured per session: upload start to every face's predictions shown ("first result") and
to every Grad-CAM overlay shown. Checked per session: the faces and probabilities it was
shown are those core.pipeline.analyze gives for its own photo (no cross-talk). The server's
resident memory (with any child processes) is sampled throughout; --idle-wait seconds after
the sessions close it is read again. --heavy adds sessions uploading 4800x4800 PNGs (23 megapixels, public mode's largest).
--mixed N adds a round where one visitor starts the heaviest work public mode allows (Models
page: an evaluation of model A on val, public mode's sample of its faces) while N others upload
photos: a photo's time to first result is compared with the photos-only round of N sessions.

Every wait has a deadline (--timeout), so a run always ends. Prints a Markdown table and the
bars of issue 11, and writes loadtest-results.json.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance
from streamlit.proto.Alert_pb2 import Alert

from core.labels import EMOTIONS
from tests.harness.browser import REPO, AppServer, app_server
from tests.harness.streamlit_client import ScriptRun, SessionError, StreamlitSession, Upload
from ui.display import sample_png

FACES_FOUND = "Faces found"  # the metric the Analyze page shows once predictions are ready
GRAD_CAM = "Grad-CAM · "  # caption of each overlay: "Grad-CAM · <model>"
TOLERANCE = 0.01  # probabilities must match core.pipeline.analyze to 2 decimals
BOX_TOLERANCE = 0.01  # face boxes, as fractions of the photo's width and height
FACE_REGION = (110, 0, 340, 250)  # the astronaut's head, with a margin, in the sample portrait
HOST_ENV = {"FER_STUDIO_PUBLIC": "1", "FER_STUDIO_TRAINING": "off"}
RESULTS = REPO / "loadtest-results.json"

# Bars of issue 11 on the 2-core machine.
MAX_P95_FIRST_RESULT_S = 5.0  # at 10 sessions
# 23 megapixels: as large as public mode reads (FER_STUDIO_MAX_MEGAPIXELS=24); larger ones are refused.
HEAVY_SIDE = 4800
MAX_PEAK_RSS_MB = 2000.0  # at 20 sessions and in the heavy case
MAX_ABOVE_IDLE_MB = 300.0  # once the sessions are gone
MAX_MIXED_RATIO = 2.0  # issue 25: photos beside a long job, against photos alone


# --- Photos -----------------------------------------------------------------------------


def _portrait() -> Image.Image:
    return Image.open(io.BytesIO(sample_png())).convert("RGB")


def _face(portrait: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The portrait's head, maybe mirrored, turned a little and lit differently."""
    face = portrait.crop(FACE_REGION)
    if rng.random() < 0.5:
        face = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    fill = tuple(int(v) for v in rng.integers(60, 200, 3))
    face = face.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BICUBIC, fillcolor=fill)
    return ImageEnhance.Brightness(face).enhance(float(rng.uniform(0.8, 1.2)))


def session_photo(index: int) -> bytes:
    """A JPEG with 1 + index % 4 faces, different for every index (about 0.4 to 1.5 megapixels)."""
    rng = np.random.default_rng(index)
    portrait = _portrait()
    count = 1 + index % 4
    columns = 1 if count == 1 else 2
    rows = -(-count // columns)
    cell = int(rng.integers(360, 640))
    canvas = Image.new(
        "RGB", (columns * cell + 40, rows * cell + 40), tuple(int(v) for v in rng.integers(40, 220, 3))
    )
    for k in range(count):
        row, column = divmod(k, columns)
        width = int(cell * rng.uniform(0.7, 0.95))
        face = _face(portrait, rng).resize((width, width * 250 // 230))
        canvas.paste(face, (20 + column * cell + (cell - width) // 2, 20 + row * cell))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def heavy_photo(index: int, side: int = HEAVY_SIDE) -> bytes:
    """A side x side PNG (23 megapixels by default) with 1 or 2 large faces on a flat ground.

    Faces are enlarged by whole factors without smoothing and the ground is one colour, so it
    compresses to well under a megabyte yet decodes to side*side*3 bytes on the server.
    """
    rng = np.random.default_rng(10_000 + index)
    canvas = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(40, 220, 3)))
    face = _portrait().crop(FACE_REGION)
    count = 1 + index % 2
    for k in range(count):
        mirrored = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else face
        factor = max(1, side * int(rng.integers(6, 10)) // 7000)
        big = mirrored.resize((face.width * factor, face.height * factor), Image.Resampling.NEAREST)
        x = k * side // count + int(rng.integers(0, max(1, side // count - big.width)))
        canvas.paste(big, (x, int(rng.integers(0, max(1, side - big.height)))))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


# --- What each photo should show --------------------------------------------------------

FaceProbabilities = dict[str, list[float]]  # model name -> the 7 class probabilities


@dataclass
class PhotoResult:
    """What the Analyze page shows for one photo: each face's box and each model's probabilities.

    Boxes are fractions of the photo's width and height, so a server that analyses a
    downscaled copy still matches.
    """

    boxes: list[list[float]]
    probabilities: list[FaceProbabilities]


def relative_boxes(boxes: Sequence[Sequence[float]], size: Sequence[int]) -> list[list[float]]:
    width, height = size
    return [[box[0] / width, box[1] / height, box[2] / width, box[3] / height] for box in boxes]


def expected_results(photos: Sequence[bytes]) -> tuple[list[str], list[PhotoResult]]:
    """The app's default models and, per photo, what core.pipeline.analyze finds in it.

    Loads the models the Analyze page picks by default (the same registry the server reads)
    and applies the limits the server runs under (HOST_ENV: public mode's working size).
    """
    from unittest import mock

    from core.faces.detection import FaceDetector
    from core.models.loading import load_model
    from core.models.registry import list_models
    from core.pipeline import analyze_within
    from core.serving.public import limits
    from ui.display import default_pair

    names = list(dict.fromkeys(n for n in default_pair([card["name"] for card in list_models()]) if n))
    models = [load_model(name) for name in names]
    detector = FaceDetector()
    with mock.patch.dict(os.environ, HOST_ENV):
        limit = limits()
    expected = []
    for data in photos:
        result = analyze_within(data, models, detector, limit)
        expected.append(
            PhotoResult(
                relative_boxes([face.face.box for face in result.faces], result.image.size),
                [
                    {name: [float(p) for p in probs] for name, probs in face.probabilities.items()}
                    for face in result.faces
                ],
            )
        )
    del models, detector
    gc.collect()
    return names, expected


def _close(a: Sequence[float], b: Sequence[float], tolerance: float) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b, atol=tolerance, rtol=0))


def same_result(a: PhotoResult, b: PhotoResult) -> bool:
    """Whether two photos' results could not be told apart (same faces in the same places, same probabilities)."""
    return (
        len(a.boxes) == len(b.boxes)
        and all(_close(x, y, BOX_TOLERANCE) for x, y in zip(a.boxes, b.boxes, strict=True))
        and all(
            x.keys() == y.keys() and all(_close(x[m], y[m], TOLERANCE) for m in x)
            for x, y in zip(a.probabilities, b.probabilities, strict=True)
        )
    )


# --- What a session was shown -----------------------------------------------------------


@dataclass
class Shown:
    """One uploaded image's results as the page drew them."""

    faces: int
    probabilities: list[FaceProbabilities] = field(default_factory=list)
    boxes: list[list[float]] | None = None  # from the JSON download, once fetched
    json_url: str | None = None
    overlays: int = 0
    predictions_at: float | None = None  # when the last face's probabilities arrived
    overlays_at: float | None = None  # when the last Grad-CAM overlay arrived


def _chart_probabilities(spec: str) -> FaceProbabilities:
    """Model name -> probabilities from a probability chart's Plotly JSON (lists or typed arrays);
    empty for any other chart (the comparison of two maps below the face cards, say)."""
    figure = json.loads(spec)
    probabilities = {}
    for trace in figure.get("data", []):
        if trace.get("type") != "bar" or trace.get("orientation") != "h" or trace.get("y") != list(EMOTIONS):
            return {}
        values = trace.get("x")
        if isinstance(values, dict) and "bdata" in values:
            values = np.frombuffer(
                base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])
            ).tolist()
        probabilities[str(trace.get("name"))] = [float(v) for v in values or []]
    return probabilities


def shown_results(run: ScriptRun, models: int) -> tuple[list[Shown], list[str], list[str]]:
    """Each uploaded image's results in the order drawn, the page's exceptions, and its warnings.

    An image's results start at its "Faces found" metric; its JSON download, probability
    charts and Grad-CAM overlays follow before the next image's.
    """
    images: list[Shown] = []
    exceptions: list[str] = []
    warnings: list[str] = []
    for drawn in run.drawn:
        element = getattr(drawn.element, drawn.kind)
        if drawn.kind == "metric" and element.label == FACES_FOUND:
            count = re.search(r"\d+", element.body)
            images.append(Shown(faces=int(count.group()) if count else -1))
        elif drawn.kind == "exception":
            exceptions.append(f"exception: {element.type}: {element.message[:200]}")
        elif drawn.kind == "alert" and element.format in (Alert.ERROR, Alert.WARNING):
            warnings.append(f"page says: {element.body[:200]}")
        elif not images:
            continue
        elif drawn.kind == "download_button" and element.url.endswith(".json"):
            images[-1].json_url = element.url
        elif drawn.kind == "plotly_chart" and (found := _chart_probabilities(element.spec)):
            image = images[-1]
            image.probabilities.append(found)
            if len(image.probabilities) == image.faces:
                image.predictions_at = drawn.at
        elif drawn.kind == "imgs" and any(img.caption.startswith(GRAD_CAM) for img in element.imgs):
            image = images[-1]
            image.overlays += 1
            if image.overlays == image.faces * models:
                image.overlays_at = drawn.at
    return images, exceptions, warnings


def read_boxes(document: bytes) -> list[list[float]]:
    """Face boxes, as fractions of the photo's size, from the Analyze page's JSON download."""
    result = json.loads(document)
    return relative_boxes([face["box"] for face in result["faces"]], result["image_size"])


def mismatches(shown: list[Shown], expected: list[PhotoResult]) -> list[str]:
    """How what a session was shown differs from its own photos' results (empty when it matches)."""
    found = []
    if len(shown) != len(expected):
        return [f"{len(shown)} image results shown for {len(expected)} photos"]
    for number, (image, wanted) in enumerate(zip(shown, expected, strict=True), start=1):
        if image.faces != len(wanted.boxes):
            found.append(f"photo {number}: {image.faces} faces shown, its photo has {len(wanted.boxes)}")
            continue
        if image.boxes is None:
            found.append(f"photo {number}: no face boxes (JSON download) to check")
        elif not all(_close(a, b, BOX_TOLERANCE) for a, b in zip(image.boxes, wanted.boxes, strict=False)):
            found.append(f"photo {number}: the face boxes differ")
        pairs = zip(image.probabilities, wanted.probabilities, strict=False)
        for face_number, (seen, faces) in enumerate(pairs, start=1):
            for model, probabilities in faces.items():
                if not _close(seen.get(model, []), probabilities, TOLERANCE):
                    found.append(f"photo {number} face {face_number}: {model}'s probabilities differ")
        if len(image.probabilities) != image.faces:
            found.append(f"photo {number}: {len(image.probabilities)} charts for {image.faces} faces")
    return found


# --- One visitor ------------------------------------------------------------------------


@dataclass
class Visit:
    """One session's outcome: its times (seconds from the upload's start) and what went wrong."""

    photos: list[str]
    faces: list[int] = field(default_factory=list)
    upload_s: float | None = None
    first_result_s: float | None = None
    grad_cam_s: float | None = None
    error: str | None = None
    crosstalk: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings the page showed next to complete results

    @property
    def complete(self) -> bool:
        return self.error is None and not self.crosstalk and self.grad_cam_s is not None


def visit(
    url: str,
    uploads: list[Upload],
    expected: list[PhotoResult],
    models: int,
    start_together: threading.Barrier,
    timeout: float,
) -> Visit:
    """Open the Analyze page, wait for the other sessions, upload, and read what the page shows."""
    outcome = Visit([u.name for u in uploads])
    session = StreamlitSession(url, timeout)
    try:
        try:
            session.open()
            loaded = session.run()
            if loaded.status != "FINISHED_SUCCESSFULLY":
                raise SessionError(f"the page's first run ended with {loaded.status}")
            uploader = session.widget_id("file_uploader")
        finally:
            start_together.wait(timeout)  # a session that failed to load still lets the others start
        run = session.upload(uploader, uploads)
        shown, exceptions, warnings = shown_results(run, models)
        outcome.notes = warnings
        for image in shown:
            if image.json_url:
                image.boxes = read_boxes(session.get(image.json_url))
        outcome.faces = [image.faces for image in shown]
        outcome.upload_s = (run.requested or run.started) - run.started
        predictions = [image.predictions_at for image in shown if image.predictions_at is not None]
        overlays = [image.overlays_at for image in shown if image.overlays_at is not None]
        if shown and len(predictions) == len(shown):
            outcome.first_result_s = max(predictions) - run.started
            if len(overlays) == len(shown):
                outcome.grad_cam_s = max(overlays) - run.started
        outcome.crosstalk = mismatches(shown, expected)
        if exceptions:
            outcome.error = exceptions[0]
        elif outcome.grad_cam_s is None and not outcome.crosstalk:
            outcome.error = (warnings or ["the run finished without every prediction and Grad-CAM overlay"])[
                0
            ]
    except Exception as error:  # noqa: BLE001 - one session's failure is a figure, not the end of the run
        outcome.error = f"{type(error).__name__}: {error}"[:300]
    finally:
        session.close()
    return outcome


@dataclass
class LongJob:
    """The mixed case's evaluation: from its click to its result on the page."""

    seconds: float | None = None
    error: str | None = None


EVALUATED = "evaluated at"  # in the Models page's success line once an evaluation is done


def evaluation_visit(url: str, start_together: threading.Barrier, timeout: float) -> LongJob:
    """Open the Models page, wait for the others, press Evaluate (the defaults: model A, val)."""
    outcome = LongJob()
    session = StreamlitSession(url, timeout)
    try:
        try:
            session.open()
            opened = session.run(page="models")
            if opened.status != "FINISHED_SUCCESSFULLY":
                raise SessionError(f"the Models page's first run ended with {opened.status}")
            button = session.widget_id("button", "Evaluate")
        finally:
            start_together.wait(timeout)
        started = time.monotonic()
        run = session.click(button)
        bodies = [d.element.alert.body for d in run.drawn if d.kind == "alert"]
        done = [d.at for d in run.drawn if d.kind == "alert" and EVALUATED in d.element.alert.body]
        if done:
            outcome.seconds = done[0] - started
        else:
            outcome.error = (bodies or [f"the run ended with {run.status} and no result"])[0][:300]
    except Exception as error:  # noqa: BLE001 - a figure, not the end of the run
        outcome.error = f"{type(error).__name__}: {error}"[:300]
    finally:
        session.close()
    return outcome


# --- The server's memory ----------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    tree, index = [pid], 0
    while index < len(tree):
        for children in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                tree += [int(child) for child in children.read_text().split()]
        index += 1
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (VmRSS summed)."""
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


class MemorySampler:
    """Samples a process tree's resident memory in a thread; `peak_mb` since the last reset."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self.peak_mb = 0.0
        self._lock = threading.Lock()  # a reset must not be overwritten by a reading taken before it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def reset(self) -> float:
        """Start a new peak from the current reading, and return that reading."""
        with self._lock:
            self.peak_mb = tree_rss_mb(self.pid)
            return self.peak_mb

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))


# --- Rounds -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.array(values), q)) if values else None


def run_round(
    server: AppServer,
    case: str,
    photo_sets: list[list[Upload]],
    expected: list[list[PhotoResult]],
    models: int,
    memory: MemorySampler,
    idle_wait: float,
    timeout: float,
    long_job: bool = False,
) -> dict[str, Any]:
    """len(photo_sets) sessions at once, one photo set each; times, checks and memory.

    long_job: one more session starts an evaluation on the Models page as the photos go up.
    """
    sessions = len(photo_sets)
    load = os.getloadavg()[0]
    before_mb = memory.reset()
    together = threading.Barrier(sessions + int(long_job))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=sessions + 1, thread_name_prefix="session") as pool:
        evaluation = pool.submit(evaluation_visit, server.url, together, timeout) if long_job else None
        futures = [
            pool.submit(visit, server.url, uploads, wanted, models, together, timeout)
            for uploads, wanted in zip(photo_sets, expected, strict=True)
        ]
        visits = [future.result() for future in futures]
        job = evaluation.result() if evaluation is not None else None
    wall_s = time.monotonic() - started
    peak_mb = memory.peak_mb
    time.sleep(idle_wait)  # the sessions are closed; let the server settle
    first = [v.first_result_s for v in visits if v.first_result_s is not None]
    grad_cam = [v.grad_cam_s for v in visits if v.grad_cam_s is not None]
    uploads = [v.upload_s for v in visits if v.upload_s is not None]
    return {
        "case": case,
        "sessions": sessions,
        "photos_per_session": len(photo_sets[0]),
        "completed": sum(v.complete for v in visits),
        "errors": sum(v.error is not None for v in visits),
        "crosstalk": sum(bool(v.crosstalk) for v in visits),
        "first_result_p50_s": percentile(first, 50),
        "first_result_p95_s": percentile(first, 95),
        "grad_cam_p50_s": percentile(grad_cam, 50),
        "grad_cam_p95_s": percentile(grad_cam, 95),
        "upload_p95_s": percentile(uploads, 95),
        "wall_s": wall_s,
        "load_average_1m": load,
        "rss_before_mb": before_mb,
        "peak_rss_mb": peak_mb,
        "idle_wait_s": idle_wait,
        "rss_after_mb": tree_rss_mb(server.process.pid),
        "long_job": None if job is None else asdict(job),
        "visits": [asdict(v) for v in visits],
    }


def warm_up(server: AppServer, timeout: float) -> None:
    """One visitor opens the page (models load, the sample is analysed) and leaves: the idle state."""
    with StreamlitSession(server.url, timeout) as session:
        run = session.run()
        if run.status != "FINISHED_SUCCESSFULLY":
            raise SessionError(f"the first page run ended with {run.status}")


# --- Report -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, load and memory of this machine, the date, and the code measured."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    import streamlit
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "python": platform.python_version(),
        "streamlit": streamlit.__version__,
        "torch": torch.__version__,
    }


def bars(report: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Issue 11's bars and whether each is met (None: its case was not run)."""
    rounds = report["rounds"]
    idle = report["idle_rss_mb"]
    at = {r["sessions"]: r for r in rounds if r["case"] == "photos"}
    heavy = [r for r in rounds if r["case"] == "heavy"]
    mixed = next((r for r in rounds if r["case"] == "mixed"), None)
    alone = at.get(mixed["sessions"]) if mixed else None
    ten = at.get(10)
    twenty = at.get(20)
    p95 = ten["first_result_p95_s"] if ten else None
    return [
        (
            "10 sessions: every session completes",
            None if ten is None else ten["completed"] == ten["sessions"],
        ),
        (
            f"10 sessions: p95 to first result <= {MAX_P95_FIRST_RESULT_S:.0f} s",
            None if ten is None else p95 is not None and p95 <= MAX_P95_FIRST_RESULT_S,
        ),
        (
            f"20 sessions: server peak RSS <= {MAX_PEAK_RSS_MB:.0f} MB",
            None if twenty is None else twenty["peak_rss_mb"] <= MAX_PEAK_RSS_MB,
        ),
        (
            f"heavy uploads: server peak RSS <= {MAX_PEAK_RSS_MB:.0f} MB",
            None if not heavy else heavy[0]["peak_rss_mb"] <= MAX_PEAK_RSS_MB,
        ),
        (
            f"mixed: photo p95 to first result <= {MAX_MIXED_RATIO:.0f}x the photos-only round's",
            None if mixed is None or alone is None else _mixed_ratio(mixed, alone) <= MAX_MIXED_RATIO,
        ),
        (
            "mixed: the long job finishes, every photo session completes",
            None
            if mixed is None
            else bool(mixed["long_job"] and mixed["long_job"]["seconds"] is not None)
            and mixed["completed"] == mixed["sessions"],
        ),
        (
            f"after every case: RSS within {MAX_ABOVE_IDLE_MB:.0f} MB of idle ({idle:.0f} MB)",
            None if not rounds else all(r["rss_after_mb"] - idle <= MAX_ABOVE_IDLE_MB for r in rounds),
        ),
    ]


def _mixed_ratio(mixed: dict[str, Any], alone: dict[str, Any]) -> float:
    """The mixed round's photo p95 over the photos-only round's (infinite when either is missing)."""
    if not mixed["first_result_p95_s"] or not alone["first_result_p95_s"]:
        return float("inf")
    return float(mixed["first_result_p95_s"] / alone["first_result_p95_s"])


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def format_report(report: dict[str, Any]) -> str:
    """The load test as a Markdown table, the bars, and what went wrong."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; load average at start "
        f"{', '.join(str(v) for v in m['load_average'])}; {m['date']}; commit {m['commit']}, "
        f"streamlit {m['streamlit']}, torch {m['torch']}.",
        f"Server: `streamlit run app.py` with {', '.join(f'{k}={v}' for k, v in HOST_ENV.items())}; "
        f"models {', '.join(report['models'])}; idle RSS {report['idle_rss_mb']:.0f} MB after one visit.",
        "",
        "| case | sessions | completed | errors | cross-talk | first result p50 / p95 s "
        "| Grad-CAM p50 / p95 s | server peak RSS MB | RSS after s | RSS after MB | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rounds"]:
        case = {
            "photos": "photos",
            "mixed": "mixed: photos + 1 evaluation",
        }.get(
            r["case"],
            f"heavy: {r['photos_per_session']} x {report['heavy_side']}x{report['heavy_side']} PNG each",
        )
        lines.append(
            f"| {case} | {r['sessions']} | {r['completed']} | {r['errors']} | {r['crosstalk']} "
            f"| {_seconds(r['first_result_p50_s'])} / {_seconds(r['first_result_p95_s'])} "
            f"| {_seconds(r['grad_cam_p50_s'])} / {_seconds(r['grad_cam_p95_s'])} "
            f"| {r['peak_rss_mb']:.0f} | {r['idle_wait_s']:.0f} | {r['rss_after_mb']:.0f} "
            f"| {r['load_average_1m']:.1f} |"
        )
    for r in report["rounds"]:
        job = r.get("long_job")
        if job:
            lines.append(
                f"\nMixed round: the evaluation (Models page, model A on val, public sample) took "
                f"{_seconds(job['seconds'])} s from its click to its result"
                + (f"; error: {job['error']}" if job["error"] else "")
                + "; each photo visitor's time to first result (s): "
                + ", ".join(_seconds(v["first_result_s"]) for v in r["visits"])
            )
    lines += ["", "Bars (issues 11 and 25, 2-core machine):"]
    for text, met in bars(report):
        lines.append(f"- {text}: {'not run' if met is None else 'met' if met else 'NOT met'}")
    problems = [
        (r["case"], r["sessions"], v)
        for r in report["rounds"]
        for v in r["visits"]
        if v["error"] or v["crosstalk"]
    ]
    notes = sorted({note for r in report["rounds"] for v in r["visits"] for note in v["notes"]})
    if notes:
        lines += ["", "Warnings the page showed next to complete results:"]
        lines += [f"- {note}" for note in notes[:10]]
    if problems:
        lines += ["", "Sessions that went wrong (first 10):"]
        for case, sessions, v in problems[:10]:
            lines.append(
                f"- {case} x{sessions}, {', '.join(v['photos'])}: {v['error'] or '; '.join(v['crosstalk'])}"
            )
    return "\n".join(lines)


# --- Command line -----------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1 or max(counts) > 100:
        raise argparse.ArgumentTypeError("session counts must be between 1 and 100")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.loadtest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sessions", type=_counts, default=[1, 5, 10, 20], help="session counts, e.g. 1,5,10,20"
    )
    parser.add_argument(
        "--heavy", action="store_true", help=f"also sessions uploading {HEAVY_SIDE}x{HEAVY_SIDE} PNGs at once"
    )
    parser.add_argument(
        "--heavy-sessions", type=int, default=3, help="sessions in the heavy case (default 3)"
    )
    parser.add_argument(
        "--heavy-photos", type=int, default=2, help="PNGs each heavy session uploads (default 2)"
    )
    parser.add_argument("--heavy-side", type=int, default=HEAVY_SIDE, help="side of the heavy PNGs in pixels")
    parser.add_argument(
        "--mixed",
        type=int,
        default=0,
        metavar="N",
        help="also N photo sessions while one more evaluates on the Models page (compare with --sessions N)",
    )
    parser.add_argument(
        "--idle-wait", type=float, default=60.0, help="seconds after the sessions close to read RSS again"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="longest wait for any one answer, seconds"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS.name})")
    args = parser.parse_args(argv)
    if args.heavy_sessions < 1 or args.heavy_photos < 1 or not 100 <= args.heavy_side <= 8000:
        parser.error("--heavy-sessions and --heavy-photos must be at least 1, --heavy-side 100 to 8000")
    if not 0 <= args.mixed <= 100:
        parser.error("--mixed must be from 0 (no mixed case) to 100")
    if args.idle_wait < 0 or args.timeout <= 0:
        parser.error("--idle-wait must be 0 or more and --timeout more than 0")
    return args


def load_test(
    sessions: Sequence[int],
    heavy: tuple[int, int, int] | None,
    idle_wait: float,
    timeout: float,
    home: Path,
    log: Path,
    say: Any = print,
    mixed: int = 0,
) -> dict[str, Any]:
    """Start the app as a host would and run every case; the report as a dict.

    heavy: (sessions, photos per session, side in pixels), or None for no heavy case;
    mixed: photo sessions beside one evaluation (0: no mixed case).
    """
    report: dict[str, Any] = {"machine": machine(), "heavy_side": heavy[2] if heavy else None}
    # Every session of the whole run gets a photo of its own: no round finds another's in a cache.
    total = sum(sessions) + mixed
    photos = [session_photo(i) for i in range(total)]
    heavy_photos = [heavy_photo(i, heavy[2]) for i in range(heavy[0] * heavy[1])] if heavy else []
    say(f"computing the expected results of {len(photos) + len(heavy_photos)} photos…")
    names, expected = expected_results(photos + heavy_photos)
    report["models"] = names
    for index, result in enumerate(expected):
        twins = [other for other in range(index) if same_result(result, expected[other])]
        if twins:
            say(f"warning: photo {index} shows the same as photo {twins[0]}: a swap between them goes unseen")
    uploads = [Upload(f"visitor-{i:02d}.jpg", data, "image/jpeg") for i, data in enumerate(photos)]
    uploads += [Upload(f"large-{i:02d}.png", data, "image/png") for i, data in enumerate(heavy_photos)]
    report["rounds"] = []
    with app_server(home, log, timeout=timeout, host=True, env=HOST_ENV) as server:
        with MemorySampler(server.process.pid) as memory:
            say(f"app at {server.url} (pid {server.process.pid}); warming up with one visit…")
            warm_up(server, timeout)
            time.sleep(min(idle_wait, 5.0))
            report["idle_rss_mb"] = tree_rss_mb(server.process.pid)
            rounds = [("photos", count, 1) for count in sessions] + [("mixed", mixed, 1)] * bool(mixed)
            rounds += [("heavy", heavy[0], heavy[1])] if heavy else []
            first = 0
            for case, count, each in rounds:
                say(f"{case}: {count} session(s) at once, {each} photo(s) each…")
                sets = [uploads[first + i * each : first + (i + 1) * each] for i in range(count)]
                wanted = [expected[first + i * each : first + (i + 1) * each] for i in range(count)]
                first += count * each
                report["rounds"].append(
                    run_round(
                        server, case, sets, wanted, len(names), memory, idle_wait, timeout, case == "mixed"
                    )
                )
        report["server_peak_rss_mb"] = _status_kb(server.process.pid, "VmHWM") / 1024
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    heavy = (args.heavy_sessions, args.heavy_photos, args.heavy_side) if args.heavy else None
    with tempfile.TemporaryDirectory(prefix="fer-loadtest-") as scratch:
        home = Path(scratch) / "home"  # a fresh data folder, as on a new host; models/ ships the models
        home.mkdir()
        log = Path(scratch) / "streamlit.log"
        try:
            report = load_test(
                args.sessions, heavy, args.idle_wait, args.timeout, home, log, mixed=args.mixed
            )
        except (SessionError, RuntimeError, TimeoutError) as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            print(f"error: the load test stopped: {error}\n{tail}", file=sys.stderr)
            return 1
    print()
    print(format_report(report))
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
