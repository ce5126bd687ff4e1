"""The command line: real runs on real images, exit codes and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.cli import main
from core.labels import EMOTIONS
from core.models.registry import find_model

REPO = Path(__file__).resolve().parent.parent


def test_predict_json_on_the_astronaut(tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys) -> None:
    astronaut.save(tmp_path / "astronaut.png")
    Image.new("RGB", (100, 100), "white").save(tmp_path / "blank.png")
    assert main(["predict", str(tmp_path), "--models", *tiny_registry, "--json"]) == 0
    results = {Path(r["image"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert len(results["astronaut.png"]["faces"]) == 1 and results["blank.png"]["faces"] == []
    assert set(results["astronaut.png"]["faces"][0]["predictions"]) == set(tiny_registry)


def test_predict_table_and_bad_files(tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys) -> None:
    astronaut.save(tmp_path / "a.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    assert main(["predict", str(tmp_path / "a.jpg"), str(tmp_path / "broken.jpg"), "--models", "tiny_a"]) == 2
    captured = capsys.readouterr()
    assert "face 1" in captured.out and "tiny_a:" in captured.out
    assert f"{tmp_path / 'broken.jpg'}: not a readable image" in captured.out  # its row, in order
    assert captured.err.strip() == "error: 1 of 2 images could not be read (see their rows)"


def test_predict_rows_for_every_file_in_json_and_csv(
    tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    astronaut.save(photos / "a.png")
    (photos / "b.jpg").write_bytes(b"not a picture")
    Image.new("RGB", (64, 64), "white").save(photos / "c.png")
    out = tmp_path / "rows.csv"
    assert main(["predict", str(photos), "--models", *tiny_registry, "--json", "--csv", str(out)]) == 2
    entries = json.loads(capsys.readouterr().out)
    assert [(Path(e["image"]).name, e["error"], len(e.get("faces", []))) for e in entries] == [
        ("a.png", None, 1),
        ("b.jpg", "not a readable image (accepted: JPEG, PNG, WebP, BMP, TIFF, GIF or PGM)", 0),
        ("c.png", None, 0),
    ]
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(Path(r["image"]).name, r["status"], r["model"]) for r in rows] == [
        ("a.png", "ok", tiny_registry[0]),
        ("a.png", "ok", tiny_registry[1]),
        ("b.jpg", "unreadable", ""),
        ("c.png", "no face", ""),
    ]
    assert rows[2]["error"].startswith("not a readable image") and rows[0]["error"] == ""
    assert abs(sum(float(rows[0][e]) for e in EMOTIONS) - 1) < 0.01
    assert main(["predict", str(photos / "a.png"), "--models", "tiny_a", "--csv"]) == 0
    printed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["status"], r["face"], r["model"]) for r in printed] == [("ok", "1", "tiny_a")]
    assert main(["predict", str(photos), "--json", "--csv"]) == 2
    assert "both write to stdout" in capsys.readouterr().err


def test_predict_shows_progress_for_large_batches_only(
    tiny_registry, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import batch

    for number in range(3):
        Image.new("RGB", (60, 60), (number * 40, 0, 0)).save(tmp_path / f"{number}.png")
    assert main(["predict", str(tmp_path), "--models", "tiny_a"]) == 0
    assert capsys.readouterr().err == ""  # small batch, stderr not a terminal: no bar
    monkeypatch.setattr(batch, "PROGRESS_MIN_FILES", 3)
    assert main(["predict", str(tmp_path), "--models", "tiny_a"]) == 0
    captured = capsys.readouterr()
    assert "3/3" in captured.err and captured.out.count("no face found") == 3

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with batch.progress_bar(1, Terminal()) as bar:
        assert not bar.disable
    with batch.progress_bar(1, io.StringIO()) as bar:
        assert bar.disable


def test_user_mistakes_exit_nonzero_with_one_line(tiny_registry, tmp_path: Path, capsys) -> None:
    assert main(["predict", str(tmp_path / "missing.jpg")]) == 2
    assert main(["evaluate", "--model", "nope", "--data", str(tmp_path)]) == 2
    assert main(["predict", str(tmp_path), "--models", "tiny_a"]) == 2  # empty folder
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert (
        "no such file" in errors[0]
        and "no model named 'nope'" in errors[1]
        and "no images found" in errors[2]
    )


def test_malformed_data_is_one_error_line_for_evaluate_and_train(
    tiny_registry, fer_folders: Path, tmp_path: Path, capsys
) -> None:
    long_row = "1," + " ".join(["9"] * 70_000)  # a pixels field over 131,072 characters
    (tmp_path / "long.csv").write_text(f"emotion,pixels,Usage\n{long_row},Training\n")
    (tmp_path / "latin1.csv").write_bytes("emotion,pixels,Usage\n1,1 2,Entraînement\n".encode("latin-1"))
    run = ["train", "--run-dir", str(tmp_path / "run"), "--epochs", "1", "--data"]
    assert main(["evaluate", "--model", "tiny_a", "--data", str(tmp_path / "long.csv")]) == 2
    assert main([*run, str(tmp_path / "long.csv")]) == 2
    assert main(["evaluate", "--model", "tiny_a", "--data", str(tmp_path / "latin1.csv")]) == 2
    assert main([*run, str(fer_folders / "train")]) == 2  # emotion folders only: no held-out faces
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert all("long.csv, line 2: not a readable CSV row" in line for line in errors[:2])
    assert "latin1.csv, line 2: not UTF-8 text" in errors[2]
    assert "validation data would be the training images" in errors[3] and "--val-data" in errors[3]


def test_evaluate_and_record_on_generated_folder(tiny_registry, fer_folders: Path, capsys) -> None:
    assert (
        main(["evaluate", "--model", "tiny_a", "--data", str(fer_folders), "--split", "val", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 42 and "occlusion" in report
    assert (
        main(["evaluate", "--model", "tiny_a", "--data", str(fer_folders), "--split", "val", "--record"]) == 0
    )
    assert "accuracy" in capsys.readouterr().out
    from core.models.registry import _card_validator, find_model

    card = json.loads(find_model("tiny_a").with_suffix(".json").read_text())
    assert f"{fer_folders.name}/val" in card["evaluations"]
    assert not list(_card_validator.iter_errors(card)), "the recorded card passes the card schema"
    assert main(["models"]) == 0
    assert "tiny_a" in capsys.readouterr().out


def test_clusters_writes_a_picture(tiny_registry, astronaut: Image.Image, tmp_path: Path) -> None:
    astronaut.save(tmp_path / "face.png")
    out = tmp_path / "out.png"
    assert main(["clusters", str(tmp_path / "face.png"), "--model", "tiny_a", "--out", str(out)]) == 0
    picture = Image.open(out)
    assert picture.width == 6 * 48 * 4  # face, attention, clusters and three masked faces


def test_train_command_smoke(fer_folders: Path, tmp_path: Path, isolated_home: Path, capsys) -> None:
    args = [
        "train",
        "--data",
        str(fer_folders),
        "--run-dir",
        str(tmp_path / "run"),
        "--arch",
        "vgg",
        "--arch-args",
        '{"widths": [8, 16]}',
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--ema-decay",
        "0",
        "--input-size",
        "48",
        "--save-as",
        "smoke",
    ]
    assert main(args) == 0
    assert (isolated_home / "models" / "smoke.pt").exists()
    card = json.loads((isolated_home / "models" / "smoke.json").read_text())
    assert card["command"].startswith("python -m core") and "val" in next(iter(card["evaluations"]))


def test_module_entry_point_reports_errors_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "predict", str(tmp_path / "nothing.png")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "core", "train"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--run-dir" in bad.stderr


def test_report_table_and_chart(tiny_registry, fer_folders: Path, tmp_path: Path, capsys) -> None:
    for name in tiny_registry:
        assert (
            main(["evaluate", "--model", name, "--data", str(fer_folders), "--split", "val", "--record"]) == 0
        )
    capsys.readouterr()
    chart = tmp_path / "chart.png"
    assert main(["report", "--models", *tiny_registry, "--evaluation", "fer/val", "--chart", str(chart)]) == 0
    table = capsys.readouterr().out
    assert "| tiny_a | baseline |" in table and "| tiny_b − tiny_a |" in table
    paired = re.search(
        r"tiny_b alone is right on (\d+), tiny_a alone on (\d+), both on (\d+), neither on (\d+)", table
    )
    count = json.loads(find_model("tiny_a").with_suffix(".json").read_text())["evaluations"]["fer/val"][
        "count"
    ]
    assert paired and sum(int(n) for n in paired.groups()) == count and "McNemar" in table
    assert "without region 1" not in table  # no region test recorded yet
    for name in tiny_registry:
        argv = ["evaluate", "--model", name, "--data", str(fer_folders), "--split", "val", "--record"]
        assert main([*argv, "--no-occlusion", "--regions-from", tiny_registry[0]]) == 0
    assert "accuracy without attention region 1" in capsys.readouterr().out
    assert main(["report", "--models", *tiny_registry, "--evaluation", "fer/val", "--chart", ""]) == 0
    table = capsys.readouterr().out
    assert "| model | whole face | without region 1 | without region 2 | without region 3 |" in table
    assert f"of {tiny_registry[0]}'s Grad-CAM for the true class" in table
    assert Image.open(chart).size[0] > 500
    assert main(["report", "--models", "tiny_a", "--evaluation", "other/val", "--chart", ""]) == 2
    assert "no recorded evaluation 'other/val'" in capsys.readouterr().err


def test_register_records_the_training_command(
    fer_folders: Path, tmp_path: Path, isolated_home: Path
) -> None:
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(fer_folders), "--run-dir", str(run_dir), "--arch", "seed_cnn",
            "--epochs", "1", "--batch-size", "16", "--ema-decay", "0", "--input-size", "48"]  # fmt: skip
    assert main(args) == 0
    command = "python -m core train --run-dir run --epochs 1"
    assert main(["register", str(run_dir), "--name", "registered", "--train-command", command]) == 0
    card = json.loads((isolated_home / "models" / "registered.json").read_text())
    assert card["command"] == command and card["epochs_completed"] == 1


def test_explain_json_rows_and_errors(tiny_registry, astronaut: Image.Image, tmp_path: Path, capsys) -> None:
    astronaut.save(tmp_path / "astronaut.png")
    Image.new("RGB", (100, 100), "white").save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "pictures"
    argv = ["explain", str(tmp_path), "--models", *tiny_registry, "--json", "--steps", "4", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    rows = {Path(r["image"]).name: r for r in json.loads(captured.out)}
    assert rows["blank.png"]["error"] == "no face found"
    assert rows["broken.jpg"]["error"].startswith("not a readable image")
    face = rows["astronaut.png"]
    assert face["error"] is None and face["face"] == 1
    for name in tiny_registry:
        numbers = face["models"][name]
        assert sum(numbers["parts"].values()) == pytest.approx(1.0, abs=1e-3)
        assert 0 <= numbers["deletion_auc"] <= 1 and 0 <= numbers["random_deletion_auc"] <= 1
    assert -1 <= face["agreement"]["spearman"] <= 1 and 0 <= face["agreement"]["top20_iou"] <= 1
    pictures = sorted(p.name for p in out.iterdir())
    assert pictures == sorted(f"astronaut_face1_{n}.png" for n in (*tiny_registry, "difference", "deletion"))
    assert Image.open(out / "astronaut_face1_deletion.png").size[0] > 100
    assert captured.err.strip().endswith("error: 2 of 3 images gave no comparison (see their rows)")
    assert (
        main(["explain", str(tmp_path / "astronaut.png"), "--models", *tiny_registry, "--layer", "block9"])
        == 2
    )
    assert capsys.readouterr().err.startswith("error: no Grad-CAM layer 'block9'")


def test_bench_runs_the_harness_outside_the_library_with_its_sections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command, cwd=None: calls.append(command) or 0)
    assert main(["bench", "--photo-only", "--compare-only"]) == 0
    assert calls == [[sys.executable, "-m", "tests.harness.bench", "--photo-only", "--compare-only"]]
