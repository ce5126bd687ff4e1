"""The Video page through AppTest from app.py: upload a generated clip, analyse, timeline, Grad-CAM."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from core.video.codec import VideoWriter
from core.video.timeline import VideoResult
from tests.helpers import APP, TIMEOUT, fresh_app, navigation_from_app_py, no_errors  # noqa: F401


def clip(path: Path, astronaut: Image.Image) -> bytes:
    face = astronaut.crop((130, 20, 320, 230)).resize((90, 100))
    with VideoWriter(path, 10, 240, 180) as writer:
        for index in range(8):
            frame = Image.new("RGB", (240, 180), (120, 120, 120))
            frame.paste(face, (20 + 10 * index, 40))
            writer.write(frame)
    return path.read_bytes()


def test_video_page_analyses_an_upload(
    tiny_registry, astronaut: Image.Image, tmp_path: Path, monkeypatch
) -> None:
    built: list[str] = []
    for name in ("to_csv", "to_dict"):
        method = getattr(VideoResult, name)
        monkeypatch.setattr(VideoResult, name, lambda self, m=method, n=name: built.append(n) or m(self))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page("pages/video.py")
    app.run()
    no_errors(app)
    assert any("Upload a clip" in info.value for info in app.info)
    app.file_uploader[0].upload("walk.mp4", clip(tmp_path / "walk.mp4", astronaut), "video/mp4").run()
    no_errors(app)
    next(b for b in app.button if b.label == "Analyse").click().run()
    no_errors(app)
    assert [m.value for m in app.metric][:2] == ["8", "1"]
    assert len(app.get("video")) == 1
    assert len(app.get("plotly_chart")) == 4, (
        "the timeline; the two maps, the part shares, the deletion curves"
    )
    assert [b.label for b in app.get("download_button")] == [
        "CSV (frame, face, model)",
        "JSON",
        "Annotated video",
    ]
    captions = [c for image in app.get("image") for c in image.captions]
    assert captions == ["frame 0", "Grad-CAM · tiny_a", "Grad-CAM · tiny_b"]
    assert any("Where the two models look** on face #1 in frame 0" in md.value for md in app.markdown)
    assert {"Spearman ρ", "Top-20 % IoU"} <= {m.label for m in app.metric}
    app.select_slider(key="frame-1").set_value(5).run()
    no_errors(app)
    assert [c for image in app.get("image") for c in image.captions][0] == "frame 5"
    assert any("on face #1 in frame 5" in md.value for md in app.markdown), "the comparison follows the frame"
    assert built == [], "reruns build no download: CSV and JSON are made when asked for, once"


def test_video_page_refuses_an_upload_that_names_other_files(
    tiny_registry, tmp_path: Path, monkeypatch
) -> None:
    """clip.mp4 holding an ffconcat list: the annotated video showed requirements.txt as frames."""
    monkeypatch.chdir(Path(__file__).parents[2])
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page("pages/video.py")
    app.run()
    listing = b"ffconcat version 1.0\nfile requirements.txt\n"
    app.file_uploader[0].upload("clip.mp4", listing, "video/mp4").run()
    next(b for b in app.button if b.label == "Analyse").click().run()
    assert not app.exception and not app.get("video")
    assert any("not a video format this app opens" in w.value for w in app.warning)


def test_video_page_says_when_an_upload_is_not_a_video(tiny_registry) -> None:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page("pages/video.py")
    app.run()
    app.file_uploader[0].upload("broken.mp4", b"not a video" * 50, "video/mp4").run()
    next(b for b in app.button if b.label == "Analyse").click().run()
    assert not app.exception
    assert any("not a readable video" in w.value for w in app.warning)


def test_public_mode_refuses_a_clip_longer_than_its_limit(
    tiny_registry, astronaut: Image.Image, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    monkeypatch.setenv("FER_STUDIO_MAX_VIDEO_SECONDS", "1")
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page("pages/video.py")
    app.run()
    assert "1 s" in app.file_uploader[0].help
    long_clip = tmp_path / "long.mp4"
    face = astronaut.crop((130, 20, 320, 230)).resize((90, 100))
    with VideoWriter(long_clip, 10, 240, 180) as writer:
        for index in range(25):  # 2.5 s
            frame = Image.new("RGB", (240, 180), (120, 120, 120))
            frame.paste(face, (20 + 2 * index, 40))
            writer.write(frame)
    app.file_uploader[0].upload("long.mp4", long_clip.read_bytes(), "video/mp4").run()
    next(b for b in app.button if b.label == "Analyse").click().run()
    assert not app.exception
    assert any("the limit is 1 s" in w.value for w in app.warning)
