"""`make bench`: speed and memory of the pipeline, of video analysis and of training, printed as a table and saved as JSON.

Figures are wall-clock on whatever machine runs it; run it on an otherwise idle machine.
"""

from __future__ import annotations

import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image
from skimage import data as skimage_data

from core.data.datasets import FaceDataset
from core.faces.detection import FaceDetector
from core.models.architectures import architectures, create_model
from core.models.loading import load_model
from core.models.registry import LoadedModel, list_models, save_model
from core.paths import REPO_ROOT, home_dir
from core.pipeline import PAGE_RANDOM_MAPS, PAGE_STEPS, analyze, compare_in_analysis

REPO = REPO_ROOT


def sample_photos() -> dict[str, bytes]:
    """A 640x480 photo with one face and a 1920x1080 photo with several, both from the bundled portrait."""
    astronaut = Image.fromarray(skimage_data.astronaut())
    one = Image.new("RGB", (640, 480), (128, 128, 128))
    one.paste(astronaut.resize((480, 480)), (80, 0))
    many = Image.new("RGB", (1920, 1080), (110, 110, 110))
    face = astronaut.crop((130, 20, 320, 230))
    for i, size in enumerate([380, 300, 240, 200]):
        many.paste(face.resize((size, round(size * 210 / 190))), (40 + i * 470, 200 + (i % 2) * 200))
    photos = {}
    for name, image in (("640x480, 1 face", one), ("1920x1080, 4 faces", many)):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        photos[name] = buffer.getvalue()
    return photos


def _default_names() -> list[str]:
    """The app's two default model names, or fewer when fewer are registered."""
    names = [c["name"] for c in list_models()]
    return [n for n in ("baseline", "masked") if n in names] or names[:2]


def default_models() -> list[LoadedModel]:
    """The app's two default models, or two random ones when none are registered."""
    chosen = _default_names()
    if len(chosen) == 2:
        return [load_model(n) for n in chosen]
    models = []
    for name in ("random_a", "random_b"):
        module = create_model("vgg", widths=[32, 64, 128, 256]).eval()
        models.append(LoadedModel(name, module, {"preprocessing": {"input_size": 40}}))
    return models


def shipped_architecture() -> tuple[str, dict[str, Any], int]:
    """Architecture name, arguments and input size of the default baseline (or of the stand-in),
    read from its card without loading weights."""
    chosen = _default_names()
    if len(chosen) == 2:
        card = next(c for c in list_models() if c["name"] == chosen[0])
        return card["architecture"], card.get("arch_args", {}), int(card["preprocessing"]["input_size"])
    return "vgg", {"widths": [32, 64, 128, 256]}, 40


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the header, its rule, one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def bench_pipeline(runs: int = 20) -> list[dict[str, Any]]:
    """Median and p95 per stage: decode → detect → crop → both models' predictions and Grad-CAMs ("models")."""
    detector = FaceDetector()
    models = default_models()
    rows = []
    for name, photo in sample_photos().items():
        for _ in range(3):
            analyze(photo, models, detector)
        samples: dict[str, list[float]] = {}
        faces = 0
        for _ in range(runs):
            analysis = analyze(photo, models, detector)
            faces = len(analysis.faces)
            timings = dict(analysis.timings)
            # With the default settings one pass per model gives the prediction and its Grad-CAM.
            timings["models"] = timings.pop("classify") + timings.pop("saliency")
            for stage, seconds in timings.items():
                samples.setdefault(stage, []).append(seconds * 1000)
        rows.append(
            {
                "photo": name,
                "faces": faces,
                "models": [m.name for m in models],
                **{f"{stage}_median_ms": statistics.median(v) for stage, v in samples.items()},
                **{f"{stage}_p95_ms": percentile(v, 95) for stage, v in samples.items()},
            }
        )
    return rows


def bench_compare(runs: int = 20) -> dict[str, Any]:
    """What comparing where both models look on one face adds to the Analyze page (the 640x480 sample
    portrait): parts, agreement and deletion vs a random map, reusing the analysis's Grad-CAMs."""
    detector = FaceDetector()
    models = default_models()
    analysis = analyze(sample_photos()["640x480, 1 face"], models, detector)
    for _ in range(3):
        compare_in_analysis(analysis, 0, models[0], models[1])
    samples, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        compare_in_analysis(analysis, 0, models[0], models[1])
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return {
        "models": [m.name for m in models],
        "steps": PAGE_STEPS,
        "random_maps": PAGE_RANDOM_MAPS,
        "median_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 95),
        "cpu_median_ms": statistics.median(cpu),
    }


