"""What the Train page shows of jobs: a table and plotly curves (pure functions, no streamlit)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.jobs.store import Job

LOSS_SERIES = (("train_loss", "train loss"), ("val_loss", "val loss"))
SCORE_SERIES = (("val_accuracy", "val accuracy"), ("val_macro_f1", "val macro-F1"))


def training_curves(rows: Sequence[dict[str, Any]], title: str | None = None) -> go.Figure:
    """Loss (left) and validation accuracy / macro-F1 (right) against epoch."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"))
    epochs = [row["epoch"] for row in rows]
    for column, series in ((1, LOSS_SERIES), (2, SCORE_SERIES)):
        for key, label in series:
            figure.add_trace(
                go.Scatter(x=epochs, y=[row.get(key) for row in rows], name=label, mode="lines+markers"),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text="epoch", row=1, col=column, rangemode="tozero")
    figure.update_yaxes(range=[0, 1], row=1, col=2)
    if not rows:
        figure.add_annotation(
            text="no finished epoch yet", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False
        )
    figure.update_layout(
        title=title, height=340, margin={"l": 40, "r": 20, "t": 60, "b": 40}, legend={"orientation": "h"}
    )
    return figure


def job_table(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """One row per job for a table: id, name, status, progress (0..1), epochs, parameters, times."""
    return [
        {
            "id": job.id,
            "model": job.name,
            "status": "cancelling" if job.cancel_requested and job.status == "running" else job.status,
            "progress": job.progress,
            "epochs": f"{job.epochs_done}/{job.epochs}",
            "architecture": job.params.get("architecture"),
            "scheme": job.params.get("scheme"),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at)),
            "error": job.error or "",
        }
        for job in jobs
    ]
