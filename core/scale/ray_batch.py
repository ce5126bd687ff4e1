"""`predict --ray`: the batch of core.batch on a Ray cluster, with the same rows as the local run.

Ray Data carries the inputs; an actor pool (ActorPredictor) holds the detector and the models, each
loaded once per actor, and runs core.batch.predict_files on each batch of files, so every answer
(boxes, probabilities, an unreadable file's error) is the local path's. Only the driver writes:
core.scale.results.ResultsFolder keeps predictions.csv and predictions.jsonl, skips files already
done (resume) and never writes a file twice. A killed actor is restarted by Ray Data and its batch
run again; the batch's results reach the driver once.

Inputs: image files and folders (read here, named as given, like `predict`), list files (.txt,
.lst: one path or URI a line), and URIs Ray Data reads (s3://, gs://, local://, ...; named by the
path Ray Data reports).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.batch import FileResult, image_paths, predict_files, progress_bar
from core.faces.images import SUFFIXES, ImageError, decode_image
from core.jobs.ray_runner import worker_env
from core.scale import DEFAULT_BATCH_SIZE
from core.scale.results import ResultsFolder
from core.scale.session import quiet_ray_data, ray_error_line, ray_session

LIST_SUFFIXES = (".txt", ".lst")


class RayRunError(RuntimeError, ValueError):
    """A run on Ray that failed in a worker; the message is the worker's error in one line."""


@dataclass(frozen=True)
class PredictSettings:
    """What each actor builds once: the models (registered names) and the detector's settings."""

    models: tuple[str, ...]
    min_face_size: int
    threshold: float = 0.9
    max_faces: int = 20
    align: bool = False
    flip_tta: bool = False
    threads: int = 1


@dataclass
class RunSummary:
    """What a run did: files found, skipped (done before), written now by status; time and batches."""

    folder: Path
    found: int = 0
    skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    actors: int = 0
    batches: int = 0
    busy_seconds: float = 0.0  # seconds the actors spent inside predict_files

    @property
    def written(self) -> int:
        return sum(self.statuses.values())

    @property
    def unreadable(self) -> int:
        return self.statuses["unreadable"]

    def line(self) -> str:
        """The final summary line."""
        rate = self.written / self.seconds if self.seconds else 0.0
        counts = ", ".join(f"{self.statuses[s]} {s}" for s in ("ok", "no face", "unreadable"))
        return (
            f"ray: {self.written} images in {self.seconds:.1f} s ({rate:.1f} images/s, {self.actors} actors, "
            f"{self.batches} batches): {counts}; {self.skipped} skipped (already in {self.folder})"
        )


@dataclass(frozen=True)
class Inputs:
    """Local image files (named as given) and URIs for Ray Data to list and read."""

    files: list[str]
    uris: list[str]


def collect_inputs(paths: Sequence[str]) -> Inputs:
    """Expand list files and folders; FileNotFoundError / ValueError as core.batch.image_paths raises."""
    local: list[str] = []
    uris: list[str] = []
    for raw in paths:
        path = Path(raw)
        if "://" in raw and not path.exists():
            uris.append(raw)
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            listed = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            nested = collect_inputs([entry for entry in listed if entry and not entry.startswith("#")])
            local += nested.files
            uris += nested.uris
        else:
            local.append(raw)
    files = [str(p) for p in image_paths(local)] if local else []
    if not files and not uris:
        raise ValueError("no images found in " + ", ".join(paths))
    return Inputs(files, uris)


