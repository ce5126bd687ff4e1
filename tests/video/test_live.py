"""The live camera's frame callback on generated frames: real MTCNN, tiny real classifiers, and
streamlit-webrtc's own frame-dropping track."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction
from itertools import islice

import av
import numpy as np
import pytest
import torch

from core.models.loading import load_model
from core.video.analysis import video_detector
from core.video.ice import IceSettingError, ice_servers, rtc_configuration, use_loopback_only
from core.video.live import LiveProcessor
from tests.harness.live_feed import feed
from tests.harness.live_peer import portrait_frames

AGREE, DISAGREE = (46, 204, 113), (241, 196, 15)  # core.pipeline.draw_labels' box colours
SIZE = (320, 240)


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    torch.set_num_threads(1)  # see tests/video/test_video.py: two threads on a busy 2-core machine crawl


@pytest.fixture(scope="module")
def vdetector():
    return video_detector()


@pytest.fixture
def models(tiny_registry: list[str]):
    return [load_model(name) for name in tiny_registry]


def frames(count: int) -> list[np.ndarray]:
    return list(islice(portrait_frames(30, *SIZE), count))


def box_pixels(image: np.ndarray) -> int:
    """How many pixels have a label box's colour (green: models agree, yellow: not)."""
    return int(sum(np.all(image == np.array(colour, np.uint8), axis=2).sum() for colour in (AGREE, DISAGREE)))


def test_frames_get_boxes_labels_of_both_models_and_a_chart_history(models, vdetector) -> None:
    processor = LiveProcessor(models, vdetector)
    given = frames(6)
    outputs = [processor.process(frame, time_s=i / 30) for i, frame in enumerate(given)]
    assert box_pixels(given[0]) == 0
    assert all(box_pixels(out) > 200 for out in outputs), "every analysed frame gets a labelled box"
    assert all(out.shape == given[0].shape for out in outputs)

    status = processor.status()
    assert status.analysed == 6 and status.dropped == 0
    assert len(status.faces) == 1, "one face in view"
    assert status.faces[0].startswith("#1 tiny_a: ") and "\ntiny_b: " in status.faces[0], "both models"
    assert status.latency_ms > 0

    history = processor.history()
    assert list(history) == [1], "the face keeps one track while it drifts"
    times, raw, smoothed = history[1]
    assert times == pytest.approx([i / 30 for i in range(6)])
    assert set(smoothed) == set(raw) == {"tiny_a", "tiny_b"}
    assert all(values.shape == (6, 7) for values in (*raw.values(), *smoothed.values()))
    assert np.allclose(smoothed["tiny_a"].sum(axis=1), 1, atol=1e-4)


def test_the_chart_history_keeps_only_the_last_seconds(models, vdetector) -> None:
    processor = LiveProcessor(models, vdetector, history_seconds=0.09)
    for i, frame in enumerate(frames(6)):
        processor.process(frame, time_s=i / 30)
    times, _, smoothed = processor.history()[1]
    assert times == pytest.approx([3 / 30, 4 / 30, 5 / 30]), "0.09 s back from the newest frame"
    assert smoothed["tiny_b"].shape == (3, 7)


def test_a_video_frame_comes_back_as_a_video_frame_with_its_timing(models, vdetector) -> None:
    processor = LiveProcessor(models, vdetector)
    frame = av.VideoFrame.from_ndarray(frames(1)[0], format="rgb24")
    frame.pts, frame.time_base = 90_000, Fraction(1, 90_000)
    out = processor(frame)
    assert isinstance(out, av.VideoFrame)
    assert (out.pts, out.time_base) == (90_000, Fraction(1, 90_000))
    assert box_pixels(out.to_ndarray(format="rgb24")) > 200
    assert processor.history()[1][0] == [1.0], "the frame's own time (pts x time base)"


