"""Analyze: every face in a photo, read by model A and model B, with Grad-CAM explanations."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core.explain.saliency import CAM_METHODS, overlay_on_crop
from core.faces.images import ImageError
from core.labels import EMOTIONS
from core.pipeline import Analysis, FaceResult, annotate
from core.serving.public import limits, public_mode
from ui import comparison, pickers, resources
from ui.charts import probability_chart
from ui.display import EMOJI, HOW_TO_GET_MODELS, NO_FACE_TIPS, enlarge, file_stem, png_bytes, preview
from ui.inputs import ImageInput, image_inputs

PRIVACY = (
    "🔒 **Privacy:** photos are processed in this server's memory and never written to disk or sent "
    "elsewhere. Results (a reduced copy of the photo, the face crops and the predictions) stay in "
    "memory for at most an hour, so that changing a setting is quick."
)


def face_card(number: int, face: FaceResult, models: list[str], key: str) -> dict[str, Any]:
    """One face: crop, each model's verdict, a slot for its Grad-CAM, and the probability chart.

    Returns the empty Grad-CAM slots by model name, filled by fill_saliency().
    """
    slots: dict[str, Any] = {}
    with st.container(border=True):
        title, badge = st.columns([3, 2], vertical_alignment="center")
        title.markdown(f"**Face {number}** · detector confidence {face.face.score:.2f}")
        if face.flags:
            title.caption(f":material/warning: {face.warning()}: treat its label with care")
        if len(models) >= 2:
            if face.agree():
                badge.badge(
                    f"Models agree: {face.top(models[0])[0]}", icon=":material/check_circle:", color="green"
                )
            else:
                badge.badge("Models disagree", icon=":material/error:", color="orange")
        columns = st.columns([1] + [1.3] * len(models) + [2.4])
        columns[0].image(enlarge(face.crop), caption="48×48 face crop", width="stretch")
        for column, name, letter in zip(columns[1:], models, "AB", strict=False):
            emotion, confidence = face.top(name)
            column.metric(f"Model {letter} · {name}", f"{EMOJI[emotion]} {emotion}")
            column.progress(confidence, text=f"{confidence:.0%} confident")
            slots[name] = column.empty()
            slots[name].caption("Grad-CAM: computing…")
        if models:
            columns[-1].plotly_chart(probability_chart(face.probabilities), key=f"{key}-chart-{number}")
    return slots


def fill_saliency(slots: list[dict[str, Any]], result: Analysis, heatmaps: list[dict[str, Any]]) -> None:
    """Draw each face's Grad-CAM overlays into the slots its card left."""
    for face_slots, face, maps in zip(slots, result.faces, heatmaps, strict=True):
        for name, slot in face_slots.items():
            overlay = overlay_on_crop(face.crop, maps[name])
            slot.image(enlarge(overlay), caption=f"Grad-CAM · {name}", width="stretch")


@st.fragment
def compare(
    item: ImageInput, result: Analysis, heatmaps: list[dict[str, Any]], request: tuple, key: str
) -> None:
    """Where model A and model B look on one face of the photo, with numbers (reruns on its own).

    request: (keys, flip, method, target) as resources.heatmaps() took them.
    """
    keys, flip, method, target = request
    with st.container(border=True):
        st.markdown(f"**Where the two models look** · {method}")
        number = 1
        if len(result.faces) > 1:
            number = st.segmented_control(
                "Face", list(range(1, len(result.faces) + 1)), default=1, required=True, key=f"{key}-face"
            )
        waiting = resources.WaitNotice(st.empty())
        with st.spinner(f"Comparing the two maps of face {number}…"):
            found = resources.comparison(item.data, keys, flip, method, target, number - 1, waiting)
        waiting.done()
        opacity = comparison.map_views(found.crop, found.maps, f"{key}-compare")
        first, second, side = st.columns([2, 2, 1])
        comparison.photo_overlays(
            result.image,
            [face.face for face in result.faces],
            [{name: face_maps[name] for name in found.names} for face_maps in heatmaps],
            opacity,
            [first, second],
        )
        with side:
            comparison.agreement(found)
        comparison.numbers(found, f"{key}-compare")


def downloads(result: Analysis, item: ImageInput, picture_png: bytes, key: str) -> None:
    """JSON, CSV and annotated-PNG downloads for one image."""
    stem = file_stem(item.name)
    st.download_button(
        "Results (JSON)",
        json.dumps({"image": item.name, **result.to_dict()}, indent=2),
        file_name=f"{stem}-emotions.json",
        mime="application/json",
        icon=":material/download:",
        on_click="ignore",
        key=f"{key}-json",
    )
    st.download_button(
        "Results (CSV)",
        result.to_csv(item.name),
        file_name=f"{stem}-emotions.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key=f"{key}-csv",
    )
    st.download_button(
        "Annotated image (PNG)",
        picture_png,
        file_name=f"{stem}-annotated.png",
        mime="image/png",
        icon=":material/download:",
        on_click="ignore",
        key=f"{key}-png",
    )


