"""Live: the browser camera through both models, boxes and smoothed labels drawn on the stream."""

from __future__ import annotations

import time

import streamlit as st
from streamlit_webrtc import Translations, WebRtcMode, webrtc_streamer

from core.serving.public import limits, public_mode
from core.video.ice import ICE_SERVERS, IceSettingError, loopback_only, rtc_configuration, use_loopback_only
from core.video.live import LiveProcessor
from core.video.smoothing import SMOOTHING
from ui import pickers, resources
from ui.charts import emotion_timeline
from ui.display import HOW_TO_GET_MODELS

PROCESSOR = "live_processor"
CONNECTING_SINCE = "live_connecting_since"
CONNECT_PATIENCE_S = 20  # signalling longer than this: the connection is not coming
FIRST_FRAME_PATIENCE_S = 15  # connected this long without a frame: the media path is blocked
CHART_TRACKS = 2  # charts for the most recent tracks only
# The stream's box shows the browser's own error; Python never hears of it, so the page explains each.
CAMERA_TROUBLE = (
    "If the box above says **NotAllowedError**, the camera was refused: allow it for this site (the "
    "camera icon in the address bar) and press Start again. **NotFoundError** or **NotReadableError**: "
    "no camera was found, or another app is using it. The camera needs HTTPS, or the app on localhost."
)
MESSAGES: Translations = {
    "media_api_not_available": "This browser cannot share a camera here: open the app over HTTPS "
    "(or on localhost) in a recent browser.",
    "device_ask_permission": "Allow the camera when the browser asks.",
    "device_not_available": "No camera was found: connect one, or close the other app that uses it, then retry.",
    "device_access_denied": "The camera was refused: allow it for this site (the camera icon in the "
    "address bar), then press Start again.",
}


def processor_for(keys: tuple, every: int, smoothing: str) -> LiveProcessor:
    """This session's processor, new when the models or the settings change."""
    key = (keys, every, smoothing)
    held = st.session_state.get(PROCESSOR)
    if held is None or held[0] != key:
        if held is not None:
            held[1].close()
        limit = limits()
        processor = LiveProcessor(
            resources.models(keys),
            resources.video_detector(),
            every=every,
            smoothing=smoothing,
            max_seconds=limit.max_stream_seconds,
            slots=resources.stream_slots(),
        )
        held = (key, processor)
        st.session_state[PROCESSOR] = held
    return held[1]


def live_charts(processor: LiveProcessor) -> None:
    history = processor.history()
    for track in list(history)[-CHART_TRACKS:]:
        times, raw, smoothed = history[track]
        figure = emotion_timeline(times, raw, smoothed, title=f"Face #{track}: the last seconds")
        figure.update_layout(height=160 + 130 * len(smoothed), margin={"t": 50, "b": 30})
        st.plotly_chart(figure, width="stretch", key=f"live-chart-{track}")


def connection_notice(playing: bool, signalling: bool, analysed: int) -> None:
    """A warning when the connection or its frames do not come."""
    since = st.session_state.get(CONNECTING_SINCE)
    waited = 0.0 if since is None else time.monotonic() - since
    if signalling and not playing and waited > CONNECT_PATIENCE_S:
        st.warning(
            f"The connection did not open within {CONNECT_PATIENCE_S} s. Behind a firewall or on a hosted "
            f"server the app needs a TURN server: set {ICE_SERVERS} (see docs/video-and-live.md). Press Stop to cancel.",
            icon=":material/wifi_off:",
        )
    elif playing and analysed == 0 and waited > FIRST_FRAME_PATIENCE_S:
        st.warning(
            f"Connected, but no frame reached the server within {FIRST_FRAME_PATIENCE_S} s: the media "
            f"path is blocked (a TURN server is needed; see {ICE_SERVERS} in docs/video-and-live.md).",
            icon=":material/wifi_off:",
        )


