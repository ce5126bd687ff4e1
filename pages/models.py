"""Models & evaluation: every model's card, its metrics, and A-versus-B comparisons per class."""

from __future__ import annotations

import time

import streamlit as st

from core.data.datasets import DatasetError
from core.evaluation.metrics import OCCLUSIONS
from core.evaluation.report import paired_sentence
from core.jobs import JobError, check_data_path, data_roots, dataset_choices
from core.models.registry import broken_models
from core.paths import DATA_DEFAULT
from core.serving import budget
from core.serving.budget import OverBudget
from core.serving.gate import GateRefused, Stopped
from core.serving.public import public_mode
from ui import pickers, resources
from ui.charts import (
    class_difference_chart,
    class_distribution_chart,
    confusion_heatmap,
    corruption_chart,
    occlusion_chart,
    reliability_chart,
    scenes_width_chart,
)
from ui.display import (
    HOW_TO_GET_MODELS,
    calibration_rows,
    evaluation_keys,
    metrics_rows,
    model_summary,
    per_class_rows,
)

SPLITS = {"val": "val", "test": "test", "train": "train", "whole folder": None}

st.title("Models & evaluation")
selection = pickers.current()
if broken := broken_models():
    st.warning(
        "Left out because their model card is broken (fix or remove the files):\n"
        + "\n".join(f"- {model.reason}" for model in broken),
        icon=":material/error:",
    )


def dataset_input() -> str | None:
    """The dataset to evaluate on: a typed path, or in public mode only a listed dataset."""
    if public_mode():
        choices = dataset_choices()
        chosen = st.selectbox(
            "Dataset",
            choices,
            format_func=lambda p: p.name,
            key="eval_dataset",
            help="The datasets this deployment offers (public demo: no other path can be read).",
        )
        return None if chosen is None else str(chosen)
    return st.text_input(
        "Dataset folder or fer2013.csv",
        DATA_DEFAULT,
        key="eval_data",
        help="A FER2013-style folder (split/emotion/*.jpg), a folder emotion/*.jpg, or Kaggle's "
        "fer2013.csv, inside the data roots: " + ", ".join(str(root) for root in data_roots()),
    )


def evaluate_form() -> None:
    """Evaluate a registered model on a dataset in the data roots, with a progress bar and Stop.

    In public mode only on val, on a fixed sample of its faces and without the occlusion test
    (core.serving.budget): larger work is refused with what to do instead.
    """
    public = public_mode()
    with st.expander("Evaluate a model on a dataset", icon=":material/play_circle:"):
        if public:
            st.caption(
                f"Public demo: evaluations run on val, on {budget.PUBLIC_EVALUATION_FACES:,} of its faces, "
                "without the occlusion test, so that every visitor gets a turn. The cards' recorded "
                "evaluations are below; for the whole splits and the occlusion test, "
                f"{budget.ELSEWHERE}."
            )
        with st.form("evaluate"):
            name = st.selectbox(
                "Model", selection.names, index=selection.names.index(selection.a), key="eval_model"
            )
            data = dataset_input()
            split_column, occlusion_column = st.columns(2, vertical_alignment="bottom")
            splits = list(budget.PUBLIC_SPLITS) if public else list(SPLITS)
            split = split_column.selectbox("Split", splits, key="eval_split")
            occlusion = False
            if not public:
                occlusion = occlusion_column.checkbox("Occlusion test", True, key="eval_occlusion")
            submitted = st.form_submit_button("Evaluate", type="primary")
        if not submitted:
            return
        if not data:
            st.error("No dataset is available here: " + ", ".join(str(r) for r in data_roots()))
            return
        try:
            path = check_data_path(data)  # nothing outside the data roots is read, or even looked at
        except JobError as err:
            st.error(f"Could not evaluate {name}: {err}")
            return
        waiting = resources.WaitNotice(st.empty())
        bar = st.progress(0.0, text="starting")
        st.button("Stop", key="eval_stop", help="Stops the evaluation and frees your turn.")  # a click reruns
        try:
            result = resources.evaluation(
                selection.key_of(name),
                str(path),
                SPLITS[split],
                path.stat().st_mtime,
                occlusion,
                progress=lambda f, t: bar.progress(f, text=t),
                on_wait=waiting,
            )
        except OverBudget as err:
            waiting.done()
            bar.empty()
            st.warning(str(err), icon=":material/block:")
            return
        except (DatasetError, ValueError, OSError, GateRefused, Stopped) as err:
            waiting.done()
            bar.empty()
            st.error(f"Could not evaluate {name}: {err}")
            return
        waiting.done()
        bar.progress(1.0, text="done")
        label = f"{path.name}/{SPLITS[split]}" if SPLITS[split] else path.name
        if public:
            label += f" ({result['faces_evaluated']:,} faces)"
        st.session_state.setdefault("page_evaluations", {}).setdefault(name, {})[label] = result
        st.session_state["eval_key"] = label
        at = time.strftime("%H:%M:%S UTC", time.gmtime(result["evaluated_at"]))
        st.success(
            f"{name} on {label}: accuracy {result['accuracy']:.1%}, macro-F1 {result['macro_f1']:.1%} "
            f"(evaluated at {at})"
        )


