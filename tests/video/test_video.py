"""Video end to end on clips generated here with PyAV: real MTCNN, tiny real classifiers, real grad-cam."""

from __future__ import annotations

import csv
import gc
import io
import json
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.faces.detection import Face, crop_face
from core.models.loading import load_model
from core.models.predict import predict_proba
from core.video.analysis import (
    LOOKAHEAD,
    FrameAnalyzer,
    VideoSettings,
    analyze_video,
    frame_comparison,
    frame_saliency,
    video_detector,
)
from core.video.codec import VideoError, VideoLimits, VideoWriter, iter_frames, probe, read_frame

SIZE = (240, 180)
FPS = 10


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    """One thread: on a busy 2-core machine, two torch threads waiting on each other make MTCNN ~10x slower."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def face(astronaut: Image.Image) -> Image.Image:
    """The portrait's head, about 90 pixels wide."""
    return astronaut.crop((130, 20, 320, 230)).resize((90, 100))


@pytest.fixture(scope="module")
def vdetector():
    return video_detector()


def write_clip(
    path: Path, frames: int, place: Callable[[int], list[tuple[int, int]]], face: Image.Image
) -> Path:
    """A clip with the face pasted at place(frame index) (a list of top-left corners) on grey."""
    with VideoWriter(path, FPS, *SIZE) as writer:
        for index in range(frames):
            frame = Image.new("RGB", SIZE, (120, 120, 120))
            for corner in place(index):
                frame.paste(face, corner)
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory: pytest.TempPathFactory, face: Image.Image) -> Path:
    """15 frames: one face moving left to right, 8 pixels a frame."""
    return write_clip(tmp_path_factory.mktemp("clips") / "moving.mp4", 15, lambda i: [(10 + 8 * i, 40)], face)


def test_decoding_streams_every_frame_of_each_container(tmp_path: Path, face: Image.Image) -> None:
    for suffix in (".mp4", ".webm", ".gif", ".avi", ".mov"):
        path = write_clip(tmp_path / f"clip{suffix}", 6, lambda i: [(10 + 6 * i, 40)], face)
        info = probe(path)
        frames = iter_frames(path)
        assert isinstance(frames, types.GeneratorType)
        decoded = list(frames)
        assert [f.index for f in decoded] == list(range(6)), suffix
        assert decoded[0].image.size == (info.width, info.height) and decoded[0].image.mode == "RGB"
        assert all(a.time < b.time for a, b in zip(decoded, decoded[1:], strict=False)), suffix
    assert read_frame(tmp_path / "clip.mp4", 3).index == 3