st.title("Live")
st.caption(
    "Your camera's frames are analysed in this server's memory as they arrive and never stored. "
    "When the server falls behind, frames are skipped rather than queued, so the labels stay current."
)
selection = pickers.current()
if not selection.names:
    st.warning("No emotion model is registered. " + HOW_TO_GET_MODELS)
    st.stop()
try:
    configuration = rtc_configuration()
except IceSettingError as err:
    st.error(f"The live camera is not set up right: {err}.", icon=":material/settings:")
    st.stop()
if loopback_only():
    use_loopback_only()

every_column, smooth_column = st.columns(2)
every = every_column.number_input(
    "Detect faces every k-th analysed frame",
    min_value=1,
    max_value=10,
    value=2,  # the detector is most of a frame's time: every other frame analyses ~1.4x as many frames
    key="live_every",
    help="Faces are followed in between and classified on every analysed frame: 2 analyses more "
    "frames per second (the labels update more often); 1 places boxes more exactly.",
)
smoothing = smooth_column.selectbox(
    "Smoothing",
    SMOOTHING,
    key="live_smoothing",
    help="ema: exponential moving average (half-life 0.25 s); window: mean of the last 0.5 s.",
)
limit = limits()
if public_mode():
    streams = "one live stream" if limit.max_streams == 1 else f"{limit.max_streams} live streams"
    st.caption(f"Public demo: {streams} at a time on this server, {limit.max_stream_seconds} s each.")

processor = processor_for(selection.keys, int(every), smoothing)
begun = processor.status()
ended = begun.expired or begun.refused  # the server closed the connection (LiveProcessor.connect)
if ended:
    if begun.expired:
        st.warning(
            f"This stream reached the limit of {limit.max_stream_seconds} s.", icon=":material/timer_off:"
        )
    else:
        st.warning(
            "Every live place on this server is taken: try again in a minute.", icon=":material/group:"
        )
    if st.button("Start a new stream"):
        processor.close()
        del st.session_state[PROCESSOR]
        st.rerun()

context = webrtc_streamer(
    key="live",
    mode=WebRtcMode.SENDRECV,
    rtc_configuration=configuration,
    media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
    queued_video_frames_callback=processor.recv_queued,
    on_video_ended=processor.close,
    async_processing=True,  # frames that arrive during an analysis are dropped, not queued
    desired_playing_state=False if ended else None,
    translations=MESSAGES,  # used by its device picker; its Start path shows the browser's error
)
# A refused or expired stream is closed by the server, not left to the browser's Stop (streamlit-webrtc
# has no public call for it: its worker's stop closes the peer connection).
worker = context._get_worker()
if worker is not None:
    processor.connect(worker.stop)
playing, signalling = context.state.playing, context.state.signalling
if (playing or signalling) and st.session_state.get(CONNECTING_SINCE) is None:
    st.session_state[CONNECTING_SINCE] = time.monotonic()
elif not (playing or signalling):
    st.session_state.pop(CONNECTING_SINCE, None)
    st.info(
        "Press Start and allow the camera: each face gets a box with both models' smoothed emotions.",
        icon=":material/videocam:",
    )
    st.caption(CAMERA_TROUBLE)


@st.fragment(run_every=1.0 if (playing or signalling) and not ended else None)
def live_status() -> None:
    status = processor.status()
    if (status.expired or status.refused) and not ended:
        st.rerun()  # the whole page: it stops the stream
    connection_notice(playing, signalling, status.analysed)
    if status.refused:
        return  # said above the stream
    if status.analysed:
        st.markdown(
            f"**Live status:** {status.analysed} frames analysed, {status.frames_per_s:.1f} frames/s, "
            f"latency {status.latency_ms:.0f} ms (median), {status.dropped} dropped."
        )
        faces = "; ".join(line.replace("\n", ", ") for line in status.faces) or "no face in view"
        st.caption(f"Faces: {faces}")
        live_charts(processor)


live_status()