def test_a_frame_given_during_an_analysis_is_dropped_not_queued(models, vdetector) -> None:
    processor = LiveProcessor(models, vdetector)
    first, second, third = frames(3)
    processor.process(first, time_s=0.0)
    worker = threading.Thread(target=processor.process, args=(second,), kwargs={"time_s": 1 / 30})
    worker.start()
    while not processor._busy.locked() and worker.is_alive():
        pass
    dropped = processor.process(third, time_s=2 / 30)  # returns at once, while the second is analysed
    was_busy = worker.is_alive()
    worker.join()
    assert was_busy, "the third frame came during the second one's analysis"
    status = processor.status()
    assert (status.analysed, status.dropped) == (2, 1), "dropped, and never analysed afterwards"
    assert box_pixels(dropped) > 200, "a dropped frame still shows the last labels"
    assert len(processor.history()[1][0]) == 2


def test_queued_frames_analyse_only_the_newest(models, vdetector) -> None:
    processor = LiveProcessor(models, vdetector)
    queued = []
    for i, array in enumerate(frames(3)):
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 30)
        queued.append(frame)
    out = asyncio.run(processor.recv_queued(queued))
    assert len(out) == 1 and out[0].pts == 2
    status = processor.status()
    assert (status.analysed, status.dropped) == (1, 2)
    assert processor.history()[1][0] == [pytest.approx(2 / 30)]


def test_a_slow_server_drops_frames_in_streamlit_webrtcs_track(models, vdetector) -> None:
    """120 frames/s in real time for 1 s: far more than MTCNN analyses; the rest are dropped, not queued."""
    processor = LiveProcessor(models, vdetector)
    result = feed(processor, seconds=1.0, fps=120)
    assert result.sent == 120
    assert 0 < result.analysed < result.sent
    assert result.dropped >= result.sent // 2, "most frames are skipped"
    assert result.analysed + result.dropped <= result.sent  # those of the last analysis are never taken
    times = processor.history()[1][0]
    assert min(np.diff(times)) > 1 / 120, "each analysis takes the newest frame, skipping those in between"
    assert result.seconds < 1.0 + 2.0, "the stream keeps its pace: nothing waits in a queue"
    assert box_pixels(result.returned[-1]) > 200, "the stream carries labelled boxes"


def test_a_stream_takes_a_place_and_gives_it_back(models, vdetector) -> None:
    places = threading.BoundedSemaphore(1)
    first = LiveProcessor(models, vdetector, slots=places)
    second = LiveProcessor(models, vdetector, slots=places)
    frame = frames(1)[0]
    assert box_pixels(first.process(frame, time_s=0.0)) > 200
    refused = second.process(frame, time_s=0.0)
    assert second.status().refused and second.status().analysed == 0
    assert box_pixels(refused) == 0 and (refused[:10] != frame[:10]).any(), "a notice, no analysis"
    first.close()
    assert places.acquire(blocking=False), "closing the stream gave its place back"
    restarted = first.process(frame, time_s=50.0)  # Start again: a new stream asks for a place again
    assert first.status().refused and box_pixels(restarted) == 0
    places.release()
    first.close()
    first.process(frame, time_s=90.0)
    assert not first.status().refused and first.status().analysed == 1, "counts start afresh"
    assert list(first.history()) == [1] and first.history()[1][0] == [90.0], "so do tracks and the chart"


def test_a_stream_stops_being_analysed_after_its_maximum_length(models, vdetector) -> None:
    now = [100.0]
    expired = []
    places = threading.BoundedSemaphore(1)
    processor = LiveProcessor(
        models,
        vdetector,
        max_seconds=5,
        slots=places,
        on_expired=lambda: expired.append(1),
        clock=lambda: now[0],
    )
    frame = frames(1)[0]
    processor.process(frame, time_s=0.0)
    now[0] += 5.5
    late = processor.process(frame, time_s=5.5)
    processor.process(frame, time_s=5.6)
    assert processor.status().expired and processor.status().analysed == 1
    assert expired == [1], "told once"
    assert box_pixels(late) == 0 and (late[:10] != frame[:10]).any()
    assert places.acquire(blocking=False), "an expired stream holds no place"