def test_bad_files_give_one_clear_line(
    tmp_path: Path, moving_clip: Path, astronaut: Image.Image, capsys
) -> None:
    (tmp_path / "garbage.mp4").write_bytes(b"this is not a video at all" * 100)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "cut.mp4").write_bytes(moving_clip.read_bytes()[:600])
    astronaut.save(tmp_path / "photo.png")
    expected = {
        "garbage.mp4": "not a readable video",
        "empty.mp4": "file is empty",
        "cut.mp4": "not a readable video",
        "photo.png": "a still image, not a video",
        "missing.mp4": "no such file",
    }
    for name, message in expected.items():
        with pytest.raises(VideoError, match=message):
            list(iter_frames(tmp_path / name))
    with pytest.raises(VideoError, match="limit is 1 s"):
        probe(moving_clip, VideoLimits(max_seconds=1))
    with pytest.raises(VideoError, match="megapixels"):
        probe(moving_clip, VideoLimits(max_pixels=100 * 100))
    with pytest.raises(VideoError, match="larger than"):
        probe(moving_clip, VideoLimits(max_bytes=100))
    for name in expected:
        assert main(["video", str(tmp_path / name), "--models", "none"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == len(expected) and all(line.startswith("error: ") for line in errors)


def test_a_moving_face_keeps_one_track(tiny_registry, moving_clip: Path, vdetector) -> None:
    models = [load_model(name) for name in tiny_registry]
    for every in (1, 3):
        result = analyze_video(moving_clip, models, vdetector, VideoSettings(every=every))
        assert result.frames == 15 and result.tracks() == [1]
        assert [p.frame for p in result.points] == list(range(15))
        assert [p.detected for p in result.points] == [i % every == 0 for i in range(15)]
        # Followed boxes move too, at the speed seen between the first two detections.
        centres = [(p.box[0] + p.box[2]) / 2 for p in result.points][every:]
        assert all(b > a for a, b in zip(centres, centres[1:], strict=False))
        assert abs(centres[-1] - centres[0] - 8 * (14 - every)) < 12


def test_two_faces_keep_their_ids(tiny_registry, tmp_path: Path, face: Image.Image, vdetector) -> None:
    # One face goes down on the left while the other goes up on the right.
    clip = write_clip(tmp_path / "two.mp4", 10, lambda i: [(5, 10 + 6 * i), (140, 70 - 6 * i)], face)
    result = analyze_video(clip, [load_model("tiny_a")], vdetector)
    assert len(result.tracks()) == 2
    for track in result.tracks():
        points = result.track_points(track)
        assert len(points) == 10
        sides = {p.box[0] < SIZE[0] / 2 for p in points}
        assert len(sides) == 1  # never swaps with the other face


def test_a_face_that_leaves_and_comes_back(
    tiny_registry, tmp_path: Path, face: Image.Image, vdetector
) -> None:
    # Tracks remember a lost face for 5 frames: gone for 2 frames, the same person; gone for 7, a new track.
    def place(i: int) -> list[tuple[int, int]]:
        return [] if 4 <= i < 6 or 10 <= i < 17 else [(70, 40)]

    clip = write_clip(tmp_path / "back.mp4", 20, place, face)
    result = analyze_video(clip, [load_model("tiny_a")], vdetector, VideoSettings(every=1, track_memory=0.5))
    frames = {track: [p.frame for p in result.track_points(track)] for track in result.tracks()}
    assert frames == {1: [*range(4), *range(6, 10)], 2: list(range(17, 20))}


def test_exports_match_the_frames_and_the_annotated_video(
    tiny_registry, moving_clip: Path, tmp_path: Path, capsys
) -> None:
    out_csv, out_video = tmp_path / "faces.csv", tmp_path / "annotated.mp4"
    args = ["video", str(moving_clip), "--models", *tiny_registry, "--every", "2", "--csv", str(out_csv)]
    assert main([*args, "--annotated", str(out_video), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == len(report["faces"]) * 2 == 15 * 2
    assert {(r["frame"], r["model"]) for r in rows} == {(str(f), m) for f in range(15) for m in tiny_registry}
    assert sum(1 for _ in iter_frames(out_video)) == report["frames"] == 15
    assert probe(out_video).width == SIZE[0]
    summary = report["tracks"]
    assert [t["track"] for t in summary] == [1] and summary[0]["frames"] == 15
    for model in tiny_registry:
        share = summary[0]["models"][model]["share"]
        assert abs(sum(share.values()) - 1) < 1e-3 and summary[0]["models"][model]["dominant"] in share
    # The annotated frames differ from the clip where the box is drawn.
    original, drawn = read_frame(moving_clip, 5).image, read_frame(out_video, 5).image
    difference = np.abs(np.asarray(original, int) - np.asarray(drawn, int)).sum(axis=2)
    assert (difference > 120).sum() > 100
    assert main(["video", str(moving_clip), "--models", "tiny_a"]) == 0
    assert "track 1 " in capsys.readouterr().out


def test_grad_cam_for_a_chosen_frame(tiny_registry, moving_clip: Path, vdetector) -> None:
    models = [load_model(name) for name in tiny_registry]
    result = analyze_video(moving_clip, models, vdetector)
    image, overlays = frame_saliency(moving_clip, result, 7, models)
    assert set(overlays) == set(tiny_registry)
    box = [round(v) for v in result.frame_points(7)[0].box]
    for overlay in overlays.values():
        assert overlay.size == image.size
        changed = np.abs(np.asarray(overlay, int) - np.asarray(image, int)).sum(axis=2) > 30
        assert changed[box[1] : box[3], box[0] : box[2]].mean() > 0.5 and not changed[:, :5].any()


def test_where_two_models_look_on_one_tracked_face_of_a_frame(
    tiny_registry, moving_clip: Path, vdetector
) -> None:
    from core.explain.compare import FACE_PARTS
    from core.faces.detection import Face, crop_face

    models = [load_model(name) for name in tiny_registry]
    result = analyze_video(moving_clip, models, vdetector)
    point = result.frame_points(7)[0]
    found = frame_comparison(moving_clip, result, 7, point.track, *models)
    crop = crop_face(read_frame(moving_clip, 7).image, Face(box=point.box, landmarks=(), score=1.0))
    assert np.array_equal(found.crop, crop), "the tracked face's crop in that frame"
    assert found.names == tuple(tiny_registry)
    assert found.targets == {m.name: int(np.argmax(point.smoothed[m.name])) for m in models}
    assert set(found.parts[tiny_registry[0]]) == set(FACE_PARTS)
    assert found.sentence and found.deletion[tiny_registry[1]].probabilities.shape == (6,)
    with pytest.raises(ValueError, match="not in frame 7"):
        frame_comparison(moving_clip, result, 7, point.track + 99, *models)


def test_memory_stays_flat_and_stop_ends_early(
    tiny_registry, tmp_path: Path, face: Image.Image, vdetector
) -> None:
    clip = write_clip(tmp_path / "long.mp4", 25, lambda i: [(10 + 4 * i, 40)], face)
    images: dict[int, int] = {}
    # Up to LOOKAHEAD frames wait for their turn; compare two moments when that many wait.
    early, late = 3, 25 - LOOKAHEAD - 1

    def count_images(done: int, total: int | None) -> None:
        if done in (early, late):
            gc.collect()
            images[done] = sum(type(o) is Image.Image for o in gc.get_objects())

    result = analyze_video(clip, [load_model("tiny_a")], vdetector, on_frame=count_images)
    assert late > early and images[late] == images[early]  # no decoded frame is kept as the video goes on
    for point in result.points:
        assert all(np.asarray(v).shape == (7,) for v in [*point.raw.values(), *point.smoothed.values()])
    seen: list[int] = []
    stopped = analyze_video(
        clip,
        [load_model("tiny_a")],
        vdetector,
        should_stop=lambda: len(seen) >= 5,
        on_frame=lambda d, t: seen.append(d),
    )
    assert stopped.stopped and stopped.frames == 5 and len(stopped.points) == 5


def test_an_upload_in_memory_gives_an_annotated_mp4_in_memory(
    tiny_registry, moving_clip: Path, vdetector
) -> None:
    data = moving_clip.read_bytes()
    assert probe(data).frame_count == 15
    with pytest.raises(VideoError, match="upload: not a readable video"):
        probe(b"not a video")
    target = io.BytesIO()
    result = analyze_video(data, [load_model("tiny_a")], vdetector, annotated=target)
    assert result.source == "upload" and result.frames == 15
    assert sum(1 for _ in iter_frames(target.getvalue())) == 15


def test_the_frame_step_takes_arrays_and_faces_found_elsewhere(
    tiny_registry, moving_clip: Path, vdetector
) -> None:
    models = [load_model(name) for name in tiny_registry]
    frames = list(iter_frames(moving_clip))[:4]
    as_images = FrameAnalyzer(models, vdetector, every=2)
    as_arrays = FrameAnalyzer(models, vdetector, every=2)
    given = FrameAnalyzer(models, vdetector, every=2)
    for frame in frames:
        a = as_images.step(frame.index, frame.time, frame.image)
        b = as_arrays.step(frame.index, frame.time, np.asarray(frame.image))
        found = vdetector.detect(frame.image) if given.detects(frame.index) else None
        c = given.step(frame.index, frame.time, frame.image, detect=False, faces=found)
        assert len(a) == len(b) == len(c) == 1 and a[0].detected == (frame.index % 2 == 0) == c[0].detected
        for name in tiny_registry:
            # The predictions' copies (batch norm folded in) agree with the models themselves.
            crop = crop_face(frame.image, Face(a[0].box, (), 1.0))
            assert np.allclose(a[0].raw[name], predict_proba(load_model(name), crop)[0], atol=1e-5)
            assert np.allclose(a[0].raw[name], b[0].raw[name]) and np.allclose(a[0].raw[name], c[0].raw[name])
