"""Feed a LiveProcessor as a camera would, through streamlit-webrtc's own frame-dropping track.

Frames are produced at a fixed rate in real time by an aiortc track and pulled through
streamlit_webrtc.process.AsyncVideoProcessTrack, the track the Live page's stream runs on,
so what is measured (frames analysed, frames dropped, latency) is what a browser's stream
gets. Used by the live benchmark and its tests. In ui/, not core/: streamlit-webrtc imports
Streamlit.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from aiortc.contrib.media import MediaRelay
from streamlit_webrtc import WebRtcMode
from streamlit_webrtc.config import compile_rtc_configuration
from streamlit_webrtc.models import CallbackAttachableProcessor
from streamlit_webrtc.process import AsyncVideoProcessTrack
from streamlit_webrtc.webrtc import WebRtcWorker

from core.video.ice import use_loopback_only
from core.video.live import LiveProcessor, LiveStatus
from tests.harness.browser import REPO
from tests.harness.live_peer import PacedTrack, PeerResult, portrait_frames


@dataclass(frozen=True)
class FeedResult:
    """What a paced feed did: frames sent and analysed, seconds, and the annotated frames returned."""

    sent: int
    analysed: int
    dropped: int
    seconds: float
    returned: list[np.ndarray]  # the last few frames the track returned, as RGB arrays

    @property
    def analysed_per_s(self) -> float:
        return self.analysed / self.seconds if self.seconds else 0.0


def feed(processor: LiveProcessor, seconds: float, fps: int = 30, keep: int = 5) -> FeedResult:
    """Stream `seconds` of portrait_frames at `fps` through the processor as the Live page does."""

    async def run() -> FeedResult:
        source = PacedTrack(portrait_frames(fps), fps)
        track = AsyncVideoProcessTrack(
            source, CallbackAttachableProcessor(None, processor.recv_queued, processor.close)
        )
        returned: list[np.ndarray] = []
        started = time.monotonic()
        try:
            while source.sent < round(seconds * fps):
                out = await track.recv()
                returned = [*returned[-(keep - 1) :], out.to_ndarray(format="rgb24")] if keep else []
        finally:
            track.stop()  # ends the worker thread after the analysis in progress
        elapsed = time.monotonic() - started
        status = processor.status()
        return FeedResult(source.sent, status.analysed, status.dropped, elapsed, returned)

    return asyncio.run(run())


@dataclass(frozen=True)
class WebRtcFeedResult:
    """A stream over a real WebRTC connection: what the camera's peer got back, and the server's count."""

    peer: PeerResult
    server: LiveStatus


def feed_over_webrtc(
    processor: LiveProcessor, seconds: float, fps: int = 30, warmup: float = 2.0
) -> WebRtcFeedResult:
    """Stream `seconds` (after `warmup`) of stamped portrait frames at `fps` from a camera peer in its
    own process (tests.harness.live_peer) over a loopback WebRTC connection to streamlit-webrtc's WebRtcWorker,
    set up as the Live page sets it up (SENDRECV, the processor's recv_queued, async processing):
    VP8 both ways, RTP, and the frame-dropping track, without a browser or Streamlit's script runs."""
    use_loopback_only()  # this process's aioice; the peer is told with --loopback
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webrtc-feed-loop", daemon=True)
    thread.start()

    async def new_relay() -> MediaRelay:
        return MediaRelay()

    worker: WebRtcWorker = WebRtcWorker(
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=compile_rtc_configuration({"iceServers": []}),
        source_video_track=None,
        source_audio_track=None,
        sink_video_track=None,
        sink_audio_track=None,
        player_factory=None,
        in_recorder_factory=None,
        out_recorder_factory=None,
        video_frame_callback=None,
        audio_frame_callback=None,
        queued_video_frames_callback=processor.recv_queued,
        queued_audio_frames_callback=None,
        on_video_ended=processor.close,
        on_audio_ended=None,
        video_processor_factory=None,
        audio_processor_factory=None,
        async_processing=True,
        video_receiver_size=4,
        audio_receiver_size=4,
        sendback_video=True,
        sendback_audio=False,
        loop=loop,
        relay=asyncio.run_coroutine_threadsafe(new_relay(), loop).result(),
    )
    command = [sys.executable, "-m", "tests.harness.live_peer", "--seconds", str(seconds), "--fps", str(fps),
               "--warmup", str(warmup), "--loopback"]  # fmt: skip
    peer = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert peer.stdin is not None and peer.stdout is not None
    try:
        offer = json.loads(peer.stdout.readline())
        answer = worker.process_offer(offer["sdp"], offer["type"], timeout=30)
        peer.stdin.write(json.dumps({"sdp": answer.sdp, "type": answer.type}) + "\n")
        peer.stdin.flush()
        line = peer.stdout.readline()
        if not line:
            raise RuntimeError(f"the camera peer ended without a result (exit status {peer.wait(10)})")
        result = PeerResult(**json.loads(line))
        status = processor.status()
    finally:
        try:
            peer.wait(5)
        except subprocess.TimeoutExpired:
            peer.kill()
        worker.stop(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return WebRtcFeedResult(result, status)