if not selection.names:
    st.warning("No model is registered yet. " + HOW_TO_GET_MODELS)
else:
    st.subheader("Registered models")
    st.dataframe([model_summary(card) for card in selection.registered], hide_index=True)
    for card in selection.registered:
        with st.expander(f"Model card: {card['name']}"):
            st.json({k: v for k, v in card.items() if k != "evaluations"}, expanded=1)
    evaluate_form()

    session = st.session_state.get("page_evaluations", {})
    evaluations = {
        card["name"]: {**(card.get("evaluations") or {}), **session.get(card["name"], {})}
        for card in selection.cards
    }
    keys = evaluation_keys(evaluations)
    st.subheader("Evaluation")
    if not keys:
        st.info("No evaluation is recorded yet: evaluate a model on a dataset above.")
    else:
        if st.session_state.get("eval_key") not in keys:
            st.session_state["eval_key"] = keys[0]
        key = st.selectbox("Evaluated on", keys, key="eval_key")
        st.dataframe(metrics_rows(evaluations, key), hide_index=True)
        st.caption(
            "Accuracy and macro-F1 in percent; the interval is Wilson's 95 % interval for the accuracy."
        )
        pair = [name for name, _ in selection.keys if key in evaluations.get(name, {})]
        if not pair:
            st.info(f"Neither model A nor model B was evaluated on {key}; pick them in the sidebar.")
        columns = st.columns(max(len(pair), 1))
        for column, name in zip(columns, pair, strict=False):
            with column:
                st.markdown(f"**{name}**")
                st.dataframe(per_class_rows(evaluations[name][key]), hide_index=True)
                st.plotly_chart(
                    confusion_heatmap(evaluations[name][key]["confusion"], f"Confusion: {name}"),
                    key=f"confusion-{name}",
                )
        if len(pair) == 2:
            paired = paired_sentence(*(evaluations[name][key] for name in pair), *pair, key)
            if paired:
                st.caption(paired)
            metric = st.segmented_control(
                "Per-class metric", ["recall", "precision", "f1"], default="recall", key="diff_metric"
            )
            a, b = (evaluations[name][key]["per_class"] for name in pair)
            st.plotly_chart(
                class_difference_chart(a, b, pair[0], pair[1], metric or "recall"), key="difference"
            )
        occlusions = {
            name: evaluations[name][key]["occlusion"]
            for name in pair
            if "occlusion" in evaluations[name][key]
        }
        if occlusions:
            st.plotly_chart(occlusion_chart(occlusions), key="occlusion")
            bands = "; ".join(
                f"{region.replace('_', ' ')}: rows {top} to {bottom - 1}"
                for region, (top, bottom) in OCCLUSIONS.items()
            )
            st.caption(
                f"Rows of the 48x48 face blacked out ({bands}); the lower face is like a drawn-on mask."
            )
        removals = {
            name: evaluations[name][key]["region_removal"]
            for name in pair
            if "region_removal" in evaluations[name][key]
        }
        if removals:
            title = "Recall lost when an attention region is removed (points)"
            st.plotly_chart(occlusion_chart(removals, title), key="region_removal")
            sources = sorted({str(evaluations[name][key].get("region_removal_from")) for name in removals})
            st.caption(
                f"Regions: k-means (n=3) of {' and '.join(sources)}'s Grad-CAM for the true class, "
                "region 1 the most attended: the regions the cluster-masked training removes "
                "(`python -m core evaluate ... --record --regions-from MODEL`)."
            )

    robustness = {
        name: card["robustness"]
        for name, _ in selection.keys
        for card in selection.cards
        if card["name"] == name and "robustness" in card
    }
    st.subheader("Robustness: real-photo test")
    if not robustness:
        st.info(
            "No robustness test is recorded for models A and B: run `python -m core robustness --record`."
        )
    corrupted = {name: entry["corruptions"] for name, entry in robustness.items() if "corruptions" in entry}
    if corrupted:
        st.plotly_chart(corruption_chart(corrupted), key="corruptions")
        counts = sorted({entry["count"] for entry in corrupted.values()})
        st.caption(
            f"FER2013 val faces ({', '.join(map(str, counts))}) damaged like real photos at three "
            "severities (core/data/corruptions.py), in the style of ImageNet-C."
        )
    in_scenes = {name: entry["scenes"] for name, entry in robustness.items() if "scenes" in entry}
    if in_scenes:
        st.plotly_chart(scenes_width_chart(in_scenes), key="scenes")
        st.caption(
            "Faces in scenes: val faces composed into photos (tilted, scaled, lit, blurred, JPEG) and "
            "read end to end by the app's pipeline; a face the detector misses counts as wrong. "
            + "; ".join(
                f"{name}: {entry['accuracy']:.1%} of {entry['faces']} faces right, {entry['recall']:.1%} found"
                for name, entry in in_scenes.items()
            )
        )
    commands = sorted({entry.get("command", "") for entry in robustness.values()} - {""})
    if commands:
        st.caption("Recorded by " + "; ".join(f"`{c}`" for c in commands))

