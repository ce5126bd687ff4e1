"""Labelled face datasets: FER2013 (CSV or folders) and any folder of labelled faces.

Every loader returns a FaceDataset of 48x48 uint8 grayscale arrays, decoded once and
cached on disk as .npz so an epoch never decodes JPEGs again.
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from core.faces.images import SUFFIXES, ImageError, decode_image, to_gray_array
from core.labels import CROP_SIZE, EMOTIONS, label_index

IMAGE_SUFFIXES = set(SUFFIXES)
CSV_SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class DatasetError(ValueError):
    """A malformed dataset; the message names the row or file at fault."""


@dataclass
class FaceDataset:
    """Faces as uint8 arrays (N, 48, 48) with labels in core.labels.EMOTIONS order."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}

    def subset(self, indices: np.ndarray) -> FaceDataset:
        return FaceDataset(self.images[indices], self.labels[indices], [self.sources[i] for i in indices])


def cache_dir() -> Path:
    """Where decoded datasets are cached (FER_STUDIO_CACHE, default ~/.cache/fer-studio)."""
    return Path(os.environ.get("FER_STUDIO_CACHE", Path.home() / ".cache" / "fer-studio"))


def load_dataset(
    path: str | Path,
    split: str | None = None,
    face_cropper: Callable[[Image.Image], np.ndarray | None] | None = None,
    use_cache: bool = True,
) -> FaceDataset:
    """Load a dataset from a FER2013 CSV, a `root/split/emotion/*` tree or `root/emotion/*`.

    `split` picks train/val/test from a CSV or a split tree; a folder that is itself a
    split (`root/emotion/*`) needs none. `face_cropper` turns a full photo into a 48x48
    crop (face detection) for folders of photos; without it images are centre-cropped.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DatasetError(f"{path}: expected a fer2013.csv file or a folder")
        return _cached(path, split, "csv", lambda: load_fer_csv(path, split), use_cache)
    if split is not None and not (path / split).is_dir() and not _has_class_folders(path):
        raise DatasetError(f"{path}: no '{split}' folder")
    path = _split_folder(path, split)
    kind = "detect" if face_cropper else "folder"
    return _cached(path, None, kind, lambda: load_labelled_folder(path, face_cropper), use_cache)


def class_counts(path: str | Path, split: str | None = None) -> dict[str, int]:
    """Faces per emotion of a dataset (as load_dataset reads it); folders are counted, not decoded."""
    path = Path(path)
    if path.is_file() or not path.exists():
        return load_dataset(path, split).class_counts()
    root = _split_folder(path, split)
    if not _has_class_folders(root):
        raise DatasetError(f"{root}: no emotion folders" + (f" and no '{split}' folder" if split else ""))
    counts = dict.fromkeys(EMOTIONS, 0)
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        try:
            emotion = EMOTIONS[label_index(class_dir.name)]
        except ValueError as err:
            raise DatasetError(f"{class_dir}: {err}") from None
        counts[emotion] += sum(
            1 for f in class_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
    return counts


def check_held_out(
    train: str | Path, train_split: str | None, val: str | Path, val_split: str | None
) -> None:
    """Refuse validation data that load_dataset would read from the training images themselves.

    A folder of emotion folders with no train/ and val/ inside is one split whatever split
    is asked for, and a CSV without a split is every row.
    """
    train_path, val_path = Path(train), Path(val)
    if not (train_path.exists() and val_path.exists()):
        return  # load_dataset says which is missing
    if train_path.is_file() or val_path.is_file():
        same = train_path.resolve() == val_path.resolve() and (
            train_split == val_split or None in (train_split, val_split)
        )
    else:
        same = (
            _split_folder(train_path, train_split).resolve() == _split_folder(val_path, val_split).resolve()
        )
    if same:
        raise DatasetError(
            f"{val_path}: the validation data would be the training images, so its accuracy would "
            f"say nothing about new faces; give separate validation data (--val-data), or arrange "
            f"the data as {train_path}/train/<emotion>/ and {train_path}/val/<emotion>/"
        )


def load_fer_csv(path: str | Path, split: str | None = None) -> FaceDataset:
    """Read Kaggle's fer2013.csv (columns emotion, pixels, Usage); split is train/val/test."""
    usage = None
    if split is not None:
        if split not in CSV_SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(CSV_SPLITS)}")
        usage = CSV_SPLITS[split]
    with open(path, "rb") as handle:
        reader = csv.DictReader(_utf8_lines(handle, path))
        try:
            rows = list(_fer_rows(reader, path, usage))
        except csv.Error as err:  # e.g. a field over 131,072 characters; DictReader.line_num lags
            raise DatasetError(
                f"{path}, line {reader.reader.line_num}: not a readable CSV row ({err})"
            ) from None
    if not rows:
        raise DatasetError(f"{path}: no rows" + (f" with Usage {usage}" if usage else ""))
    images, labels, sources = zip(*rows, strict=True)
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), list(sources))