def format_compare_report(row: dict[str, Any]) -> str:
    return (
        f"Saliency comparison of one face ({' vs '.join(row['models'])}, {row['steps']} deletion steps, "
        f"{row['random_maps']} random map), added to the Analyze page: median {row['median_ms']:.0f} ms, "
        f"p95 {row['p95_ms']:.0f} ms ({row['cpu_median_ms']:.0f} ms of CPU, all threads)"
    )


def stock_detector() -> Any:
    """The fixed reference every photo figure is divided by: facenet-pytorch's MTCNN as it ships
    (keep_all=True; its own 20 px minimum and channels-first nets), on the whole photo."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


def bench_photo_vs_stock(runs: int = 20) -> list[dict[str, Any]]:
    """Each photo case against stock MTCNN(keep_all=True).detect on the same photo, in one run.

    Runs are interleaved (stock, one model, stock, both models + Grad-CAMs, ...) so that a machine
    loaded by others weighs on every case alike. Per case: the median over `runs` of its total
    time, that median over stock's median, and the median of each run's ratio to the stock run
    just before it.
    """
    stock = stock_detector()
    detector = FaceDetector()
    models = default_models()
    cases = {
        "one model, no Grad-CAM": lambda photo: analyze(photo, models[:1], detector, cam_method=None),
        "both models + both Grad-CAMs": lambda photo: analyze(photo, models, detector),
    }

    def stock_detect(photo: bytes) -> Any:
        with torch.inference_mode():
            return stock.detect(Image.open(io.BytesIO(photo)).convert("RGB"))

    rows = []
    for name, photo in sample_photos().items():
        for work in (stock_detect, *cases.values()):
            work(photo)  # warm: first calls allocate
        samples: dict[str, list[float]] = {"stock MTCNN detect": [], **{case: [] for case in cases}}
        paired: dict[str, list[float]] = {case: [] for case in cases}
        faces: dict[str, int] = {}
        for _ in range(runs):
            for case, work in cases.items():
                started = time.perf_counter()
                boxes = stock_detect(photo)[0]
                reference = time.perf_counter() - started
                samples["stock MTCNN detect"].append(reference * 1000)
                faces["stock MTCNN detect"] = 0 if boxes is None else len(boxes)
                started = time.perf_counter()
                analysis = work(photo)
                seconds = time.perf_counter() - started
                samples[case].append(seconds * 1000)
                paired[case].append(seconds / reference)
                faces[case] = len(analysis.faces)
        stock_ms = statistics.median(samples["stock MTCNN detect"])
        for case, values in samples.items():
            rows.append(
                {
                    "photo": name,
                    "case": case,
                    "faces": faces[case],
                    "runs": len(values),
                    "median_ms": statistics.median(values),
                    "p95_ms": percentile(values, 95),
                    "ratio_to_stock": statistics.median(values) / stock_ms,
                    "paired_ratio_median": statistics.median(paired[case]) if case in paired else 1.0,
                }
            )
    return rows


def format_photo_vs_stock(rows: list[dict[str, Any]]) -> str:
    """The photo cases against stock MTCNN as a Markdown table."""
    header = [
        "photo",
        "case",
        "faces",
        "median ms",
        "p95 ms",
        "x stock detect (medians)",
        "x stock (paired runs)",
    ]
    return markdown_table(
        header,
        [
            [
                row["photo"],
                row["case"],
                str(row["faces"]),
                f"{row['median_ms']:.1f}",
                f"{row['p95_ms']:.1f}",
                f"{row['ratio_to_stock']:.2f}",
                f"{row['paired_ratio_median']:.2f}",
            ]
            for row in rows
        ],
    )


@torch.inference_mode()
def bench_classifiers(seconds: float = 2.0) -> list[dict[str, Any]]:
    """Faces per second at batch 1 and 64 for every architecture (48x48 input) and the shipped one."""
    arch, arch_args, size = shipped_architecture()
    shipped = (f"{arch} {json.dumps(arch_args)} at {size}x{size} (shipped)", arch, arch_args, size)
    rows = []
    for label, name, kwargs, side in [*((a, a, {}, 48) for a in architectures()), shipped]:
        model = create_model(name, **kwargs).eval().to(memory_format=torch.channels_last)
        row: dict[str, Any] = {
            "architecture": label,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        for batch in (1, 64):
            inputs = torch.randn(batch, 1, side, side).contiguous(memory_format=torch.channels_last)
            model(inputs)
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                model(inputs)
                count += batch
            row[f"batch{batch}_faces_per_s"] = count / (time.perf_counter() - started)
        rows.append(row)
    return rows


def bench_training(images: int = 1536) -> list[dict[str, Any]]:
    """Training images/s of baseline and masked (random, expand) on the shipped architecture."""
    from core.training.config import TrainConfig
    from core.training.loop import train

    rng = np.random.default_rng(0)
    faces = FaceDataset(
        rng.integers(0, 255, (images, 48, 48)).astype(np.uint8), rng.integers(0, 7, images), [""] * images
    )
    val = faces.subset(np.arange(64))
    arch, arch_args, size = shipped_architecture()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        attention = save_model(
            create_model(arch, **arch_args),
            {"architecture": arch, "arch_args": arch_args, "preprocessing": {"input_size": size}},
            "bench_attention",
            Path(tmp),
        )
        for scheme, mode in (("baseline", "random"), ("masked", "random"), ("masked", "expand")):
            config = TrainConfig(
                data="generated",
                architecture=arch,
                arch_args=arch_args,
                input_size=size,
                scheme=scheme,
                mask_mode=mode,
                attention_model=str(attention) if scheme == "masked" else None,
                epochs=1,
                ema_decay=0.999,
            )
            run_dir = Path(tmp) / f"{scheme}-{mode}"
            started = time.perf_counter()
            summary = train(config, run_dir, train_data=faces, val_data=val)
            total = time.perf_counter() - started
            rows.append(
                {
                    "scheme": scheme if scheme == "baseline" else f"masked ({mode})",
                    "images_per_s": summary["history"][0]["images_per_second"],
                    "epoch_s": summary["history"][0]["seconds"],
                    "setup_s": total - summary["history"][0]["seconds"],
                }
            )
    base = rows[0]["images_per_s"]
    for row in rows:
        row["ratio_to_baseline"] = row["images_per_s"] / base
    return rows


def memory_probe() -> None:
    """Run in a fresh process: load both models, analyze one photo, print peak RSS in MB."""
    analyze(sample_photos()["640x480, 1 face"], default_models(), FaceDetector())
    print(peak_rss_mb())


def bench_memory() -> float:
    """Peak resident memory (MB) of a fresh process that loads both models and analyzes a photo."""
    result = subprocess.run(
        [sys.executable, "-c", "from tests.harness.bench import memory_probe; memory_probe()"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def bench_cold_start(runs: int = 3, timeout: float = 180.0) -> dict[str, Any]:
    """Seconds from `make run`'s launcher to the server answering, to the first Analyze result
    (faces and predictions) and to its Grad-CAM overlays; medians of `runs` fresh starts.

    The result figures need headless Chromium (tests.harness.browser); without it they are None.
    """
    from tests.harness.browser import body_text, chromium, missing_browser, running_app, wait_for

    explains = bool(list_models())
    measured: list[dict[str, float | None]] = []
    for _ in range(runs):
        run: dict[str, float | None] = {"server_ready_s": None, "first_result_s": None, "saliency_s": None}
        with ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            # The browser is launched before the clock starts: only the app's start is timed.
            driver = stack.enter_context(chromium()) if missing_browser() is None else None
            started = time.perf_counter()
            url = stack.enter_context(running_app(home_dir(), scratch / "streamlit.log", timeout=timeout))
            run["server_ready_s"] = time.perf_counter() - started
            if driver is not None:
                driver.get(url)
                wait_for(driver, lambda d: "Face 1" in body_text(d), timeout, "the first Analyze result")
                run["first_result_s"] = time.perf_counter() - started
                if explains:
                    wait_for(driver, lambda d: "Grad-CAM ·" in body_text(d), timeout, "the Grad-CAM overlays")
                    run["saliency_s"] = time.perf_counter() - started
        measured.append(run)

    def median(key: str) -> float | None:
        values = [value for run in measured if (value := run[key]) is not None]
        return statistics.median(values) if values else None

    return {**{key: median(key) for key in measured[0]}, "runs": measured}


def video_cases() -> list[tuple[int, int, int]]:
    """(clip seconds, models, detect every k-th frame): the bars' cases at every frame and at the
    default, the table the default `every` was chosen from, and the 2-minute clip for memory."""
    from core.video.analysis import DEFAULT_EVERY

    return [
        (10, 1, 1),
        (10, 1, DEFAULT_EVERY),
        *((10, 2, every) for every in sorted({1, 2, DEFAULT_EVERY, 5, 10})),
        (120, 2, DEFAULT_EVERY),
    ]


def sample_clip(path: Path, seconds: float, fps: int = 30) -> Path:
    """A 640x480 H.264 clip of the bundled portrait drifting back and forth: one face, every frame.

    The portrait swings along a sine of period 5 s. One period is encoded (its first frame the
    only keyframe) and its packets are written again and again with later times, so a 2-minute
    clip takes no longer to make than a 5-second one. Clips longer than one period are rounded
    to whole periods.
    """
    period = min(max(round(seconds * fps), 1), 5 * fps)
    repeats = max(1, round(seconds * fps / period))
    portrait = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((400, 400)))
    background = np.full((480, 640, 3), 128, np.uint8)
    encoded = io.BytesIO()
    with av.open(encoded, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "crf": "23",
            "x264-params": f"keyint={period}:min-keyint={period}:scenecut=0",
        }
        for index in range(period):
            left = round(120 + 100 * np.sin(2 * np.pi * index / (5 * fps)))
            frame = background.copy()
            frame[40:440, left : left + 400] = portrait
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    encoded.seek(0)
    with av.open(encoded, "r") as source, av.open(str(path), "w") as target:
        original = source.streams.video[0]
        copy = target.add_stream_from_template(original)
        packets = [packet for packet in source.demux(original) if packet.size]
        shift = round(period / fps / (original.time_base or Fraction(1, fps)))
        for repeat in range(repeats):
            for packet in packets:
                again = av.Packet(bytes(packet))
                again.pts, again.dts = (packet.pts or 0) + repeat * shift, (packet.dts or 0) + repeat * shift
                again.time_base, again.is_keyframe, again.stream = packet.time_base, packet.is_keyframe, copy
                target.mux(again)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB).

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    """
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def video_probe(path: str, model_count: int, every: int) -> None:
    """Run in a fresh process: analyse a clip end to end (decode, detect, track, classify, smooth);
    print frames, faces, seconds, CPU seconds, peak RSS in MB and each frame's smoothed labels as JSON."""
    from core.video.analysis import VideoSettings, analyze_video, video_detector

    models = default_models()[:model_count]
    detector = video_detector()
    started, cpu = time.perf_counter(), time.process_time()
    result = analyze_video(path, models, detector, VideoSettings(every=every))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    labels: dict[str, list[str | None]] = {m.name: [None] * result.frames for m in models}
    for point in result.points:
        for name, frame_labels in labels.items():
            if frame_labels[point.frame] is None:  # one face: its (first) track's label
                frame_labels[point.frame] = point.label(name)[0]
    print(
        json.dumps(
            {
                "frames": result.frames,
                "faces": len(result.points),
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": peak_rss_mb(),
                "labels": labels,
            }
        )
    )


