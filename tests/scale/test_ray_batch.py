"""predict on a real local Ray: the local path's rows and probabilities, resume, a killed actor."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.batch import CsvWriter, image_paths, predict_files
from core.cli import main
from core.faces.detection import PHOTO_MIN_FACE_SIZE, FaceDetector
from core.models.loading import load_model
from core.scale.ray_batch import PredictSettings, collect_inputs, predict_on_ray
from tests.scale.conftest import write_photos

pytestmark = pytest.mark.slow


def local_csv(paths: list[Path], names: list[str]) -> str:
    """What `predict --csv` writes for these files."""
    buffer = io.StringIO(newline="")
    writer = CsvWriter(buffer)
    for result in predict_files(paths, [load_model(n) for n in names], FaceDetector()):
        writer.write(result)
    return buffer.getvalue()


def read(path: Path) -> str:
    """A file's text with its line endings as written (CSV rows end in \\r\\n)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return handle.read()


def jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def test_ray_gives_the_local_rows_boxes_and_probabilities(
    local_ray, tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys
) -> None:
    photos = write_photos(tmp_path / "photos", astronaut)
    local_out = tmp_path / "local.csv"
    assert main(["predict", str(photos), "--models", *tiny_registry, "--json", "--csv", str(local_out)]) == 2
    local_entries = json.loads(capsys.readouterr().out)

    records: list[dict] = []
    settings = PredictSettings(tuple(tiny_registry), PHOTO_MIN_FACE_SIZE)
    summary = predict_on_ray([str(photos)], tmp_path / "out", settings, on_record=records.append)

    assert read(tmp_path / "out" / "predictions.csv") == read(local_out)
    assert jsonl(tmp_path / "out") == local_entries
    assert summary.statuses == {"ok": 3, "no face": 1, "unreadable": 1} and summary.skipped == 0
    broken = next(e for e in local_entries if e["image"].endswith("broken.jpg"))
    assert broken["error"].startswith("not a readable image")
    # Full precision: every face's box and probabilities as the local pipeline computes them.
    models = [load_model(name) for name in tiny_registry]
    local = list(predict_files(image_paths([str(photos)]), models, FaceDetector()))
    assert [r["image"] for r in records] == [str(r.path) for r in local]
    for record, result in zip(records, local, strict=True):
        faces = result.analysis.faces if result.analysis else []
        remote = json.loads(record["probabilities"])
        assert len(remote) == len(faces)
        for face_probs, face in zip(remote, faces, strict=True):
            for name in tiny_registry:
                np.testing.assert_allclose(face_probs[name], face.probabilities[name], atol=1e-5, rtol=0)
        entry = json.loads(record["entry"])
        assert [f["box"] for f in entry.get("faces", [])] == [f.face.as_dict()["box"] for f in faces]


