"""Video: each face's emotions over time in an uploaded clip, for both models, with Grad-CAM per frame."""

from __future__ import annotations

import io

import streamlit as st

from core.explain.saliency import CAM_METHODS
from core.labels import EMOTIONS
from core.serving.gate import GateRefused, Stopped, Turn
from core.serving.public import limits
from core.video.analysis import DEFAULT_EVERY, VideoSettings, analyze_video, frame_saliency
from core.video.codec import VideoError, VideoLimits
from core.video.smoothing import SMOOTHING
from ui import comparison, pickers, resources
from ui.charts import emotion_timeline
from ui.display import HOW_TO_GET_MODELS, file_stem

VIDEO_TYPES = ["mp4", "webm", "mov", "avi", "mkv", "m4v", "gif"]
RESULT = "video_result"
# The web server refuses any upload above server.maxUploadSize, so that is a video's limit too.
MAX_VIDEO_MB = int(st.get_option("server.maxUploadSize"))
MAX_VIDEO_SECONDS = limits().max_video_seconds


def run_analysis(data: bytes, keys: tuple, settings: VideoSettings) -> dict | None:
    """Analyse the clip with a progress bar and a Stop button; the result, or None when it failed."""
    models = resources.models(keys)
    bar = st.progress(0.0, text="Analysing…")
    st.button("Stop", help="Stops the analysis (the page starts over).")  # a click reruns, which stops it

    turn: Turn | None = None

    def progress(done: int, total: int | None) -> None:
        if turn is not None:
            turn.checkpoint()  # photos go first; other videos get turns; Stop or a closed tab ends it
        if done % 10 == 0 or done == total:
            share = min(done / total, 1.0) if total else 0.0
            bar.progress(share, text=f"Frame {done}" + (f" of {total}" if total else ""))

    annotated = io.BytesIO()
    waiting = resources.WaitNotice(st.empty())
    try:
        # A clip is many analyses: it runs in the long lane and gives way to photos between frames.
        with resources.long_turn(waiting) as turn:
            result = analyze_video(
                data, models, resources.video_detector(), settings, annotated, on_frame=progress
            )
    except VideoError as err:
        waiting.done()
        bar.empty()
        st.warning(f"Could not read this video: {err}.", icon=":material/broken_image:")
        return None
    except (GateRefused, Stopped) as err:
        waiting.done()
        bar.empty()
        st.warning(str(err) or "Stopped.", icon=":material/block:")
        return None
    waiting.done()
    bar.empty()
    return {"result": result, "video": annotated.getvalue()}


def downloads(state: dict, stem: str) -> None:
    """CSV, JSON (each built when first asked for, then kept with the result) and the annotated video."""
    result = state["result"]
    st.download_button("CSV (frame, face, model)", result.csv_bytes, f"{stem}-emotions.csv", "text/csv")
    st.download_button("JSON", result.json_bytes, f"{stem}-emotions.json", "application/json")
    st.download_button("Annotated video", state["video"], f"{stem}-annotated.mp4", "video/mp4")


def track_view(state: dict, data: bytes, keys: tuple, summary: dict, method: str) -> None:
    """One track's timeline and summary, and one of its frames with each model's Grad-CAM and where
    the two models look on the face, compared."""
    result, track = state["result"], summary["track"]
    times, raw, smoothed = result.track_series(track)
    st.plotly_chart(
        emotion_timeline(times, raw, smoothed, title=f"Face #{track}: smoothed lines, raw dots"),
        width="stretch",
    )
    st.dataframe(
        [
            {
                "model": name,
                "dominant": entry["dominant"],
                "changes": entry["changes"],
                **{e: f"{entry['share'][e]:.0%}" for e in EMOTIONS},
            }
            for name, entry in summary["models"].items()
        ],
        hide_index=True,
    )
    frames = [p.frame for p in result.track_points(track)]
    frame = (
        st.select_slider("Frame", options=frames, value=frames[0], key=f"frame-{track}")
        if len(frames) > 1
        else frames[0]
    )
    waiting = resources.WaitNotice(st.empty())
    with st.spinner(f"Computing {method} for frame {frame}…"), resources.gate().admit(waiting):
        image, overlays = frame_saliency(data, result, frame, resources.models(keys), method)
    waiting.done()
    columns = st.columns(len(overlays) + 1)
    columns[0].image(image, caption=f"frame {frame}", width="stretch")
    for column, (name, overlay) in zip(columns[1:], overlays.items(), strict=True):
        column.image(overlay, caption=f"Grad-CAM · {name}", width="stretch")
    if len(keys) >= 2:
        compare_frame(state, data, keys, track, frame, method)


