"""Predict over many image files: one result per file, streamed as a table, JSON or CSV rows.

A file that cannot be read becomes a row with its error; it never stops the batch. Rows are
written as each file is done, so thousands of files need no more memory than one.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from tqdm import tqdm

from core.explain.compare import FaceComparison
from core.faces.detection import FaceDetector
from core.faces.images import SUFFIXES, ImageError, decode_image
from core.models.registry import LoadedModel
from core.pipeline import CSV_COLUMNS, Analysis, analyze, compare_in_analysis

# From this many files on, the progress bar shows even when stderr is not a terminal (a log
# file of a long run): there it redraws at most every LOG_PROGRESS_SECONDS.
PROGRESS_MIN_FILES = 100
LOG_PROGRESS_SECONDS = 30.0
BATCH_CSV_COLUMNS = ("image", "status", *CSV_COLUMNS[1:], "error")


@dataclass(frozen=True)
class FileResult:
    """What one file gave: its analysis, or the reason it could not be read."""

    path: Path
    analysis: Analysis | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        """ok, no face or unreadable."""
        if self.analysis is None:
            return "unreadable"
        return "ok" if self.analysis.faces else "no face"

    def to_dict(self) -> dict:
        """The JSON object of this file: "image", "error" (null when read) and the analysis."""
        entry = {"image": str(self.path), "error": self.error}
        if self.analysis is not None:
            entry.update(self.analysis.to_dict())
        return entry

    def csv_rows(self) -> list[list]:
        """Rows under BATCH_CSV_COLUMNS: one per face and model, or one saying why there is none."""
        source, analysis = str(self.path), self.analysis
        if analysis is not None and analysis.faces:
            return [[row[0], "ok", *row[1:], ""] for row in analysis.csv_rows(source)]
        blanks = [""] * (len(BATCH_CSV_COLUMNS) - 3)
        return [[source, self.status, *blanks, self.error or ""]]


def image_paths(paths: Sequence[str]) -> list[Path]:
    """The image files named or found (recursively, by suffix) in folders, in order.

    Raises FileNotFoundError for a path that does not exist and ValueError when no image is found.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    if not found:
        raise ValueError("no images found in " + ", ".join(paths))
    return found


def predict_files(
    paths: Iterable[Path], models: list[LoadedModel], detector: FaceDetector, flip_tta: bool = False
) -> Iterator[FileResult]:
    """Analyse each file in turn (no saliency); an unreadable file yields its error instead."""
    for path in paths:
        try:
            image = decode_image(path)
        except ImageError as err:
            yield FileResult(path, error=str(err).removeprefix(f"{path}: "))
            continue
        yield FileResult(path, analyze(image, models, detector, cam_method=None, flip_tta=flip_tta))


def progress_bar(total: int, stream: TextIO | None = None) -> tqdm:
    """A bar over `total` files on stream (default stderr): on a terminal always, in a log only for large batches."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    return tqdm(
        total=total,
        unit="image",
        file=stream,
        disable=not terminal and total < PROGRESS_MIN_FILES,
        mininterval=0.1 if terminal else LOG_PROGRESS_SECONDS,
    )


class ResultWriter(Protocol):
    def write(self, result: FileResult) -> None: ...

    def close(self) -> None: ...


class TableWriter:
    """One line per face (box and each model's emotion), or one saying why there is none."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, result: FileResult) -> None:
        source, analysis = str(result.path), result.analysis
        if analysis is None:
            lines = [f"{source}: {result.error}"]
        elif not analysis.faces:
            lines = [f"{source}: no face found"]
        else:
            lines = []
            for number, face in enumerate(analysis.faces, start=1):
                x1, y1, x2, y2 = (round(v) for v in face.face.box)
                verdicts = "  ".join(
                    f"{name}: {face.top(name)[0]} {face.top(name)[1]:.0%}" for name in analysis.models
                )
                agreement = "" if face.agree() else "  (models disagree)"
                warning = f"  ({face.warning()})" if face.flags else ""
                lines.append(f"{source}  face {number} [{x1},{y1},{x2},{y2}]  {verdicts}{agreement}{warning}")
        print("\n".join(lines), file=self.out, flush=True)

    def close(self) -> None:
        pass


class JsonWriter:
    """A JSON array with one object per file, written element by element.

    Each object has "image" and "error" (null when read) and the analysis (boxes,
    landmarks, per-class probabilities) when the file was read.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0
        self.out.write("[\n")

    def write(self, result: FileResult) -> None:
        self.out.write(("" if self.count == 0 else ",\n") + json.dumps(result.to_dict(), indent=2))
        self.out.flush()
        self.count += 1

    def close(self) -> None:
        self.out.write("\n]\n")
        self.out.flush()


class CsvWriter:
    """CSV rows: one per face and model; one per file without a face or unreadable (status, error)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.writer = csv.writer(out)
        self.writer.writerow(BATCH_CSV_COLUMNS)

    def write(self, result: FileResult) -> None:
        self.writer.writerows(result.csv_rows())
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


@dataclass(frozen=True)
class ExplainRow:
    """One face's two-model comparison, or a file's reason for having none (no face, unreadable)."""

    path: Path
    face: int | None = None
    box: tuple[float, float, float, float] | None = None
    comparison: FaceComparison | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        entry: dict = {"image": str(self.path), "face": self.face, "error": self.error}
        if self.box is not None:
            entry["box"] = [round(v, 1) for v in self.box]
        if self.comparison is not None:
            entry.update(self.comparison.to_dict())
        return entry


def explain_files(
    paths: Iterable[Path],
    models: tuple[LoadedModel, LoadedModel],
    detector: FaceDetector,
    method: str = "gradcam",
    layer: str | None = None,
    steps: int = 10,
    random_count: int = 3,
    fill: str = "blur",
) -> Iterator[ExplainRow]:
    """Compare two models' saliency on every face of each file (core.explain.compare), one row per face;
    a file without a face or that cannot be read is one row with its error."""
    for path in paths:
        try:
            image = decode_image(path)
        except ImageError as err:
            yield ExplainRow(path, error=str(err).removeprefix(f"{path}: "))
            continue
        analysis = analyze(image, list(models), detector, cam_method=method, cam_layer=layer)
        if not analysis.faces:
            yield ExplainRow(path, error="no face found")
        for number, result in enumerate(analysis.faces):
            comparison = compare_in_analysis(
                analysis, number, *models, method, layer, steps, random_count, fill
            )
            yield ExplainRow(path, number + 1, result.face.box, comparison)
