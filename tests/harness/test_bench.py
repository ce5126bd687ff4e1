"""The benchmark's inputs and report (its timings are printed by `make bench`, never asserted)."""

from __future__ import annotations

import io

from PIL import Image

from tests.harness.bench import format_report, sample_photos


def test_sample_photos_have_the_promised_sizes_and_faces(detector) -> None:
    photos = sample_photos()
    expected = {"640x480, 1 face": ((640, 480), 1), "1920x1080, 4 faces": ((1920, 1080), 4)}
    for name, (size, faces) in expected.items():
        image = Image.open(io.BytesIO(photos[name])).convert("RGB")
        assert image.size == size
        assert len(detector.detect(image)) == faces


def test_report_formats_every_section() -> None:
    stages = ("decode", "detect", "crop", "models", "total")
    report = {
        "machine": "test",
        "pipeline": [
            {
                "photo": "p",
                "faces": 1,
                **{f"{s}_median_ms": 1.0 for s in stages},
                **{f"{s}_p95_ms": 2.0 for s in stages},
            }
        ],
        "classifiers": [
            {"architecture": "vgg", "parameters": 10, "batch1_faces_per_s": 5.0, "batch64_faces_per_s": 50.0}
        ],
        "training": [{"scheme": "baseline", "images_per_s": 100.0, "ratio_to_baseline": 1.0, "setup_s": 0.1}],
        "peak_memory_mb": 900.0,
        "cold_start": {"server_ready_s": 3.0, "first_result_s": None, "saliency_s": None, "runs": []},
    }
    text = format_report(report)
    assert "| p | 1 | total | 1.0 | 2.0 |" in text
    assert "| vgg | 10 | 5 | 50 |" in text
    assert "900 MB" in text and "n/a (no chromium)" in text
    report["cold_start"] = {
        "server_ready_s": 3.0,
        "first_result_s": 9.5,
        "saliency_s": 12.0,
        "runs": [{"first_result_s": 9.5}, {"first_result_s": 9.9}, {"first_result_s": 9.1}],
    }
    text = format_report(report)
    assert "median of 3" in text and "first Analyze result 9.5 s (each: 9.5, 9.9, 9.1 s)" in text
    assert "Grad-CAM overlays 12.0 s" in text


def test_photo_cases_are_printed_with_their_ratio_to_stock_mtcnn() -> None:
    from tests.harness.bench import format_photo_vs_stock

    row = {"photo": "640x480, 1 face", "faces": 1, "runs": 20, "median_ms": 80.0, "p95_ms": 95.0}
    rows = [
        {**row, "case": "stock MTCNN detect", "ratio_to_stock": 1.0, "paired_ratio_median": 1.0},
        {**row, "case": "one model, no Grad-CAM", "ratio_to_stock": 0.75, "paired_ratio_median": 0.74},
    ]
    text = format_photo_vs_stock(rows)
    assert "| 640x480, 1 face | one model, no Grad-CAM | 1 | 80.0 | 95.0 | 0.75 | 0.74 |" in text
    report = {
        "machine": "test",
        "pipeline": [],
        "photo_vs_stock": rows,
        "classifiers": [],
        "training": [],
        "peak_memory_mb": 900.0,
        "cold_start": {"server_ready_s": 3.0, "first_result_s": None, "saliency_s": None, "runs": []},
    }
    assert "| stock MTCNN detect |" in format_report(report)
