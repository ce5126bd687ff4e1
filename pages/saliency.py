"""Saliency: where model A and model B look on FER2013's faces, per emotion, from the stored study.

The study (core.evaluation.saliency_study) is computed from a terminal, or here when the app is not
public, and stored beside the model cards; this page only reads it.
"""

from __future__ import annotations

import time

import streamlit as st

from core.evaluation.saliency_store import SaliencyStudy, StudyError
from core.evaluation.saliency_study import DEFAULT_LIMIT
from core.serving.public import public_mode
from ui import pickers, resources
from ui.charts import deletion_chart, mean_maps_figure, part_share_ci_chart, sanity_chart
from ui.display import (
    HOW_TO_GET_MODELS,
    STUDY_SUBSETS,
    faithfulness_rows,
    layer_rows,
    part_difference_rows,
    sanity_sentence,
    study_command,
    study_counts,
    study_curves,
    study_mean_maps,
    study_part_rows,
)


@st.fragment(run_every=5)
def watch(a: str, b: str) -> None:
    """A study running in its own process: how far it is; the page reloads when it is stored."""
    run = resources.study_runs().get((a, b))
    if run is None:
        return
    code = run.process.poll()
    if code is None:
        st.info(
            f"Computing the study of **{a}** and **{b}** ({time.time() - run.started:.0f} s so far). "
            "This page shows it when it is stored.",
            icon=":material/hourglass_top:",
        )
        st.code(run.log_tail() or "starting…", language=None)
    elif code == 0:
        resources.study_runs().pop((a, b), None)
        st.rerun()
    else:
        st.error(f"The study stopped with exit code {code}. The end of its log ({run.log}):")
        st.code(run.log_tail(12), language=None)


def no_study(a: str, b: str) -> None:
    """Say how to compute the study: the command, and in a private app a button that runs it."""
    command = study_command(a, b)
    st.info(
        f"No saliency study of **{a}** (A) and **{b}** (B) is stored yet. It runs both models over "
        f"{DEFAULT_LIMIT} FER2013 val faces (several minutes on a CPU) and is stored beside model A's card. "
        f"From a terminal:\n\n```bash\n{command}\n```",
        icon=":material/info:",
    )
    if public_mode():
        st.caption("This public demo does not compute studies: run the command on your own copy.")
        return
    running = resources.study_runs().get((a, b))
    idle = running is None or running.process.poll() is not None
    if idle and st.button("Compute the study now", icon=":material/play_arrow:", key="start_study"):
        running = resources.start_study(a, b)
    if running is not None:
        watch(a, b)  # polls every 5 s, only while there is a run to watch


def figure_5(study: SaliencyStudy, names: list[str]) -> None:
    """Mean map per emotion for A, B and B − A, over all faces or the correctly classified ones."""
    st.subheader("Where each model looks, per emotion", divider="gray")
    subset = st.segmented_control(
        "Faces",
        list(STUDY_SUBSETS),
        format_func=STUDY_SUBSETS.get,
        default="all",
        required=True,
        key="study_subset",
    )
    maps, difference = study_mean_maps(study.maps, names, subset)
    st.plotly_chart(
        mean_maps_figure(maps, difference, study_counts(study.summary, subset)),
        width="stretch",
        key=f"figure-5-{subset}",
        config={"displayModeBar": False},
    )
    faces = (
        "each row averages the faces its model classified correctly (A/B in the titles), B − A the faces both did"
        if subset == "correct"
        else "every face of each emotion (the count in the titles)"
    )
    st.caption(
        f"The paper's Figure 5 for these two models: the mean Grad-CAM map of {faces}, each face explained for "
        "its true class. A and B share one colour scale (0 to 1); B − A is red where B looks more, blue where A "
        "does, white where they agree."
    )


st.title("Saliency")
st.caption(
    "Where model A and model B look on FER2013's validation faces, emotion by emotion; whether that "
    "is what the paper says; and whether the maps can be trusted (faithfulness, a sanity check)."
)
selection = pickers.current()
if not selection.names:
    st.warning("No emotion model is registered. " + HOW_TO_GET_MODELS)
    st.stop()
if selection.a is None or selection.b is None or selection.a == selection.b:
    st.info("Pick two different models as A and B in the sidebar: this page compares two.")
    st.stop()
a, b = selection.a, selection.b
try:
    study = resources.saliency_study(a, b)
except StudyError as err:
    st.warning(
        f"The stored study of {a} and {b} cannot be used: {err}. Compute it again with "
        f"`{study_command(a, b)}`.",
        icon=":material/error:",
    )
    st.stop()
if study is None:
    no_study(a, b)
    st.stop()

summary = study.summary
names = list(summary["models"])
accuracy = summary.get("accuracy", {})
st.caption(
    f"{summary['faces']} faces of {summary.get('data', 'FER2013')} ({summary.get('split', 'val')}), "
    f"{summary['method']} at layer {summary['layer']}; facial parts from MTCNN's landmarks on "
    f"{summary.get('landmarks_found', 0)} faces, typical positions on the rest. Accuracy on these faces: "
    + ", ".join(f"{name} {accuracy[name]:.1%}" for name in names if name in accuracy)
    + f". Stored {summary.get('created', '')} by `{summary.get('command') or study_command(a, b)}`."
)
st.info(f"**The paper's claim, tested:** {summary['claim']['sentence']}", icon=":material/science:")

figure_5(study, names)

st.subheader("Share of each map on each facial part", divider="gray")
st.plotly_chart(
    part_share_ci_chart(study_part_rows(summary)),
    width="stretch",
    key="study-parts",
    config={"displayModeBar": False},
)
st.caption(
    "Mean share of the map on each part per emotion, with its 95 % bootstrap interval; “all” is every face."
)
with st.expander("B − A per part, in points (95 % interval)"):
    st.dataframe(part_difference_rows(summary), hide_index=True)

st.subheader("Are the maps faithful?", divider="gray")
curves, random = study_curves(summary)
st.dataframe(faithfulness_rows(summary), hide_index=True)
chart, notes = st.columns([3, 2])
chart.plotly_chart(
    deletion_chart(curves, random, "Mean deletion curves"), width="stretch", key="study-deletion"
)
with notes:
    st.caption(
        "Each face's most attended pixels are blurred away first: a faithful map makes the probability of the "
        "true class fall faster than random maps do, so its area under the curve is smaller."
    )
    with st.expander(f"Per Grad-CAM layer ({summary['layers']['faces']} faces)"):
        st.dataframe(layer_rows(summary), hide_index=True)

st.subheader("Sanity check: do the maps depend on the learned weights?", divider="gray")
sanity = summary["sanity"]["rows"]
st.plotly_chart(sanity_chart(sanity), width="stretch", key="study-sanity")
for name, rows in sanity.items():
    st.markdown(f"- {sanity_sentence(name, rows)}")
st.caption(
    f"Adebayo et al. (2018): the weights are reset layer by layer from the top ({summary['sanity']['faces']} "
    "faces) and each time the maps are compared with the trained model's (Spearman, 95 % interval)."
)