@st.fragment
def compare_frame(state: dict, data: bytes, keys: tuple, track: int, frame: int, method: str) -> None:
    """Where model A and model B look on this track's face in this frame (reruns on its own)."""
    with st.container(border=True):
        st.markdown(f"**Where the two models look** on face #{track} in frame {frame} · {method}")
        waiting = resources.WaitNotice(st.empty())
        with st.spinner("Comparing the two maps…"):
            found = resources.frame_comparison(
                data, state["key"], state["result"], frame, track, keys, method, waiting
            )
        waiting.done()
        comparison.face_view(found, f"video-{track}")
        st.caption("A video keeps no landmarks: the parts sit where they typically are on a face crop.")


st.title("Video")
st.caption("Uploaded videos stay in this app's memory and are never written to disk.")
selection = pickers.current()
if not selection.names:
    st.warning("No emotion model is registered. " + HOW_TO_GET_MODELS)
    st.stop()

upload = st.file_uploader(
    "Upload a video",
    type=VIDEO_TYPES,
    max_upload_size=MAX_VIDEO_MB,
    key="video_upload",
    help=f"mp4, webm, mov, avi, mkv or animated GIF, up to {MAX_VIDEO_MB} MB and {MAX_VIDEO_SECONDS} s.",
)
every_column, smooth_column, method_column = st.columns(3)
every = every_column.number_input(
    "Detect faces every k-th frame",
    min_value=1,
    max_value=30,
    value=DEFAULT_EVERY,
    help="Faces are followed in between: faster, a little less exact. 1 detects on every frame.",
)
smoothing = smooth_column.selectbox(
    "Smoothing",
    SMOOTHING,
    help="ema: exponential moving average (half-life 0.25 s); window: mean of the last 0.5 s.",
)
method = method_column.selectbox("Grad-CAM method", list(CAM_METHODS), key="video_cam_method")
if upload is None:
    st.info("Upload a clip to see each face's emotions over time.", icon=":material/movie:")
    st.stop()

data = upload.getvalue()
run_key = (upload.name, len(data), selection.keys, int(every), smoothing)
state = st.session_state.get(RESULT)
if state is None or state["key"] != run_key:
    if not st.button("Analyse", type="primary"):
        st.stop()
    state = run_analysis(
        data,
        selection.keys,
        VideoSettings(
            every=int(every),
            smoothing=smoothing,
            limits=VideoLimits(max_bytes=MAX_VIDEO_MB * 2**20, max_seconds=MAX_VIDEO_SECONDS),
        ),
    )
    if state is None:
        st.stop()
    state["key"] = run_key
    st.session_state[RESULT] = state

result = state["result"]
summaries = {row["track"]: row for row in result.summary()}
video_column, side = st.columns([3, 1])
video_column.video(state["video"], format="video/mp4")
with side:
    st.metric("Frames", result.frames)
    st.metric("Face tracks", len(summaries))
    downloads(state, file_stem(upload.name))
if not summaries:
    st.info("No face was found in this video.", icon=":material/sentiment_neutral:")
    st.stop()
track = st.selectbox(
    "Face track",
    list(summaries),
    format_func=lambda t: (
        f"#{t}: {summaries[t]['first_s']:.1f}–{summaries[t]['last_s']:.1f} s, {summaries[t]['frames']} frames"
    ),
)
track_view(state, data, selection.keys, summaries[track], method)
