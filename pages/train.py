"""Train: queue a training job, watch its curves and log, cancel or resume it (logic in core/jobs)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.jobs import (
    Job,
    JobError,
    check_settings,
    data_roots,
    dataset_choices,
    ensure_worker,
    get_runner,
    training_enabled,
)
from core.jobs.settings import training_off_reason
from core.jobs.store import job_table
from core.models.architectures import architectures
from core.models.registry import list_models
from core.training.config import INPUT_SIZES, TrainConfig, parse_arch_args
from ui.charts import training_curves

st.title("Train")
try:
    check_settings()
except JobError as err:
    st.error(f"Training cannot run: {err}. Fix the setting and restart the app.", icon=":material/settings:")
    st.stop()
if not training_enabled():
    st.info(
        f"Training is turned off on this deployment ({training_off_reason()}). "
        "Run the studio yourself to train models: see docs/training.md.",
        icon=":material/block:",
    )
    st.stop()

try:
    runner = get_runner()
    ensure_worker(when_queued=True)  # jobs left queued by an earlier app run start again
    runner.list_jobs()  # reads every job row once: a damaged database shows here
except JobError as err:  # e.g. a damaged job database: this page says so, the others work
    st.error(f"The job system cannot be used: {err}", icon=":material/error:")
    st.stop()


def new_job_form() -> None:
    """The parameters of a new job; submitting queues it and returns at once."""
    datasets = dataset_choices()
    models = [card["name"] for card in list_models()]
    with st.form("new_job"):
        left, middle, right = st.columns(3)
        arch_names = architectures()
        architecture = left.selectbox("Architecture", arch_names, index=arch_names.index("vgg"))
        scheme = middle.radio("Scheme", ["baseline", "masked"], horizontal=True)
        data = right.selectbox(
            "Dataset", datasets, format_func=lambda p: f"{p.name}  ({p.parent})", disabled=not datasets
        )
        epochs = left.number_input("Epochs", 1, 500, 30)
        batch_size = middle.number_input("Batch size", 1, 1024, 128)
        lr = right.number_input("Learning rate", 1e-5, 1.0, 0.05, format="%.4f")
        clusters = left.number_input("Clusters (masked)", 1, 8, 3)
        attention = middle.selectbox(
            "Attention model (masked)",
            models,
            index=None,
            placeholder="a trained baseline",
            help="The masked scheme removes k-means clusters of this baseline's Grad-CAM attention.",
        )
        name = right.text_input("Model name", placeholder="default: jobID-ARCH-SCHEME")
        with st.expander("Advanced"):
            arch_args = st.text_input("Architecture arguments (JSON)", "{}", help='e.g. {"widths": [32, 64]}')
            input_size = st.number_input("Input size", *INPUT_SIZES, 40)
            init_weights = st.selectbox(
                "Start from (fine-tune)",
                models,
                index=None,
                placeholder="random weights",
                help="Train further from this model's weights; its architecture must be the one chosen above.",
            )
            corrupt_probability = st.number_input(
                "Share of faces damaged like real photos",
                0.0,
                1.0,
                0.0,
                step=0.1,
                help="Rotation, blur, noise, JPEG, low light, low resolution or crop jitter (core.data.corruptions).",
            )
        submitted = st.form_submit_button(
            "Start training", icon=":material/play_arrow:", disabled=not datasets
        )
    if not datasets:
        st.warning("No dataset in the data roots: " + ", ".join(str(r) for r in data_roots()))
    if submitted:
        try:  # building the TrainConfig checks every setting (core.training.config.check_settings)
            config = TrainConfig(
                data=str(data),
                architecture=architecture,
                arch_args=parse_arch_args(arch_args),
                scheme=scheme,
                epochs=int(epochs),
                batch_size=int(batch_size),
                lr=float(lr),
                clusters=int(clusters),
                attention_model=attention if scheme == "masked" else None,
                input_size=int(input_size),
                init_weights=init_weights,
                corrupt_probability=float(corrupt_probability),
            )
            job = runner.submit(config, name.strip() or None)
        except (JobError, ValueError) as err:
            st.error(str(err))
        else:
            st.success(f"Job {job.id} queued: it will register the model **{job.name}**.")


def jobs_panel(refreshing: bool) -> None:
    """The jobs table, and the chosen job's curves, log and buttons; re-run every 2 s while jobs run."""
    jobs = runner.list_jobs()
    if refreshing != any(job.active for job in jobs):
        st.rerun()  # a job started or the last one ended: a full rerun turns the refresh on or off
    if not jobs:
        st.caption("No training jobs yet.")
        return
    st.dataframe(
        job_table(jobs),
        hide_index=True,
        column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)},
    )
    by_id = {job.id: job for job in jobs}
    chosen = st.selectbox(
        "Job", list(by_id), format_func=lambda i: f"{i}: {by_id[i].name} ({by_id[i].status})"
    )
    job = by_id[chosen]
    st.markdown(f"**{job.name}** is {job.status}, epoch {job.epochs_done} of {job.epochs}.")
    if job.error:
        st.error(job.error)
    if "train_refused" in st.session_state:
        st.error(st.session_state.pop("train_refused"))
    if job.active:
        st.button(
            "Cancel",
            icon=":material/stop:",
            disabled=job.cancel_requested,
            on_click=act,
            args=(runner.cancel, job.id),
        )
    if job.resumable:
        st.button(
            "Resume from last checkpoint",
            icon=":material/replay:",
            on_click=act,
            args=(runner.resume, job.id),
        )
    st.plotly_chart(training_curves(runner.metrics(job.id)), width="stretch")
    st.code(runner.log(job.id) or "(no log yet)", language=None)


def act(action: Callable[[int], Job], job_id: int) -> None:
    """Cancel or resume (a button callback); a refusal (the job changed meanwhile) is shown, not raised."""
    try:
        action(job_id)
    except JobError as err:
        st.session_state["train_refused"] = str(err)


new_job_form()
st.subheader("Jobs")
running = any(job.active for job in runner.list_jobs())
st.fragment(run_every="2s" if running else None)(jobs_panel)(running)