def test_a_rerun_skips_what_is_done_and_finishes_a_torn_run(
    local_ray, tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys
) -> None:
    photos = write_photos(tmp_path / "photos", astronaut)
    out = tmp_path / "out"
    command = ["predict", str(photos), "--models", *tiny_registry, "--ray", "--out", str(out)]
    # First as a user runs it: a process of its own, which starts (and stops) a local Ray for the run.
    first = subprocess.run(
        [sys.executable, "-m", "core", *command], capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 2, first.stderr
    err = first.stderr
    assert "ray: 5 images" in err and "1 unreadable" in err and "0 skipped" in err
    assert "error: 1 of 5 images could not be read" in err
    complete = {name: read(out / name) for name in ("predictions.csv", "predictions.jsonl")}

    # A run that died while writing: the last file's CSV rows are there, its JSONL line torn.
    lines = complete["predictions.jsonl"].splitlines(keepends=True)
    assert [json.loads(line)["image"].rsplit("/", 1)[1] for line in lines[-2:]] == [
        "face01.png",
        "face02.png",
    ]
    (out / "predictions.jsonl").write_text("".join(lines[:-2]) + lines[-2][:30])
    assert main(command) == 0  # this run's files were all read
    err = capsys.readouterr().err
    assert "ray: 2 images" in err and "2 ok" in err and "3 skipped" in err
    assert {name: read(out / name) for name in complete} == complete

    assert main(command) == 0  # nothing left to do
    assert "ray: 0 images" in capsys.readouterr().err
    assert {name: read(out / name) for name in complete} == complete

    assert main([*command, "--flip-tta"]) == 2  # other settings: not mixed into these results
    assert "holds results made with other settings (flip_tta)" in capsys.readouterr().err


def test_a_killed_actor_loses_nothing_and_doubles_nothing(
    local_ray, tiny_registry, astronaut: Image.Image, tmp_path: Path
) -> None:
    photos = write_photos(tmp_path / "photos", astronaut, copies=6)
    killed: list[int] = []

    def kill_first_actor(record: dict) -> None:
        if not killed:
            killed.append(int(record["pid"]))
            os.kill(killed[0], signal.SIGKILL)

    records: list[dict] = []

    def watch(record: dict) -> None:
        kill_first_actor(record)
        records.append(record)

    settings = PredictSettings(tuple(tiny_registry), PHOTO_MIN_FACE_SIZE)
    summary = predict_on_ray(
        [str(photos)], tmp_path / "out", settings, actors=2, batch_size=1, on_record=watch
    )
    names = [str(p) for p in image_paths([str(photos)])]
    assert killed and any(int(r["pid"]) != killed[0] for r in records)  # the pool went on without it
    assert [entry["image"] for entry in jsonl(tmp_path / "out")] == names
    assert summary.written == len(names) == 8
    paths = image_paths([str(photos)])
    assert read(tmp_path / "out" / "predictions.csv") == local_csv(paths, tiny_registry)


def test_inputs_from_list_files_folders_and_uris(tmp_path: Path, astronaut: Image.Image) -> None:
    photos = write_photos(tmp_path / "photos", astronaut, copies=1)
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# photos\n{photos / 'face00.png'}\n\n{photos}\ns3://bucket/faces/\n")
    inputs = collect_inputs([str(listing)])
    assert inputs.files[0] == str(photos / "face00.png") and len(inputs.files) == 4
    assert inputs.uris == ["s3://bucket/faces/"]
    with pytest.raises(FileNotFoundError):
        collect_inputs([str(tmp_path / "missing")])


def test_evaluate_detect_faces_on_ray_gives_the_local_result(
    local_ray, tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "photos"
    for emotion, copies in (("happy", 2), ("sad", 1)):
        write_photos(root / emotion, astronaut, copies=copies)
        (root / emotion / "broken.jpg").unlink()  # an unreadable photo stops an evaluation, there and here
    command = ["evaluate", "--model", tiny_registry[0], "--data", str(root), "--json", "--detect-faces"]
    assert main([*command, "--no-occlusion"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*command, "--no-occlusion", "--ray"]) == 0
    assert (
        json.loads(capsys.readouterr().out) == local and local["count"] == 3
    )  # the blank photos have no face
    assert main([*command[:-2], "--ray"]) == 2
    assert "use it with --detect-faces" in capsys.readouterr().err


def test_videos_on_ray_give_the_local_csv_and_resume(
    local_ray, tiny_registry, tmp_path: Path, capsys
) -> None:
    from tests.harness.bench import sample_clip

    clips = tmp_path / "clips"
    clips.mkdir()
    sample_clip(clips / "a.mp4", 0.5, fps=10)
    sample_clip(clips / "b.mp4", 0.3, fps=10)
    (clips / "broken.mp4").write_bytes(b"not a video")
    local = tmp_path / "a.csv"
    assert main(["video", str(clips / "a.mp4"), "--models", *tiny_registry, "--csv", str(local)]) == 0
    out = tmp_path / "out"
    command = ["video", str(clips), "--models", *tiny_registry, "--ray", "--out", str(out)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "ray: 3 videos" in err and "2 analysed, 1 unusable" in err
    records = {
        Path(r["video"]).name: r for r in map(json.loads, (out / "videos.jsonl").read_text().splitlines())
    }
    assert (
        records["broken.mp4"]["error"] and records["a.mp4"]["frames"] == 5 and records["a.mp4"]["tracks"] == 1
    )
    ours = list(csv.reader(io.StringIO(read(out / records["a.mp4"]["csv"]), newline="")))
    theirs = list(csv.reader(io.StringIO(read(local), newline="")))
    assert ours[0] == theirs[0] and len(ours) == len(theirs) > 1
    for mine, local_row in zip(ours[1:], theirs[1:], strict=True):
        for a, b in zip(mine, local_row, strict=True):
            assert a == b or abs(float(a) - float(b)) <= 2e-4, (a, b)  # threads: 1 there, 2 here
    assert main(command) == 0
    assert "ray: 0 videos" in capsys.readouterr().err and len(records) == 3