def show(item: ImageInput, index: int, keys: tuple, method: str, target: int | None, flip: bool) -> None:
    """Analyse one image and draw the photo, downloads and one card per face; Grad-CAM comes last."""
    key = f"image-{index}"
    waiting = resources.WaitNotice(st.empty())
    try:
        with st.spinner(f"Finding and reading faces in {item.name}…"):
            result = resources.analysis(item.data, keys, flip, waiting)
    except ImageError as err:
        waiting.done()
        st.warning(
            f"Could not read **{item.name}**: {err}. Try a JPEG or PNG photo.", icon=":material/broken_image:"
        )
        return
    if not result.faces:
        waiting.done()
        tips = "\n".join(f"- {tip}" for tip in NO_FACE_TIPS)
        st.info(f"No face found in **{item.name}**. A few tips:\n{tips}", icon=":material/sentiment_neutral:")
        st.image(preview(result.image))
        return
    models = result.models
    picture = annotate(result, models[0] if models else None)
    photo, side = st.columns([3, 1])
    photo.image(
        picture, caption=f"{item.name}: boxes green where the models agree, yellow where not", width="stretch"
    )
    with side:
        agree = sum(face.agree() for face in result.faces)
        st.metric("Faces found", len(result.faces))
        if len(models) >= 2:
            st.metric("Models agree on", f"{agree} of {len(result.faces)}")
        st.caption(f"Analysed in {result.timings.get('total', 0):.1f} s")
        downloads(result, item, png_bytes(picture), key)
    if result.faces_left_out:
        st.info(
            f"{result.faces_left_out} more face(s) were found in **{item.name}** but are not shown: "
            f"this server reads the {len(result.faces)} largest faces of a photo. "
            "Crop the photo to the people you care about to see the others.",
            icon=":material/groups:",
        )
    slots = [face_card(number, face, models, key) for number, face in enumerate(result.faces, start=1)]
    if models:
        with st.spinner(f"Computing {method} for {len(result.faces)} face(s)…"):
            heatmaps = resources.heatmaps(item.data, keys, flip, method, target, waiting)
        fill_saliency(slots, result, heatmaps)
        if len(models) >= 2:
            compare(item, result, heatmaps, (keys, flip, method, target), key)
    waiting.done()


st.title("Analyze")
st.caption(PRIVACY)
limit = limits()
if public_mode():
    st.caption(f"⚖️ **Public demo limits:** {limit.describe()}")
selection = pickers.current()
if not selection.names:
    st.warning("No emotion model is registered, so faces are found but not read. " + HOW_TO_GET_MODELS)
elif selection.b is None or selection.a == selection.b:
    st.info("Only one model is picked: pick a different model B in the sidebar to compare two.")

keys, problems = resources.usable_models(selection.keys)
for problem in problems:
    st.warning(f"{problem}. It is left out of the analysis.", icon=":material/error:")

inputs = image_inputs("analyze")
method_column, class_column, flip_column = st.columns(3, vertical_alignment="bottom")
method = method_column.selectbox("Grad-CAM method", list(CAM_METHODS), key="cam_method")
OWN_PREDICTION = "each model's own prediction"
explained = class_column.selectbox("Explain which class", [OWN_PREDICTION, *EMOTIONS], key="cam_class")
target = None if explained == OWN_PREDICTION else EMOTIONS.index(explained)
flip = flip_column.toggle(
    "Mirror averaging", key="flip_tta", help="Average each prediction with the mirrored face's."
)

st.caption(
    '"% confident" is each model\'s calibrated probability (temperature scaling on FER2013 val, '
    "see the Models page): honest on FER2013-like faces, optimistic on unusual photos. "
    "Pick *A+B* as a model to average two models' probabilities."
)

if inputs[0].source == "sample":
    st.info(
        "Showing a built-in sample photo. Upload your own photos or use the camera above.",
        icon=":material/photo:",
    )
if len(inputs) > limit.max_images:
    st.info(f"Showing the first {limit.max_images} of {len(inputs)} images: the limit per upload here.")
for index, item in enumerate(inputs[: limit.max_images]):
    if len(inputs) > 1:
        st.subheader(item.name, divider="gray")
    show(item, index, keys, method, target, flip)
