"""A stand-in camera for the live benchmark and tests: a WebRTC peer that sends the bundled portrait
and measures the annotated stream that comes back.

Each sent frame carries its number as a row of black and white blocks along the bottom edge
(far from the face, and coarse enough to survive VP8 both ways), so the peer can tell, for each
frame it gets back, which camera frame it shows and how long ago that frame was sent: the
latency from frame to drawn label, encoding, network and decoding included.

Run as `python -m tests.harness.live_peer --seconds S --fps F`: it prints its offer as one JSON line,
reads the answer as one JSON line on stdin, streams, and prints its measurements as one JSON
line. A separate process, so that its encoding and decoding do not share the server's GIL.
Uses aiortc only (no Streamlit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from PIL import Image
from skimage import data as skimage_data

STAMP_BITS = 16  # frame numbers up to 65535: 36 minutes at 30 fps
STAMP_BLOCK = (20, 16)  # width, height of one bit's block, in pixels


def portrait_frames(fps: int = 30, width: int = 640, height: int = 480) -> Iterator[np.ndarray]:
    """Endless RGB frames of the bundled portrait drifting back and forth on grey: one face."""
    side = min(400, height - 40)
    portrait = Image.fromarray(skimage_data.astronaut()).resize((side, side))
    background = Image.new("RGB", (width, height), (128, 128, 128))
    index = 0
    while True:
        frame = background.copy()
        frame.paste(portrait, (round((width - side) / 2 + 100 * np.sin(index / fps)), 40))
        yield np.asarray(frame)
        index += 1


def stamp(frame: np.ndarray, number: int) -> np.ndarray:
    """A copy of the RGB frame with `number` written as STAMP_BITS blocks along its bottom edge."""
    width, height = STAMP_BLOCK
    out = frame.copy()
    for bit in range(STAMP_BITS):
        value = 235 if number >> (STAMP_BITS - 1 - bit) & 1 else 16
        out[-height:, bit * width : (bit + 1) * width] = value
    return out


def read_stamp(luma: np.ndarray) -> int:
    """The number stamp() wrote, read from the frame's luma (H x W), each block judged by its middle."""
    width, height = STAMP_BLOCK
    band = luma[-height + 4 : -4].astype(np.float32)
    number = 0
    for bit in range(STAMP_BITS):
        number = number << 1 | int(band[:, bit * width + 5 : (bit + 1) * width - 5].mean() > 128)
    return number


class PacedTrack(MediaStreamTrack):
    """A video track that gives the next frame when it is due, `fps` per second in real time.

    stamped: write each frame's number into it (see stamp()) and note when it was sent.
    """

    kind = "video"

    def __init__(self, frames: Iterator[np.ndarray], fps: int, stamped: bool = False) -> None:
        super().__init__()
        self.frames = frames
        self.fps = fps
        self.stamped = stamped
        self.sent = 0
        self.sent_at: list[float] = []  # clock when frame i was handed to the sender
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.sent / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        array = next(self.frames)
        if self.stamped:
            array = stamp(array, self.sent)
            self.sent_at.append(time.monotonic())
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts, frame.time_base = self.sent, Fraction(1, self.fps)
        self.sent += 1
        return frame


@dataclass(frozen=True)
class PeerResult:
    """What came back to the camera: frames received, the distinct camera frames they showed, and
    each shown frame's latency (first arrival minus sending), over the measured seconds."""

    sent: int
    received: int  # frames the peer decoded (the server sends one per camera frame)
    shown: int  # distinct camera frames among them: the frames the server labelled
    seconds: float  # measured: from `warmup` after the first frame received
    latencies_ms: list[float]

    @property
    def shown_per_s(self) -> float:
        return self.shown / self.seconds if self.seconds else 0.0


async def run_peer(
    seconds: float,
    fps: int,
    exchange: Callable[[RTCSessionDescription], Awaitable[RTCSessionDescription]],
    warmup: float = 2.0,
) -> PeerResult:
    """Send `seconds` (after `warmup`) of stamped portrait frames at `fps` to the server whose answer
    `exchange(offer) -> answer` (async, RTCSessionDescriptions) returns; measure what comes back."""
    source = PacedTrack(portrait_frames(fps), fps, stamped=True)
    connection = RTCPeerConnection()
    connection.addTrack(source)
    incoming: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @connection.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not incoming.done():
            incoming.set_result(track)

    await connection.setLocalDescription(await connection.createOffer())
    await connection.setRemoteDescription(await exchange(connection.localDescription))
    track = await asyncio.wait_for(incoming, timeout=30)
    first_seen: dict[int, float] = {}
    received = 0
    measuring_from: float | None = None
    try:
        while True:
            frame = await asyncio.wait_for(track.recv(), timeout=10)
            assert isinstance(frame, av.VideoFrame)
            now = time.monotonic()
            if measuring_from is None:
                measuring_from = now + warmup  # the first frames wait for the connection to settle
            if now >= measuring_from + seconds:
                break
            if now < measuring_from:
                continue
            received += 1
            number = read_stamp(frame.to_ndarray(format="yuv420p")[: frame.height])
            if number < len(source.sent_at) and number not in first_seen:
                first_seen[number] = now
    except MediaStreamError:
        pass
    finally:
        await connection.close()
    latencies = [(seen - source.sent_at[number]) * 1000 for number, seen in first_seen.items()]
    return PeerResult(source.sent, received, len(first_seen), seconds, sorted(latencies))


def _description(line: str) -> RTCSessionDescription:
    data = json.loads(line)
    return RTCSessionDescription(sdp=data["sdp"], type=data["type"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured at first")
    parser.add_argument("--loopback", action="store_true", help="ICE on 127.0.0.1 only")
    args = parser.parse_args(argv)
    if args.loopback:
        from core.video.ice import use_loopback_only

        use_loopback_only()

    async def exchange(offer: RTCSessionDescription) -> RTCSessionDescription:
        print(json.dumps({"sdp": offer.sdp, "type": offer.type}), flush=True)
        return _description(await asyncio.to_thread(sys.stdin.readline))

    result = asyncio.run(run_peer(args.seconds, args.fps, exchange, args.warmup))
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
