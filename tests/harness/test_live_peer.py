"""The stand-in camera of the end-to-end live benchmark: frame numbers survive VP8, and a real WebRTC
connection on loopback carries labelled frames back to it."""

from __future__ import annotations

import threading
from itertools import islice

import av
import torch

from core.models.loading import load_model
from core.video.analysis import video_detector
from core.video.live import LiveProcessor
from tests.harness.live_peer import portrait_frames, read_stamp, stamp


def test_frame_numbers_survive_a_vp8_round_trip() -> None:
    numbers = [0, 1, 2, 255, 4097, 12345, 65535]
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 640, 480, "yuv420p"
    encoder.bit_rate = 300_000  # about aiortc's starting rate: a blurry picture
    decoder = av.CodecContext.create("libvpx", "r")
    read = []
    for number, array in zip(numbers, islice(portrait_frames(30), len(numbers)), strict=True):
        frame = av.VideoFrame.from_ndarray(stamp(array, number), format="rgb24").reformat(format="yuv420p")
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                read.append(read_stamp(decoded.to_ndarray(format="yuv420p")[:480]))
    for packet in encoder.encode(None):
        for decoded in decoder.decode(packet):
            read.append(read_stamp(decoded.to_ndarray(format="yuv420p")[:480]))
    assert read == numbers


def test_each_frame_is_analysed_with_half_the_threads_and_they_come_back(tiny_registry: list[str]) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        processor = LiveProcessor([load_model(name) for name in tiny_registry], video_detector())
        step = processor.analyzer.step
        during: list[int] = []

        def counted_step(*args, **kwargs):
            during.append(torch.get_num_threads())
            return step(*args, **kwargs)

        processor.analyzer.step = counted_step  # type: ignore[method-assign]
        between: list[int] = []

        def analyse() -> None:
            for index, frame in enumerate(islice(portrait_frames(30, 320, 240), 2)):
                processor.process(frame, time_s=index / 30)
                between.append(torch.get_num_threads())

        worker = threading.Thread(target=analyse)
        worker.start()
        worker.join()
        assert during == [1, 1], "the analysing thread computes with one thread of two"
        assert between == [2, 2], "and has both again between frames"
        after: list[int] = []
        fresh = threading.Thread(target=lambda: after.append(torch.get_num_threads()))
        fresh.start()
        fresh.join()
        assert after == [2], "a stream that is never closed leaves new threads the process's two"
    finally:
        torch.set_num_threads(before)