class ActorPredictor:
    """One actor of the pool: the detector and the models, loaded once; predicts a batch of files."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import torch

        from core.faces.detection import FaceDetector
        from core.models.loading import load_model

        self.settings = PredictSettings(**{**settings, "models": tuple(settings["models"])})
        torch.set_num_threads(self.settings.threads)
        self.models = [load_model(name) for name in self.settings.models]
        self.detector = FaceDetector(
            self.settings.min_face_size,
            self.settings.threshold,
            self.settings.max_faces,
            align=self.settings.align,
        )
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        started = time.perf_counter()
        if "bytes" in batch:
            results = [
                self._from_bytes(str(p), bytes(b)) for p, b in zip(batch["path"], batch["bytes"], strict=True)
            ]
        else:
            names = [Path(str(name)) for name in batch["image"]]
            results = list(predict_files(names, self.models, self.detector, self.settings.flip_tta))
        share = (time.perf_counter() - started) / max(len(results), 1)
        return {
            "image": [str(r.path) for r in results],
            "status": [r.status for r in results],
            "entry": [json.dumps(r.to_dict()) for r in results],
            "rows": [json.dumps(r.csv_rows()) for r in results],
            "probabilities": [json.dumps(raw_probabilities(r)) for r in results],
            "pid": [self.pid] * len(results),
            "seconds": [share] * len(results),
        }

    def _from_bytes(self, name: str, data: bytes) -> FileResult:
        """A file Ray Data read: decoded from its bytes, its error worded as predict_files words it."""
        from core.pipeline import analyze

        try:
            image = decode_image(data, name=name)
        except ImageError as err:
            return FileResult(Path(name), error=str(err).removeprefix(f"{name}: "))
        analysis = analyze(
            image, self.models, self.detector, cam_method=None, flip_tta=self.settings.flip_tta
        )
        return FileResult(Path(name), analysis)


def raw_probabilities(result: FileResult) -> list[dict[str, list[float]]]:
    """Per face, each model's probabilities at full precision (the files round them to 4 places)."""
    if result.analysis is None:
        return []
    return [
        {name: [float(p) for p in probs] for name, probs in face.probabilities.items()}
        for face in result.analysis.faces
    ]


Record = dict[str, Any]


def predict_on_ray(
    paths: Sequence[str],
    out: str | Path,
    settings: PredictSettings,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_record: Callable[[Record], None] | None = None,
) -> RunSummary:
    """Predict every input not yet in `out` on Ray; returns the run's summary.

    on_record receives each result as the driver gets it (image, status, entry, rows,
    probabilities, pid of the actor, seconds), before it is written.
    """
    inputs = collect_inputs(paths)
    started = time.perf_counter()
    with ResultsFolder(out, asdict(settings)) as folder, ray_session(address):
        import ray

        quiet_ray_data()
        todo = [name for name in inputs.files if name not in folder.done]
        summary = RunSummary(folder.folder, found=len(inputs.files), skipped=len(inputs.files) - len(todo))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        summary.actors = max(1, actors or cpus // settings.threads)
        datasets = []
        if todo:
            blocks = min(len(todo), max(summary.actors, math.ceil(len(todo) / batch_size)))
            datasets.append(
                ray.data.from_items([{"image": name} for name in todo], override_num_blocks=blocks)
            )
        if inputs.uris:
            datasets.append(_uri_dataset(inputs.uris, folder.done))
        bar = progress_bar(len(todo))  # files under URIs are counted as they come
        try:
            for dataset in datasets:
                for batch in _predicted(dataset, settings, summary.actors, batch_size):
                    summary.batches += 1
                    for record in _records(batch):
                        if on_record is not None:
                            on_record(record)
                        if folder.write(
                            record["image"], json.loads(record["entry"]), json.loads(record["rows"])
                        ):
                            summary.statuses[record["status"]] += 1
                            summary.busy_seconds += float(record["seconds"])
                            bar.update()
        except ray.exceptions.RayError as err:  # a worker's own error, e.g. a model it cannot find
            raise RayRunError(f"the run on Ray failed: {ray_error_line(err)}") from err
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _uri_dataset(uris: list[str], done: set[str]) -> Any:
    """Ray Data lists and reads the files under the URIs (image suffixes only), leaving out those done."""
    import ray

    dataset = ray.data.read_binary_files(
        uris, include_paths=True, file_extensions=[suffix.lstrip(".") for suffix in SUFFIXES]
    )
    return dataset.filter(lambda row: row["path"] not in done) if done else dataset


def _predicted(dataset: Any, settings: PredictSettings, actors: int, batch_size: int) -> Any:
    """The dataset's batches of results, in input order, from a pool of `actors` ActorPredictors."""
    import ray

    mapped = dataset.map_batches(
        ActorPredictor,
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={"settings": asdict(settings)},
        num_cpus=settings.threads,
        batch_format="numpy",
        runtime_env={"env_vars": {**worker_env(), "OMP_NUM_THREADS": str(settings.threads)}},
    )
    return mapped.iter_batches(batch_size=None, batch_format="numpy")


def _records(batch: dict[str, Any]) -> list[Record]:
    """A batch of columns as one dict per file."""
    keys = list(batch)
    return [dict(zip(keys, values, strict=True)) for values in zip(*(batch[k] for k in keys), strict=True)]