def _utf8_lines(handle: IO[bytes], path: Path | str) -> Iterator[str]:
    """The lines of a UTF-8 file (a leading byte-order mark is dropped), naming the line that is not."""
    for number, line in enumerate(handle, start=1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise DatasetError(
                f"{path}, line {number}: not UTF-8 text (byte {line[err.start]:#04x} at column {err.start + 1})"
            ) from None


def _fer_rows(
    reader: csv.DictReader, path: Path | str, usage: str | None
) -> Iterator[tuple[np.ndarray, int, str]]:
    """(48x48 face, label, "row N") for each row of a FER2013 CSV with the given Usage."""
    missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    for row_number, row in enumerate(reader, start=2):
        if usage is not None and row.get("Usage", "").strip() != usage:
            continue
        where = f"{path}, row {row_number}"
        try:
            label = int(row["emotion"])
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: emotion {row['emotion']!r} is not a number") from None
        if not 0 <= label < len(EMOTIONS):
            raise DatasetError(f"{where}: emotion {label} is outside 0..{len(EMOTIONS) - 1}")
        try:
            pixels = np.array((row["pixels"] or "").split(), dtype=np.int64)
        except ValueError:
            raise DatasetError(f"{where}: pixels are not all integers") from None
        if pixels.size != CROP_SIZE * CROP_SIZE:
            raise DatasetError(f"{where}: {pixels.size} pixel values, expected {CROP_SIZE * CROP_SIZE}")
        if pixels.min() < 0 or pixels.max() > 255:
            raise DatasetError(f"{where}: pixel values outside 0..255")
        yield pixels.astype(np.uint8).reshape(CROP_SIZE, CROP_SIZE), label, f"row {row_number}"


def labelled_files(root: str | Path) -> list[tuple[Path, int]]:
    """The image files of `root/<emotion>/*` with their class indices, in a fixed order; DatasetError
    for a folder with no emotion folders, an unknown emotion name or an empty class folder."""
    root = Path(root)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root}: no emotion folders (expected e.g. {root}/happy/*.jpg)")
    found = []
    for class_dir in class_dirs:
        try:
            label = label_index(class_dir.name)
        except ValueError as err:
            raise DatasetError(f"{class_dir}: {err}") from None
        files = sorted(f for f in class_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"{class_dir}: empty class folder (no images)")
        found += [(file, label) for file in files]
    return found


def load_labelled_folder(
    root: str | Path, face_cropper: Callable[[Image.Image], np.ndarray | None] | None = None
) -> FaceDataset:
    """Read `root/<emotion>/*` images of any size and mode into 48x48 grayscale crops."""
    root = Path(root)
    images, labels, sources = [], [], []
    for file, label in labelled_files(root):
        try:
            crop = _crop_file(file, face_cropper)
        except ImageError as err:
            raise DatasetError(str(err)) from None
        if crop is None:
            continue  # no face found: a photo, not a defect of the dataset
        images.append(crop)
        labels.append(label)
        sources.append(str(file.relative_to(root)))
    if not images:
        raise DatasetError(f"{root}: no usable faces")
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), sources)


def _crop_file(
    file: Path, face_cropper: Callable[[Image.Image], np.ndarray | None] | None
) -> np.ndarray | None:
    image = decode_image(file)
    if face_cropper is not None:
        return face_cropper(image)
    if image.size == (CROP_SIZE, CROP_SIZE):
        return to_gray_array(image)
    return to_gray_array(_centre_square(image).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BILINEAR))


def _centre_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def _split_folder(path: Path, split: str | None) -> Path:
    """The folder load_dataset reads: path/split when there is one, else path itself."""
    return path / split if split is not None and (path / split).is_dir() else path


def _has_class_folders(path: Path) -> bool:
    for child in path.iterdir():
        if child.is_dir():
            try:
                label_index(child.name)
                return True
            except ValueError:
                continue
    return False


def _fingerprint(path: Path, split: str | None, kind: str) -> str:
    """Changes whenever a file under `path` is added, removed or modified."""
    digest = hashlib.sha1(f"{path.resolve()}|{split}|{kind}|v1".encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cached(
    path: Path,
    split: str | None,
    kind: str,
    load: Callable[[], FaceDataset],
    use_cache: bool,
) -> FaceDataset:
    if not use_cache:
        return load()
    file = cache_dir() / f"{path.name}-{split or 'all'}-{_fingerprint(path, split, kind)}.npz"
    if file.exists():
        with np.load(file) as data:
            return FaceDataset(data["images"], data["labels"], list(data["sources"]))
    dataset = load()
    file.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of this process's own: two processes (e.g. two DDP ranks) caching the same
    # dataset at once must not rename each other's file away.
    temporary = file.with_name(f"{file.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(temporary, images=dataset.images, labels=dataset.labels, sources=np.array(dataset.sources))
    os.replace(temporary, file)
    return dataset