if selection.names:
    st.subheader("Confidence calibration")
    calibrated = {card["name"]: card["calibration"] for card in selection.cards if "calibration" in card}
    if not calibrated:
        st.info(
            "No model is calibrated yet: `python -m core calibrate --record` fits and stores a temperature."
        )
    else:
        st.dataframe(calibration_rows(calibrated), hide_index=True)
        shown = {name: calibrated[name] for name, _ in selection.keys if name in calibrated} or calibrated
        st.plotly_chart(
            reliability_chart(shown, "Reliability: share right against confidence"), key="reliability"
        )
        st.caption(
            "Each model's logits are divided by its temperature before the softmax (fitted on the split named, "
            'by negative log-likelihood), so the app\'s "% confident" is calibrated; predictions do not change. '
            "ECE: the face-weighted gap between confidence and share right over 15 equal-width bins. "
            "The cross-fitted ECE fits on one half and measures on the other, so it is out of sample."
        )

st.subheader("Data")
try:
    distribution = {
        f"FER2013 {split}": resources.class_counts(DATA_DEFAULT, split) for split in ("train", "val")
    }
except DatasetError as err:
    st.info(f"The class balance of FER2013 shows here when the dataset is at `{DATA_DEFAULT}` ({err}).")
else:
    st.plotly_chart(class_distribution_chart(distribution, "FER2013 images per class"), key="distribution")
    train = distribution["FER2013 train"]
    rarest, commonest = min(train, key=train.get), max(train, key=train.get)
    st.caption(
        f"FER2013 is imbalanced: {rarest} has {train[rarest]:,} training images, {commonest} {train[commonest]:,}."
    )
