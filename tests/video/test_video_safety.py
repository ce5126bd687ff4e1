"""Uploads that are not honest videos: other files, sockets, lying headers, too many frames or pixels.

Every file here is generated with PyAV (or written as text) and decoded for real.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from core.cli import main
from core.models.loading import load_model
from core.video import codec
from core.video.analysis import VideoSettings, analyze_video, frame_saliency, video_detector
from core.video.codec import VideoError, VideoLimits, iter_frames, probe, read_frame

REFUSED = "not a video format this app opens"
# Where FFmpeg's RTP demuxer would listen, were it let: a UDP port on this machine.
SDP = textwrap.dedent("""\
    v=0
    o=- 0 0 IN IP4 127.0.0.1
    s=probe
    c=IN IP4 127.0.0.1
    t=0 0
    m=video 45678 RTP/AVP 96
    a=rtpmap:96 H264/90000
    """).encode()


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    torch.set_num_threads(1)


def ffconcat(target: str) -> bytes:
    """An "ffconcat" list naming one file: FFmpeg's concat demuxer plays that file's content."""
    return f"ffconcat version 1.0\nfile {target}\n".encode()


def encode(
    frames: list[np.ndarray], fps: float, fmt: str = "mp4", codec_name: str = "libx264", gop: int = 0
) -> bytes:
    """RGB frames as a video file in memory."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec_name, rate=Fraction(fps).limit_denominator(1001))
        assert isinstance(stream, av.VideoStream)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb8" if codec_name == "gif" else "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def moving_square(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frames of a square moving over grey, each a little different."""
    frames = []
    for i in range(count):
        array = np.full((height, width, 3), 100, np.uint8)
        y, x = (3 * i) % (height - 8), (5 * i) % (width - 8)
        array[y : y + 8, x : x + 8] = (255, (7 * i) % 256, 0)
        frames.append(array)
    return frames


_recording: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple) -> None:
    if _recording is not None and (event == "open" or event.startswith("socket.")):
        _recording.append((event, str(args[0]) if args else ""))


sys.addaudithook(_audit)  # hooks cannot be removed; this one records only inside python_opens()


@contextmanager
def python_opens() -> Iterator[list[tuple[str, str]]]:
    """Every file and socket that Python code opens in this block (audit events "open", "socket.*").
    FFmpeg opens files in C, which no audit hook sees: strace_probe covers that."""
    global _recording
    _recording = []
    try:
        yield _recording
    finally:
        _recording = None


def strace_probe(upload: bytes, tmp_path: Path) -> list[str]:
    """The system calls (open, socket, bind, connect) made while a fresh Python probes the upload,
    as strace reports them; only those between the markers, i.e. during the probe."""
    (tmp_path / "upload.bin").write_bytes(upload)
    script = textwrap.dedent(f"""\
        import os
        from core.video.codec import VideoError, probe
        data = open({str(tmp_path / "upload.bin")!r}, "rb").read()
        os.close(os.open("/dev/null", os.O_RDONLY | os.O_NOCTTY))  # marker: start
        try:
            probe(data)
        except VideoError as err:
            print(err)
        os.close(os.open("/dev/null", os.O_RDONLY | os.O_NOCTTY))  # marker: end
        """)
    log = tmp_path / "strace.log"
    run = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(log), "-e", "trace=open,openat,socket,bind,connect,sendto",
         sys.executable, "-c", script],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(Path(codec.__file__).parents[2]), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if run.returncode != 0 and "ptrace" in run.stderr.lower():
        pytest.skip(f"strace cannot trace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert REFUSED in run.stdout
    lines = log.read_text().splitlines()
    markers = [i for i, line in enumerate(lines) if "/dev/null" in line and "O_NOCTTY" in line]
    assert len(markers) == 2, "the markers are traced"
    return lines[markers[0] + 1 : markers[1]]


def test_an_upload_that_names_another_file_or_a_network_session_is_refused_unopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload called clip.mp4 holding an ffconcat list played requirements.txt as frames, and an SDP
    file bound a UDP port. Both are refused before FFmpeg reads past the format's name."""
    monkeypatch.chdir(tmp_path)  # FFmpeg resolves the list's relative name from here
    (tmp_path / "secret.txt").write_text("do not show\n" * 200)
    uploads = {"ffconcat": ffconcat("secret.txt"), "sdp": SDP}
    decoded: list[codec.VideoFrame] = []
    with pytest.raises(VideoError):
        probe(b"warm-up")  # Pillow imports its plugins on first use: module files, not the upload's
    for name, upload in uploads.items():
        with python_opens() as opened:
            for read in (probe, lambda data: decoded.extend(iter_frames(data))):
                with pytest.raises(VideoError) as refused:
                    read(upload)
                assert str(refused.value) == f"upload: {REFUSED} (it opens {codec.FORMATS_SHOWN})", name
        assert opened == [], f"{name}: Python opened {opened}"
        # Any format FFmpeg knows (the command's --allow-any-format) still opens nothing for an upload.
        with pytest.raises(VideoError, match="not a readable video"):
            probe(upload, VideoLimits(formats=None))
    assert decoded == [], "nothing was decoded, so no frame can show the named file"
    # What Python cannot see (FFmpeg's own opens, in C), the kernel can: trace a fresh process.
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed: FFmpeg's own system calls are not checked")
    for name, upload in uploads.items():
        calls = strace_probe(upload, tmp_path)
        assert not [c for c in calls if "secret.txt" in c], f"{name}: FFmpeg opened the named file"
        assert not [
            c for c in calls if c.split("(")[0].split()[-1] in ("socket", "bind", "connect", "sendto")
        ], f"{name}: a socket was made: {calls}"


def test_the_command_refuses_other_formats_unless_told(tmp_path: Path, capsys) -> None:
    (tmp_path / "list.mp4").write_bytes(ffconcat("other.mp4"))
    (tmp_path / "clip.ts").write_bytes(encode(moving_square(4), 10, fmt="mpegts"))
    assert main(["video", str(tmp_path / "list.mp4"), "--models", "none"]) == 2
    assert main(["video", str(tmp_path / "clip.ts"), "--models", "none"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(REFUSED in line for line in errors), errors
    assert probe(tmp_path / "clip.ts", VideoLimits(formats=None)).container == "mpegts"


def test_joined_segments_whose_clocks_restart_are_counted_by_their_frames() -> None:
    """Four 2-second MPEG-TS segments joined: the header says about 2 s, the frames are 8 s."""
    segment = encode(moving_square(20), 10, fmt="mpegts")
    joined = segment * 4
    limits = VideoLimits(max_seconds=5, max_fps=10, formats=None)
    assert probe(joined, limits).duration is not None and probe(joined, limits).duration < 5
    seen = []
    with pytest.raises(VideoError, match=r"more than 50 frames; the limit is 5 s at 10 frames/s"):
        for frame in iter_frames(joined, limits):
            seen.append(frame.index)
    assert len(seen) == 50, "refused while decoding, at the limit"


def test_a_high_frame_rate_is_capped_by_frames_not_seconds() -> None:
    """240 frames/s for 0.9 s: within 1 s, but four times the frames of 1 s at 60 frames/s."""
    clip = encode(moving_square(216), 240)
    with pytest.raises(VideoError, match="more than 60 frames"):
        list(iter_frames(clip, VideoLimits(max_seconds=1, max_fps=60)))
    assert len(list(iter_frames(clip, VideoLimits(max_seconds=1, max_fps=240)))) == 216


def test_decoded_pixels_are_capped_while_decoding() -> None:
    """A GIF of many large frames: refused once the decoded pixels pass the budget, whatever its
    header says (a 0.37 MB 4K GIF of 3,000 frames took 2.6 GB for its first 300)."""
    gif = encode(moving_square(40, 320, 240), 10, fmt="gif", codec_name="gif")
    limits = VideoLimits(max_seconds=6, pixel_rate=320 * 240 * 4)  # 24 frames' worth
    seen = []
    with pytest.raises(VideoError, match="too much video to decode: 25 frames of 320x240"):
        for frame in iter_frames(gif, limits):
            seen.append(frame.index)
    assert len(seen) == 24
    with pytest.raises(VideoError, match="frames are 320x240"):
        probe(gif, VideoLimits(max_pixels=200 * 200))


def test_a_late_frame_is_found_by_seeking_not_by_decoding_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = encode(moving_square(120), 10, gop=10)
    positions = codec.FramePositions()
    for frame in iter_frames(clip):
        positions.add(frame.pts)
    assert positions.usable and len(positions) == 120
    decoded = 0
    original = codec._decode

    def counting(container, stream):  # type: ignore[no-untyped-def]
        nonlocal decoded
        for frame in original(container, stream):
            decoded += 1
            yield frame

    monkeypatch.setattr(codec, "_decode", counting)
    for index in (0, 57, 110, 119):
        decoded = 0
        sought = read_frame(clip, index, pts=positions.pts(index))
        sought_cost = decoded
        decoded = 0
        walked = read_frame(clip, index)
        assert decoded == index + 1, "without a timestamp: from the start"
        assert sought_cost <= 10 + 4, f"frame {index}: {sought_cost} decoded, from the keyframe before it"
        assert sought.index == walked.index == index and sought.pts == walked.pts
        assert np.array_equal(np.asarray(sought.image), np.asarray(walked.image)), f"frame {index}"


def test_timestamps_that_restart_are_not_used_to_seek() -> None:
    positions = codec.FramePositions()
    for pts in (0, 1, 2, 0, 1):
        positions.add(pts)
    assert not positions.usable and positions.pts(1) is None
    joined = encode(moving_square(20), 10, fmt="mpegts") * 2
    limits = VideoLimits(formats=None)
    walked = list(iter_frames(joined, limits))
    assert np.array_equal(np.asarray(read_frame(joined, 30, limits).image), np.asarray(walked[30].image))


def test_an_analysed_video_keeps_what_its_frame_view_needs_to_seek(tiny_registry) -> None:
    clip = encode(moving_square(30), 10, gop=5)
    result = analyze_video(clip, [load_model(tiny_registry[0])], video_detector())
    assert len(result.positions) == result.frames == 30 and result.positions.usable
    image, _ = frame_saliency(clip, result, 27, [load_model(tiny_registry[0])])
    assert np.array_equal(np.asarray(image), np.asarray(read_frame(clip, 27).image))


def test_a_one_pixel_mjpeg_avi_is_analysed_without_a_crash(tiny_registry) -> None:
    """The annotated video's writer rounded 1 pixel down to 0 sides: av.error.ArgumentError."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width = stream.height = 1
        stream.pix_fmt = "yuvj444p"
        for _ in range(5):
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.full((1, 1, 3), 90, np.uint8), "rgb24"))
            )
        container.mux(stream.encode(None))
    annotated = io.BytesIO()
    result = analyze_video(
        buffer.getvalue(), [load_model(tiny_registry[0])], video_detector(), VideoSettings(), annotated
    )
    assert result.frames == 5 and result.points == []
    assert [f.image.size for f in iter_frames(annotated.getvalue())] == [(2, 2)] * 5


def test_downloads_are_built_once_and_kept_with_the_result(tiny_registry) -> None:
    """Each rerun of the Video page rebuilt the CSV and JSON (41 MB and 48 s for a 60 s clip with 20 faces)."""
    clip = encode(moving_square(6), 10)
    result = analyze_video(clip, [load_model(tiny_registry[0])], video_detector())
    csv_bytes, json_bytes = result.csv_bytes(), result.json_bytes()
    assert csv_bytes == result.to_csv().encode() and json.loads(json_bytes) == result.to_dict()
    assert result.csv_bytes() is csv_bytes and result.json_bytes() is json_bytes, "kept, not rebuilt"
    result.frames += 1  # the result changed: built again
    assert result.csv_bytes() is not csv_bytes