def label_differences(labels: dict[str, list[str | None]], reference: dict[str, list[str | None]]) -> float:
    """Share of frame and model pairs whose smoothed label differs from the reference run's
    (a face found in one run and not in the other counts as a difference)."""
    pairs = [(a, b) for name in reference for a, b in zip(labels[name], reference[name], strict=True)]
    return sum(a != b for a, b in pairs) / max(len(pairs), 1)


def bench_video(cases: list[tuple[int, int, int]] | None = None) -> list[dict[str, Any]]:
    """Frames/s end to end and peak RSS of a fresh process per case (640x480, 30 fps, one face), and
    how often its smoothed labels differ from detecting on every frame (same clip and models)."""
    from core.video.codec import iter_frames

    cases = video_cases() if cases is None else cases
    rows = []
    labels: dict[tuple[int, int, int], dict[str, list[str | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {seconds: sample_clip(Path(tmp) / f"clip-{seconds}s.mp4", seconds) for seconds, _, _ in cases}
        started = time.perf_counter()
        decoded = sum(1 for _ in iter_frames(clips[min(clips)]))
        decode_fps = decoded / (time.perf_counter() - started)
        for seconds, model_count, every in cases:
            result = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from tests.harness.bench import video_probe; "
                    "video_probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))",
                    str(clips[seconds]),
                    str(model_count),
                    str(every),
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            probe = json.loads(result.stdout.strip().splitlines()[-1])
            labels[seconds, model_count, every] = probe["labels"]
            reference = labels.get((seconds, model_count, 1))
            rows.append(
                {
                    "clip_s": seconds,
                    "models": model_count,
                    "every": every,
                    "frames": probe["frames"],
                    "faces": probe["faces"],
                    "frames_per_s": probe["frames"] / probe["seconds"],
                    "cpu_ms_per_frame": 1000 * probe["cpu_seconds"] / probe["frames"],
                    "label_differs": None
                    if reference is None
                    else label_differences(probe["labels"], reference),
                    "peak_mb": probe["peak_mb"],
                    "decode_only_frames_per_s": decode_fps,
                }
            )
            row = rows[-1]
            print(  # each case as it ends: the 2-minute clip takes minutes
                f"video: {seconds} s clip, {model_count} model(s), detect every {every}: "
                f"{row['frames_per_s']:.1f} frames/s, peak RSS {row['peak_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    return rows


def format_video_report(rows: list[dict[str, Any]]) -> str:
    """The video benchmark as a Markdown table, and the peak RSS of the longest clip against the shortest."""
    header = ["clip (640x480, 30 fps, 1 face)", "models", "detect every", "frames", "frames/s end to end",
              "CPU ms per frame", "label differs from every=1", "peak RSS MB"]  # fmt: skip
    lines = [
        markdown_table(
            header,
            [
                [
                    f"{row['clip_s']} s",
                    str(row["models"]),
                    str(row["every"]),
                    str(row["frames"]),
                    f"{row['frames_per_s']:.1f}",
                    f"{row.get('cpu_ms_per_frame', float('nan')):.1f}",
                    "-" if row.get("label_differs") is None else f"{row['label_differs']:.1%}",
                    f"{row['peak_mb']:.0f}",
                ]
                for row in rows
            ],
        )
    ]
    if rows:
        lines.append(f"\nDecoding alone: {rows[0]['decode_only_frames_per_s']:.0f} frames/s")
        shortest = min(rows, key=lambda row: row["clip_s"])
        longest = max(rows, key=lambda row: row["clip_s"])
        same = [
            r
            for r in rows
            if (r["clip_s"], r["models"], r["every"])
            == (shortest["clip_s"], longest["models"], longest["every"])
        ]
        if longest["clip_s"] > shortest["clip_s"] and same:
            growth = longest["peak_mb"] - same[0]["peak_mb"]
            lines.append(
                f"Peak RSS, {longest['clip_s']} s clip against {same[0]['clip_s']} s "
                f"({longest['models']} models, every {longest['every']}): {growth:+.0f} MB"
            )
    return "\n".join(lines)


def bench_live(seconds: float = 20.0, fps: int = 30, every: int = 1) -> dict[str, Any]:
    """The Live page's processing (both models, 640x480, detect every `every`-th analysed frame)
    fed at `fps` in real time through streamlit-webrtc's frame-dropping track: frames analysed
    per second, and the time from a frame's arrival to its labelled copy (median, p95)."""
    from core.video.analysis import video_detector
    from core.video.live import LiveProcessor
    from tests.harness.live_feed import feed
    from tests.harness.live_peer import portrait_frames

    models, detector = default_models(), video_detector()
    warm = LiveProcessor(models, detector)
    for index, frame in zip(range(5), portrait_frames(fps), strict=False):
        warm.process(frame, time_s=index / fps)
    processor = LiveProcessor(models, detector, every=every, window=round(seconds * fps))
    result = feed(processor, seconds, fps, keep=0)
    latencies = [latency * 1000 for latency in processor.latencies()]
    return {
        "models": [model.name for model in models],
        "size": "640x480",
        "every": every,
        "fed_frames_per_s": fps,
        "seconds": result.seconds,
        "sent": result.sent,
        "analysed": result.analysed,
        "dropped": result.dropped,
        "analysed_frames_per_s": result.analysed_per_s,
        "latency_median_ms": statistics.median(latencies),
        "latency_p95_ms": percentile(latencies, 95),
    }


def bench_live_webrtc(seconds: float = 20.0, fps: int = 30, every: int = 2) -> dict[str, Any]:
    """The Live page's stream end to end over a real WebRTC connection on loopback: a camera peer in
    its own process sends the 640x480 portrait at `fps` (VP8, RTP) to streamlit-webrtc's worker as
    the page sets it up, both models label it, and the peer decodes what comes back. Labelled camera
    frames reaching the peer per second, and their latency from sending to arrival (median, p95)."""
    from core.video.analysis import video_detector
    from core.video.live import LiveProcessor
    from tests.harness.live_feed import feed_over_webrtc
    from tests.harness.live_peer import portrait_frames

    models, detector = default_models(), video_detector()
    warm = LiveProcessor(models, detector)
    for index, frame in zip(range(5), portrait_frames(fps), strict=False):
        warm.process(frame, time_s=index / fps)
    result = feed_over_webrtc(LiveProcessor(models, detector, every=every), seconds, fps)
    latencies = result.peer.latencies_ms or [float("nan")]
    return {
        "models": [model.name for model in models],
        "size": "640x480",
        "every": every,
        "fed_frames_per_s": fps,
        "seconds": result.peer.seconds,
        "sent": result.peer.sent,
        "received": result.peer.received,
        "shown": result.peer.shown,
        "shown_frames_per_s": result.peer.shown_per_s,
        "server_frames_per_s": result.server.frames_per_s,
        "latency_median_ms": statistics.median(latencies),
        "latency_p95_ms": percentile(latencies, 95),
    }


def format_live_webrtc_report(rows: list[dict[str, Any]]) -> str:
    """The end-to-end live benchmark as a Markdown table."""
    header = ["over WebRTC (640x480, 30 fps camera peer)", "models", "detect every", "labelled frames back/s",
              "frames back/s", "latency median ms", "latency p95 ms"]  # fmt: skip
    return markdown_table(
        header,
        [
            [
                f"{row['seconds']:.0f} s",
                " + ".join(row["models"]),
                str(row["every"]),
                f"{row['shown_frames_per_s']:.1f}",
                f"{row['received'] / row['seconds']:.1f}",
                f"{row['latency_median_ms']:.0f}",
                f"{row['latency_p95_ms']:.0f}",
            ]
            for row in rows
        ],
    )


def format_live_report(rows: list[dict[str, Any]]) -> str:
    """The live benchmark as a Markdown table."""
    header = ["live stream (640x480, fed at 30 fps)", "models", "detect every", "frames analysed/s", "dropped",
              "latency median ms", "latency p95 ms"]  # fmt: skip
    return markdown_table(
        header,
        [
            [
                f"{row['seconds']:.0f} s, {row['sent']} frames",
                " + ".join(row["models"]),
                str(row["every"]),
                f"{row['analysed_frames_per_s']:.1f}",
                str(row["dropped"]),
                f"{row['latency_median_ms']:.0f}",
                f"{row['latency_p95_ms']:.0f}",
            ]
            for row in rows
        ],
    )


def main(
    video_only: bool = False, live_only: bool = False, compare_only: bool = False, photo_only: bool = False
) -> int:
    torch.set_num_threads(torch.get_num_threads())
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if compare_only:
        print(f"Machine: {machine}\n\n{format_compare_report(bench_compare())}")
        return 0
    if photo_only:
        rows = bench_photo_vs_stock()
        cold = bench_cold_start()
        print(f"Machine: {machine}\n\n{format_photo_vs_stock(rows)}\n\n{format_cold_start(cold)}")
        (REPO / "bench-photo-results.json").write_text(
            json.dumps({"machine": machine, "photo_vs_stock": rows, "cold_start": cold}, indent=2) + "\n"
        )
        print("\nwritten to bench-photo-results.json")
        return 0
    if live_only:
        live = [bench_live(every=every) for every in (1, 2)]
        webrtc = [bench_live_webrtc(every=every) for every in (1, 2)]
        print(f"Machine: {machine}\n\n{format_live_report(live)}\n\n{format_live_webrtc_report(webrtc)}")
        (REPO / "bench-live-results.json").write_text(
            json.dumps({"machine": machine, "live": live, "live_webrtc": webrtc}, indent=2) + "\n"
        )
        print("\nwritten to bench-live-results.json")
        return 0
    if video_only:
        report: dict[str, Any] = {"machine": machine, "video": bench_video()}
        print(f"Machine: {machine}\n\n{format_video_report(report['video'])}")
        out = REPO / "bench-video-results.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwritten to {out.name}")
        return 0
    report = {
        "machine": machine,
        "pipeline": bench_pipeline(),
        "compare": bench_compare(),
        "photo_vs_stock": bench_photo_vs_stock(),
        "classifiers": bench_classifiers(),
        "training": bench_training(),
        "peak_memory_mb": bench_memory(),
        "cold_start": bench_cold_start(),
        "video": bench_video(),
        "live": [bench_live(every=every) for every in (1, 2)],
        "live_webrtc": [bench_live_webrtc(every=every) for every in (1, 2)],
    }
    print(format_report(report))
    print(f"\n{format_live_report(report['live'])}\n\n{format_live_webrtc_report(report['live_webrtc'])}")
    out = REPO / "bench-results.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out.name}")
    return 0


def format_report(report: dict[str, Any]) -> str:
    """The benchmark as Markdown tables."""
    lines = [
        f"Machine: {report['machine']}",
        "",
        "| photo | faces | stage | median ms | p95 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["pipeline"]:
        for stage in ("decode", "detect", "crop", "models", "total"):
            lines.append(
                f"| {row['photo']} | {row['faces']} | {stage} | {row[f'{stage}_median_ms']:.1f} | {row[f'{stage}_p95_ms']:.1f} |"
            )
    if report.get("compare"):
        lines += ["", format_compare_report(report["compare"])]
    if report.get("photo_vs_stock"):
        lines += ["", format_photo_vs_stock(report["photo_vs_stock"])]
    lines += [
        "",
        "| architecture | parameters | faces/s at batch 1 | faces/s at batch 64 |",
        "| --- | --- | --- | --- |",
    ]
    for row in report["classifiers"]:
        lines.append(
            f"| {row['architecture']} | {row['parameters']:,} | {row['batch1_faces_per_s']:.0f} | {row['batch64_faces_per_s']:.0f} |"
        )
    lines += ["", "| training scheme | images/s | vs baseline | set-up s |", "| --- | --- | --- | --- |"]
    for row in report["training"]:
        lines.append(
            f"| {row['scheme']} | {row['images_per_s']:.0f} | {row['ratio_to_baseline']:.2f} | {row['setup_s']:.1f} |"
        )
    lines += [
        "",
        f"Peak resident memory (both models + one photo): {report['peak_memory_mb']:.0f} MB",
        format_cold_start(report["cold_start"]),
    ]
    if report.get("video"):
        lines += ["", format_video_report(report["video"])]
    return "\n".join(lines)


def format_cold_start(cold: dict[str, Any]) -> str:
    """The cold start's medians (and each run's first result) in one line."""

    def seconds(key: str, missing: str = "n/a") -> str:
        return f"{cold[key]:.1f} s" if cold.get(key) is not None else missing

    first = seconds("first_result_s", "n/a (no chromium)")
    each = ", ".join(f"{run['first_result_s']:.1f}" for run in cold.get("runs", []) if run["first_result_s"])
    return (
        f"App cold start (median of {len(cold.get('runs', [])) or 1}): server ready {seconds('server_ready_s')}, "
        f"first Analyze result {first}"
        + (f" (each: {each} s)" if each else "")
        + f", Grad-CAM overlays {seconds('saliency_s')}"
    )


def cli(argv: list[str] | None = None) -> int:
    """`python -m tests.harness.bench [--video-only | --live-only | --compare-only | --photo-only]` (`make bench`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.harness.bench", description=__doc__)
    parser.add_argument("--video-only", action="store_true", help="only the video section")
    parser.add_argument("--live-only", action="store_true", help="only the live camera section")
    parser.add_argument(
        "--compare-only", action="store_true", help="only the saliency comparison of one face"
    )
    parser.add_argument(
        "--photo-only",
        action="store_true",
        help="only the photo cases against stock MTCNN, and the cold start",
    )
    args = parser.parse_args(argv)
    return main(
        video_only=args.video_only,
        live_only=args.live_only,
        compare_only=args.compare_only,
        photo_only=args.photo_only,
    )


if __name__ == "__main__":
    raise SystemExit(cli())