def test_a_refused_or_expired_stream_is_hung_up_and_costs_nothing_more(models, vdetector) -> None:
    """A stream past its limit, or refused, kept its connection: the server went on decoding,
    drawing and encoding its frames. Now it gets one notice, then its connection is closed."""
    calls: list[str] = []
    called = threading.Event()

    def hang_up() -> None:
        calls.append(threading.current_thread().name)
        called.set()

    frame = frames(1)[0]
    video = av.VideoFrame.from_ndarray(frame, format="rgb24")
    now = [100.0]
    expiring = LiveProcessor(models, vdetector, max_seconds=5, clock=lambda: now[0])
    expiring.connect(hang_up)
    expiring.process(frame, time_s=0.0)
    assert not called.is_set() and not expiring.status().hung_up
    now[0] += 5.5
    notice = expiring.process(frame, time_s=5.5)
    assert (notice[:10] != frame[:10]).any(), "one frame says why"
    assert called.wait(timeout=30) and calls == ["live-hang-up"], "closed, from a thread of its own"
    assert expiring.process(frame, time_s=5.6) is frame, "later frames are neither decoded nor drawn on"
    assert asyncio.run(expiring.recv_queued([video, video])) == [], "and nothing is produced for them"
    status = expiring.status()
    assert status.hung_up and (status.analysed, status.dropped) == (1, 0)

    calls.clear()
    called.clear()
    refused = LiveProcessor(models, vdetector, slots=threading.Semaphore(0))
    notice = refused.process(frame, time_s=0.0)
    assert box_pixels(notice) == 0 and (notice[:10] != frame[:10]).any()
    refused.connect(hang_up)  # connected after the refusal: hung up at once
    assert called.wait(timeout=30) and calls == ["live-hang-up"]
    assert refused.process(frame, time_s=0.1) is frame
    assert asyncio.run(refused.recv_queued([video])) == []
    refused.connect(hang_up)
    assert refused.status().analysed == 0 and calls == ["live-hang-up"], "once per stream"


def test_a_frame_that_is_not_rgb_gets_one_clear_line(models, vdetector) -> None:
    with pytest.raises(ValueError, match=r"RGB uint8 array of shape \(H, W, 3\)"):
        LiveProcessor(models, vdetector).process(np.zeros((4, 4), np.float32))


def test_ice_servers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER_STUDIO_ICE_SERVERS", raising=False)
    assert ice_servers() == [] and rtc_configuration() == {"iceServers": []}, (
        "none by default: no request leaves"
    )
    monkeypatch.setenv("FER_STUDIO_ICE_SERVERS", "auto")
    assert rtc_configuration() is None, "streamlit-webrtc chooses"
    turn = [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]
    monkeypatch.setenv(
        "FER_STUDIO_ICE_SERVERS",
        '[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]',
    )
    assert rtc_configuration() == {"iceServers": turn}
    monkeypatch.setenv("FER_STUDIO_ICE_SERVERS", '{"iceServers": [{"urls": "stun:stun.example.org"}]}')
    assert ice_servers() == [{"urls": "stun:stun.example.org"}]
    for bad, message in (("[{urls: 1}]", "not valid JSON"), ('[{"username": "u"}]', 'objects with "urls"')):
        monkeypatch.setenv("FER_STUDIO_ICE_SERVERS", bad)
        with pytest.raises(IceSettingError, match=message) as caught:
            ice_servers()
        assert "\n" not in str(caught.value)


def test_loopback_only_offers_and_accepts_127_0_0_1_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from aioice import Candidate, ice

    # restored after the test: the switch patches aioice for the whole process
    monkeypatch.setattr(ice, "get_host_addresses", ice.get_host_addresses)
    monkeypatch.setattr(ice.Connection, "add_remote_candidate", ice.Connection.add_remote_candidate)
    monkeypatch.setattr(ice, "_fer_loopback", False, raising=False)
    use_loopback_only()
    use_loopback_only()  # idempotent
    assert ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]

    def candidate(host: str) -> Candidate:
        return Candidate(
            foundation="1", component=1, transport="udp", priority=1, host=host, port=5000, type="host"
        )

    async def remote_hosts() -> list[str]:
        connection = ice.Connection(ice_controlling=True)
        await connection.add_remote_candidate(candidate("10.1.2.3"))
        await connection.add_remote_candidate(candidate("127.0.0.1"))
        return [c.host for c in connection.remote_candidates]

    assert asyncio.run(remote_hosts()) == ["127.0.0.1"]
