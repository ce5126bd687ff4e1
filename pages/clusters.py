"""Clusters: the seed paper's method on one face, showing which region each model depends on."""

from __future__ import annotations

import streamlit as st

from core.explain.clusters import ALPHA, DEFAULT_CLUSTERS, LAMBDA
from core.explain.regions import colour_regions, region_label
from core.explain.saliency import CAM_METHODS, overlay_on_crop
from core.faces.images import ImageError
from core.pipeline import annotate
from core.serving.budget import OverBudget
from ui import pickers, resources
from ui.charts import region_removal_chart
from ui.display import EMOJI, HOW_TO_GET_MODELS, NO_FACE_TIPS, enlarge
from ui.inputs import image_inputs

st.title("Clusters")
st.caption(
    "The method of Qiu, *Leaving Some Facial Features Behind* (arXiv 2411.00824): every pixel "
    "becomes a point (λ·x, λ·y, α·attention), k-means splits the face into regions, and the "
    "cluster-masked model is trained with one region blacked out. Here you see the regions of one "
    "face and what each model predicts when a region is removed: a large drop means the model "
    "depends on that region."
)
selection = pickers.current()
if not selection.names:
    st.warning("No emotion model is registered, so there is no attention to cluster. " + HOW_TO_GET_MODELS)
    st.stop()

keys, problems = resources.usable_models(selection.keys)
for problem in problems:
    st.warning(f"{problem}. It is left out.", icon=":material/error:")
if not keys:
    st.stop()

item = image_inputs("clusters", multiple=False)[0]
if item.source == "sample":
    st.info(
        "Showing a built-in sample photo. Upload your own photo or use the camera above.",
        icon=":material/photo:",
    )
waiting = resources.WaitNotice(st.empty())
try:
    with st.spinner("Finding faces…"):
        found = resources.analysis(item.data, (), False, waiting)
except ImageError as err:
    waiting.done()
    st.warning(
        f"Could not read **{item.name}**: {err}. Try a JPEG or PNG photo.", icon=":material/broken_image:"
    )
    st.stop()
if not found.faces:
    waiting.done()
    tips = "\n".join(f"- {tip}" for tip in NO_FACE_TIPS)
    st.info(f"No face found in **{item.name}**. A few tips:\n{tips}", icon=":material/sentiment_neutral:")
    st.stop()

attention_names = [name for name, _ in keys]
controls, picture = st.columns([2, 1])
with controls:
    number = 0
    if len(found.faces) > 1:
        number = st.selectbox(
            "Face", range(len(found.faces)), format_func=lambda i: f"Face {i + 1}", key="clusters_face"
        )
    n_column, lam_column, alpha_column = st.columns(3)
    n = n_column.slider("Regions (n)", 1, 6, DEFAULT_CLUSTERS, key="clusters_n")
    lam = lam_column.slider("Position weight λ", 0.0, 5.0, LAMBDA, 0.1, key="clusters_lambda")
    alpha = alpha_column.slider("Attention weight α", 0.0, 5.0, ALPHA, 0.1, key="clusters_alpha")
    model_column, method_column = st.columns(2)
    attention_name = model_column.selectbox(
        "Attention from",
        attention_names,
        key="clusters_attention",
        help="The paper uses the baseline's attention.",
    )
    method = method_column.selectbox("Grad-CAM method", list(CAM_METHODS), key="clusters_method")
picture.image(annotate(found), caption=item.name, width="stretch")

crop = found.faces[number].crop
attention_key = next(key for key in keys if key[0] == attention_name)
try:
    with st.spinner("Clustering attention and reading every masked face…"):
        study = resources.region_study(crop, attention_key, keys, n, lam, alpha, method, on_wait=waiting)
except OverBudget as err:
    waiting.done()
    st.warning(str(err), icon=":material/block:")
    st.stop()
waiting.done()

columns = st.columns(3)
columns[0].image(enlarge(crop), caption=f"Face {number + 1}", width="stretch")
columns[1].image(
    enlarge(overlay_on_crop(crop, study.attention)),
    caption=f"Attention ({method}, {attention_name})",
    width="stretch",
)
columns[2].image(
    enlarge(colour_regions(crop, study.cluster_map), smooth=False),
    caption=f"{n} regions, numbered by attention",
    width="stretch",
)

labels = ["whole face", *(f"without {region_label(k)}" for k in range(study.n_regions))]
st.plotly_chart(region_removal_chart(study.probabilities, labels), key="clusters_chart")

st.subheader("Each region removed")
models = list(study.probabilities)
for start in range(0, study.n_regions, 3):
    row = st.columns(3)
    for column, region in zip(row, range(start, min(start + 3, study.n_regions)), strict=False):
        with column.container(border=True):
            st.image(
                enlarge(study.masked[region]),
                caption=f"without {region_label(region)}: {study.region_share(region):.0%} of the face",
                width="stretch",
            )
            for name in models:
                emotion, confidence = study.top(name, region + 1)
                before = study.top(name)[0]
                change = f" (was {before})" if study.changed(name, region) else " (unchanged)"
                st.markdown(f"**{name}**: {EMOJI[emotion]} {emotion} {confidence:.0%}{change}")
