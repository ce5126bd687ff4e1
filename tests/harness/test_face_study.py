"""The face-defaults study (tests/harness/face_study.py) runs end to end on generated faces and its records add up."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.harness.face_study import main


def test_scene_study_reports_each_minimum_size_and_every_truth_face(
    isolated_home: Path, fer_folders: Path, tmp_path: Path, capsys
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "study.json"
    args = ["--data", str(fer_folders), "--scenes", "2", "--sizes", "20", "40", "--out", str(out)]
    assert main(args) == 0
    saved = json.loads(out.read_text())
    report, records = saved["report"], saved["faces"]
    assert [row["min_face_size"] for row in report["rows"]] == [20, 40]
    assert set(records) == {"photo 20", "photo 40"}
    for row in report["rows"]:
        faces = records[f"photo {row['min_face_size']}"]
        assert len(faces) == report["faces"] > 0, "every truth face of the scenes has a record"
        found = sum(face["found_width"] is not None for face in faces)
        assert row["recall"] == found / len(faces)
        assert row["detect ms 640x480"] > 0
    assert len(records["photo 20"]) >= 1 and "by_width" in report
    printed = capsys.readouterr().out
    assert printed.count('"min_face_size"') == 2


def test_rotation_study_counts_faces_per_angle(isolated_home: Path, fer_folders: Path, capsys) -> None:
    torch.set_num_threads(1)
    assert main(["--data", str(fer_folders), "--rotation", "3", "--angles", "0", "30"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["tilt"] for row in rows] == [0.0, 30.0]
    for row in rows:
        assert row["faces"] == 3 and 0 <= row["found"] <= 3
        accuracies = [value for key, value in row.items() if key.endswith(("aligned", "upright"))]
        assert len(accuracies) == 4 and all(0 <= a <= row["found"] / 3 for a in accuracies)
