"""Dataset loaders: FER2013 CSV and folders, labelled photo folders, cache, malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.datasets import DatasetError, check_held_out, class_counts, load_dataset, load_fer_csv
from core.labels import EMOTIONS, label_index


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["emotion,pixels,Usage"] + [f"{e},{p},{u}" for e, p, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def pixels(value: int, count: int = 48 * 48) -> str:
    return " ".join([str(value)] * count)


def test_csv_splits_and_labels(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "fer2013.csv",
        [("3", pixels(10), "Training"), ("0", pixels(20), "Training"), ("6", pixels(30), "PublicTest")],
    )
    train = load_fer_csv(path, "train")
    assert train.images.shape == (2, 48, 48) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [3, 0] and train.images[1, 0, 0] == 20
    val = load_dataset(path, "val")
    assert val.labels.tolist() == [6] and val.class_counts()["neutral"] == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("9", pixels(1), "Training"), "row 2: emotion 9 is outside"),
        (("x", pixels(1), "Training"), "row 2: emotion 'x' is not a number"),
        (("1", pixels(1, 100), "Training"), "row 2: 100 pixel values, expected 2304"),
        (("1", pixels(300), "Training"), "row 2: pixel values outside"),
        (("1", "a b c", "Training"), "row 2: pixels are not all integers"),
    ],
)
def test_malformed_csv_rows_are_named(tmp_path: Path, row: tuple[str, str, str], message: str) -> None:
    path = write_csv(tmp_path / "bad.csv", [row])
    with pytest.raises(DatasetError, match=message):
        load_fer_csv(path)


def test_csv_without_columns_or_rows(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_fer_csv(tmp_path / "a.csv")
    write_csv(tmp_path / "b.csv", [("1", pixels(1), "Training")])
    with pytest.raises(DatasetError, match="no rows with Usage PrivateTest"):
        load_fer_csv(tmp_path / "b.csv", "test")


def test_fer_folder_tree(fer_folders: Path) -> None:
    train = load_dataset(fer_folders, "train")
    assert len(train) == 6 * len(EMOTIONS)
    assert set(train.class_counts().values()) == {6}
    assert train.sources[0].startswith("angry/")


def test_class_counts_agree_with_the_loaded_dataset(fer_folders: Path, tmp_path: Path) -> None:
    happy = fer_folders / "train" / "happy"
    (happy / "notes.txt").write_text("not an image")
    (happy / "extra.png").write_bytes(next(happy.glob("*.png")).read_bytes())
    counts = class_counts(fer_folders, "train")
    assert counts == load_dataset(fer_folders, "train", use_cache=False).class_counts()
    assert counts["happy"] == 7 and counts["angry"] == 6 and list(counts) == list(EMOTIONS)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no emotion folders"):
        class_counts(empty, "train")
    (fer_folders / "val" / "grumpy").mkdir()
    with pytest.raises(DatasetError, match="grumpy"):
        class_counts(fer_folders, "val")


def test_cache_is_used_and_invalidated(fer_folders: Path, isolated_home: Path) -> None:
    first = load_dataset(fer_folders, "train")
    cached = list((isolated_home / "cache").glob("*.npz"))
    assert len(cached) == 1
    again = load_dataset(fer_folders, "train")
    assert np.array_equal(first.images, again.images)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(fer_folders / "train" / "happy" / "extra.png")
    grown = load_dataset(fer_folders, "train")
    assert len(grown) == len(first) + 1


def test_labelled_photo_folder_of_any_size_and_synonyms(tmp_path: Path) -> None:
    for name in ("happiness", "Sad"):
        (tmp_path / name).mkdir()
        Image.new("RGBA", (120, 90), (10, 200, 10, 255)).save(tmp_path / name / "a.png")
    faces = load_dataset(tmp_path)
    assert faces.images.shape == (2, 48, 48)
    assert sorted(faces.labels.tolist()) == [label_index("happy"), label_index("sad")]


def test_folder_with_face_detection_skips_photos_without_faces(tmp_path: Path, astronaut, detector) -> None:
    from core.faces.detection import largest_face_crop

    (tmp_path / "happy").mkdir()
    astronaut.save(tmp_path / "happy" / "astronaut.jpg")
    Image.new("RGB", (200, 200), "white").save(tmp_path / "happy" / "blank.jpg")
    faces = load_dataset(tmp_path, face_cropper=lambda image: largest_face_crop(detector, image))
    assert len(faces) == 1 and faces.sources == ["happy/astronaut.jpg"]


def test_malformed_folders_are_named(tmp_path: Path) -> None:
    (tmp_path / "contempt").mkdir()
    Image.new("L", (48, 48)).save(tmp_path / "contempt" / "a.png")
    with pytest.raises(DatasetError, match="contempt.*unknown emotion label"):
        load_dataset(tmp_path, use_cache=False)

    empty = tmp_path / "empty_root"
    (empty / "happy").mkdir(parents=True)
    with pytest.raises(DatasetError, match="empty class folder"):
        load_dataset(empty, use_cache=False)

    broken = tmp_path / "broken"
    (broken / "sad").mkdir(parents=True)
    (broken / "sad" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="x.jpg: not a readable image"):
        load_dataset(broken, use_cache=False)

    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no emotion folders"):
        load_dataset(tmp_path / "empty_root" / "happy", use_cache=False)


def test_an_overlong_csv_field_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "long.csv", [("1", pixels(1), "Training"), ("2", pixels(1, 70_000), "Training")]
    )
    with pytest.raises(DatasetError, match=r"long.csv, line 3: not a readable CSV row \(field larger"):
        load_dataset(path, "train")


def test_a_csv_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "latin1.csv", [("1", pixels(1), "Training"), ("2", pixels(2), "Training")])
    text = path.read_bytes().replace(b"Training\n", "Trainingé\n".encode("latin-1"), 2)
    path.write_bytes(text.replace("Trainingé\n".encode("latin-1"), b"Training\n", 1))
    with pytest.raises(DatasetError, match=r"latin1.csv, line 3: not UTF-8 text \(byte 0xe9"):
        load_fer_csv(path)


def test_a_csv_saved_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "excel.csv", [("4", pixels(7), "Training")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_fer_csv(path, "train").labels.tolist() == [4]


def test_validation_on_the_training_images_is_refused(tmp_path: Path, fer_folders: Path) -> None:
    flat = fer_folders / "train"  # emotion folders, no train/ and val/ inside
    with pytest.raises(DatasetError, match="validation data would be the training images"):
        check_held_out(flat, "train", flat, "val")
    with pytest.raises(DatasetError, match="validation data would be the training images"):
        check_held_out(fer_folders, "train", fer_folders / "train", None)
    csv_path = write_csv(tmp_path / "fer.csv", [("1", pixels(1), "Training"), ("2", pixels(2), "PublicTest")])
    with pytest.raises(DatasetError, match="validation data would be the training images"):
        check_held_out(csv_path, None, csv_path, "val")
    check_held_out(fer_folders, "train", fer_folders, "val")
    check_held_out(flat, "train", fer_folders / "val", "val")
    check_held_out(csv_path, "train", csv_path, "val")


def test_two_writers_caching_the_same_dataset_at_once_both_get_it(tmp_path, monkeypatch) -> None:
    """Two DDP ranks (or visitors) load and cache one folder at the same moment: neither renames the
    other's temporary file away."""
    import threading

    from core.data import datasets
    from tests.helpers import write_fer_folders

    root = write_fer_folders(tmp_path / "fer", count_per_class=2, splits=("val",))
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    both_written = threading.Barrier(2)
    real_replace = datasets.os.replace

    def replace_once_both_wrote(source, target):
        both_written.wait(timeout=30)  # both temporary files are written before either is renamed
        real_replace(source, target)

    monkeypatch.setattr(datasets.os, "replace", replace_once_both_wrote)
    found, errors = [], []

    def load() -> None:
        try:
            found.append(len(datasets.load_dataset(str(root / "val"))))
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and found == [14, 14]
