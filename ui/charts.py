"""Plotly figures for the app: pure functions from results to figures, one chart each.

Models keep one colour everywhere: the first model given (model A) blue, the second
(model B) orange, so a chart reads the same on every page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.labels import EMOTIONS

MODEL_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#9D755D", "#E45756")
REGION_NAMES = {"eyes": "eyes covered", "lower_face": "lower face covered"}
_GAIN, _LOSS = "#2CA02C", "#D62728"
LOSS_SERIES = (("train_loss", "train loss"), ("val_loss", "val loss"))
SCORE_SERIES = (("val_accuracy", "val accuracy"), ("val_macro_f1", "val macro-F1"))


def model_colour(index: int) -> str:
    """The colour of the index-th model (A = 0, B = 1)."""
    return MODEL_COLOURS[index % len(MODEL_COLOURS)]


def _layout(figure: go.Figure, title: str | None, height: int, **extra: Any) -> go.Figure:
    """Shared look: title top left, legend in a row under the plot (clear of the toolbar)."""
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 50 if title else 30, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
        **extra,
    )
    return figure


def probability_chart(probabilities: Mapping[str, np.ndarray], title: str | None = None) -> go.Figure:
    """Horizontal grouped bars of per-class probabilities, one trace per model, classes top to bottom."""
    figure = go.Figure()
    for index, (name, probs) in enumerate(probabilities.items()):
        values = np.asarray(probs, dtype=float).reshape(-1)
        if values.shape != (len(EMOTIONS),):
            raise ValueError(f"{name}: expected {len(EMOTIONS)} probabilities, got {values.shape}")
        figure.add_bar(
            x=values,
            y=list(EMOTIONS),
            orientation="h",
            name=name,
            marker_color=model_colour(index),
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>",
        )
    return _layout(
        figure,
        title,
        120 + 28 * len(EMOTIONS) * max(len(probabilities), 1) // 2,
        barmode="group",
        bargap=0.25,
        xaxis={"range": [0, 1.12], "tickformat": ".0%", "title": None},
        yaxis={"autorange": "reversed"},
    )


def confusion_heatmap(
    confusion: Sequence[Sequence[int]], title: str | None = None, normalise: bool = True
) -> go.Figure:
    """A 7x7 heatmap, true class down and predicted class across; cells coloured by row share.

    Each cell's text is its count; with `normalise` the colour is the share of the true class.
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(EMOTIONS), len(EMOTIONS)):
        raise ValueError(f"confusion matrix must be {len(EMOTIONS)}x{len(EMOTIONS)}, got {counts.shape}")
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    else:
        values = counts
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(EMOTIONS),
            y=list(EMOTIONS),
            text=counts.astype(int).astype(str),
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalise else None,
            colorbar={"title": "share" if normalise else "count"},
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    return _layout(
        figure,
        title,
        380,
        xaxis={"title": "predicted", "side": "bottom"},
        yaxis={"title": "true", "autorange": "reversed"},
    )


def class_difference_chart(
    per_class_a: Mapping[str, Mapping[str, float]],
    per_class_b: Mapping[str, Mapping[str, float]],
    name_a: str,
    name_b: str,
    metric: str = "recall",
) -> go.Figure:
    """Per-class change of a metric from model A to model B, in percentage points (green = B better)."""
    difference = [100 * (per_class_b[e][metric] - per_class_a[e][metric]) for e in EMOTIONS]
    figure = go.Figure(
        go.Bar(
            x=list(EMOTIONS),
            y=difference,
            marker_color=[_GAIN if d >= 0 else _LOSS for d in difference],
            text=[f"{d:+.1f}" for d in difference],
            textposition="outside",
            hovertemplate="%{x}: %{y:+.1f} points<extra></extra>",
        )
    )
    return _layout(
        figure,
        f"{metric} of {name_b} minus {name_a} (points)",
        300,
        yaxis={"title": "points", "zeroline": True},
        showlegend=False,
    )


def class_distribution_chart(counts: Mapping[str, Mapping[str, int]], title: str | None = None) -> go.Figure:
    """Bars of images per class, one trace per split (e.g. {"train": {...}, "val": {...}})."""
    figure = go.Figure()
    for index, (split, per_class) in enumerate(counts.items()):
        values = [int(per_class.get(e, 0)) for e in EMOTIONS]
        total = sum(values) or 1
        figure.add_bar(
            x=list(EMOTIONS),
            y=values,
            name=split,
            marker_color=model_colour(index + 2),
            customdata=[v / total for v in values],
            hovertemplate="%{x}: %{y} images (%{customdata:.1%})<extra>" + split + "</extra>",
        )
    return _layout(figure, title, 300, barmode="group", yaxis={"title": "images"})


def occlusion_chart(
    reports: Mapping[str, Mapping[str, Any]],
    title: str = "Recall lost when a region is covered (points)",
) -> go.Figure:
    """Recall lost per class when each region is covered, per model (points).

    `reports` maps a model name to the "occlusion" (or "region_removal") part of an evaluation
    (core.evaluation.metrics): {"clean": ..., region: {"drop": {class: drop}}}.
    """
    figure = go.Figure()
    classes = [*EMOTIONS, "all"]
    patterns = ("", "/", "x", ".", "+")
    for index, (name, report) in enumerate(reports.items()):
        regions = [r for r in report if r != "clean"]
        for region_number, region in enumerate(regions):
            drops = [100 * float(report[region]["drop"].get(c, float("nan"))) for c in classes]
            label = REGION_NAMES.get(region, region.replace("_", " ") + " removed")
            figure.add_bar(
                x=classes,
                y=drops,
                name=f"{name}: {label}",
                marker_color=model_colour(index),
                marker_pattern_shape=patterns[region_number % len(patterns)],
                hovertemplate="%{x}: %{y:.1f} points lost<extra>" + name + "</extra>",
            )
    return _layout(figure, title, 340, barmode="group", yaxis={"title": "points lost"})


def region_removal_chart(
    probabilities: Mapping[str, np.ndarray], region_labels: Sequence[str] | None = None
) -> go.Figure:
    """Each model's confidence in its own original prediction as each region is removed.

    `probabilities` maps a model name to (1 + n, 7): row 0 the whole face, row k the face
    with region k removed. A large drop means the model depends on that region.
    """
    figure = go.Figure()
    for index, (name, probs) in enumerate(probabilities.items()):
        probs = np.asarray(probs, dtype=float)
        original = int(probs[0].argmax())
        labels = (
            list(region_labels)
            if region_labels
            else ["whole face", *(f"region {k + 1}" for k in range(len(probs) - 1))]
        )
        if len(labels) != len(probs):
            raise ValueError(f"{len(labels)} labels for {len(probs)} rows of probabilities")
        figure.add_bar(
            x=labels,
            y=probs[:, original],
            name=f"{name}: P({EMOTIONS[original]})",
            marker_color=model_colour(index),
            text=[f"{v:.0%}" for v in probs[:, original]],
            textposition="outside",
        )
    return _layout(
        figure,
        "Confidence in the original prediction with each region removed",
        300,
        barmode="group",
        yaxis={"range": [0, 1.15], "tickformat": ".0%"},
    )


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
    return _layout(figure, title, 340)


EMOTION_COLOURS = dict(
    zip(EMOTIONS, ("#D62728", "#8C564B", "#9467BD", "#2CA02C", "#1F77B4", "#FF7F0E", "#7F7F7F"), strict=True)
)


def emotion_timeline(
    times: Sequence[float],
    raw: Mapping[str, np.ndarray],
    smoothed: Mapping[str, np.ndarray],
    title: str | None = None,
) -> go.Figure:
    """One row per model: each emotion's smoothed probability over time as a line, the raw ones as
    faint dots; raw and smoothed are (frames, 7) arrays per model. One colour per emotion."""
    names = list(smoothed)
    figure = make_subplots(rows=max(len(names), 1), cols=1, shared_xaxes=True, subplot_titles=names)
    for row, name in enumerate(names, start=1):
        for index, emotion in enumerate(EMOTIONS):
            colour = EMOTION_COLOURS[emotion]
            figure.add_scatter(
                x=list(times),
                y=np.asarray(raw[name])[:, index],
                mode="markers",
                marker={"color": colour, "size": 3, "opacity": 0.25},
                name=f"{emotion} (raw)",
                legendgroup=emotion,
                showlegend=False,
                hovertemplate=f"{emotion} raw: %{{y:.0%}} at %{{x:.2f}} s<extra>{name}</extra>",
                row=row,
                col=1,
            )
            figure.add_scatter(
                x=list(times),
                y=np.asarray(smoothed[name])[:, index],
                mode="lines",
                line={"color": colour, "width": 2},
                name=emotion,
                legendgroup=emotion,
                showlegend=row == 1,
                hovertemplate=f"{emotion}: %{{y:.0%}} at %{{x:.2f}} s<extra>{name}</extra>",
                row=row,
                col=1,
            )
        figure.update_yaxes(range=[0, 1], tickformat=".0%", row=row, col=1)
    figure.update_xaxes(title_text="seconds", row=max(len(names), 1), col=1)
    return _layout(figure, title, 220 + 200 * len(names))


def reliability_chart(calibrations: Mapping[str, Mapping[str, Any]], title: str | None = None) -> go.Figure:
    """Reliability diagram from cards' "calibration" entries: accuracy against mean confidence per
    confidence bin, before (dotted) and after (solid) temperature scaling, one colour per model;
    points on the diagonal are honest confidence. Empty bins are left out."""
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="honest", line={"color": "#999999", "dash": "dash", "width": 1}
    )
    for index, (name, calibration) in enumerate(calibrations.items()):
        for stage, dash in (("before", "dot"), ("after", "solid")):
            table = calibration[f"reliability_{stage}"]
            kept = [
                (c, a, n)
                for c, a, n in zip(table["confidence"], table["accuracy"], table["count"], strict=True)
                if n
            ]
            ece = calibration.get(f"ece_{stage}")
            label = f"{name} {stage}" + (f" (ECE {ece:.1%})" if ece is not None else "")
            figure.add_scatter(
                x=[c for c, _, _ in kept],
                y=[a for _, a, _ in kept],
                customdata=[n for _, _, n in kept],
                mode="lines+markers",
                name=label,
                line={"color": model_colour(index), "dash": dash},
                hovertemplate="confidence %{x:.1%}: right %{y:.1%} of %{customdata} faces<extra>"
                + label
                + "</extra>",
            )
    return _layout(
        figure,
        title,
        380,
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "confidence (top probability)"},
        yaxis={"range": [0, 1], "tickformat": ".0%", "title": "share right"},
    )


def corruption_chart(results: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Accuracy under each corruption by severity (0 = clean), one small chart per corruption.

    `results` maps a model name to its recorded corruption suite (core.evaluation.robustness.corruption_suite):
    {"clean": accuracy, "accuracy": {corruption: [severity 1, 2, ...]}, "mean": accuracy}.
    """
    corruptions = list(dict.fromkeys(c for result in results.values() for c in result["accuracy"]))
    panels = [*corruptions, "mean of all"]
    columns = 4
    rows = -(-len(panels) // columns)
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.replace("_", " ") for p in panels],
        shared_yaxes=True,
        vertical_spacing=0.16,
    )
    for index, (name, result) in enumerate(results.items()):
        for number, panel in enumerate(panels):
            if panel == "mean of all":
                values = [result["clean"], result["mean"]]
                severities: list[Any] = ["clean", "all"]
            else:
                values = [result["clean"], *result["accuracy"].get(panel, [])]
                severities = ["clean", *range(1, len(values))]
            figure.add_scatter(
                x=[str(s) for s in severities],
                y=values,
                mode="lines+markers",
                name=name,
                legendgroup=name,
                showlegend=number == 0,
                line_color=model_colour(index),
                hovertemplate="severity %{x}: %{y:.1%}<extra>" + name + " · " + panel + "</extra>",
                row=number // columns + 1,
                col=number % columns + 1,
            )
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _layout(figure, "Accuracy under each corruption, by severity", 220 * rows + 80)


def scenes_width_chart(results: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Faces in scenes by face width: each model's end-to-end accuracy (bars; misses count wrong)
    and the detector's recall (line).

    `results` maps a model name to its recorded scenes score (core.evaluation.robustness.model_scenes):
    {"bins": [{"low", "high", "faces", "accuracy", "recall", "found_accuracy"}, ...], ...}.
    """
    figure = go.Figure()
    first: Mapping[str, Any] | None = None
    for index, (name, result) in enumerate(results.items()):
        first = first or result
        bins = result["bins"]
        figure.add_bar(
            x=[f"{b['low']}–{b['high']} px" for b in bins],
            y=[b["accuracy"] for b in bins],
            name=f"{name}: end-to-end accuracy",
            marker_color=model_colour(index),
            customdata=[[b["faces"], b["found_accuracy"]] for b in bins],
            hovertemplate="%{x}: %{y:.1%} of %{customdata[0]} faces"
            " (found faces: %{customdata[1]:.1%})<extra>" + name + "</extra>",
        )
    if first is not None:
        bins = first["bins"]
        figure.add_scatter(
            x=[f"{b['low']}–{b['high']} px" for b in bins],
            y=[b["recall"] for b in bins],
            mode="lines+markers",
            name=f"faces found (min face {first.get('min_face_size', '?')} px)",
            line={"color": "#555555", "dash": "dot"},
            hovertemplate="%{x}: %{y:.1%} found<extra>detector</extra>",
        )
    return _layout(
        figure,
        "Faces in scenes: accuracy by face width",
        340,
        barmode="group",
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"title": "face width in the photo"},
    )


# Saliency maps: one colour scale for every map (0 to 1, grad-cam's jet, as the overlays), and a
# diverging one for B minus A (red where B looks more, blue where A looks more, white at zero).
ATTENTION_SCALE = "Jet"
DIFFERENCE_SCALE = "RdBu_r"
MAP_PANEL_PX = 300


class CurveLike(Protocol):
    """What a deletion curve (core.explain.compare.DeletionCurve) offers a chart."""

    fractions: Any
    probabilities: Any
    auc: float


def _check_maps(crop: np.ndarray | None, maps: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    arrays = [np.asarray(m, dtype=float) for m in maps.values()]
    shapes = {a.shape for a in arrays} | ({np.asarray(crop).shape} if crop is not None else set())
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"the crop and maps must be 2-D and of one shape, got {sorted(shapes)}")
    return arrays


def _face_panel(
    figure: go.Figure,
    crop: np.ndarray | None,
    values: np.ndarray,
    where: dict[str, int],
    opacity: float,
    axis: str,
    label: str,
) -> None:
    """A gray face crop (if any) with a map over it at `opacity`, coloured by `axis` (a coloraxis)."""
    if crop is not None:
        figure.add_trace(
            go.Heatmap(
                z=np.asarray(crop, dtype=np.uint8),  # sent as bytes: one per pixel
                colorscale="gray",
                zmin=0,
                zmax=255,
                showscale=False,
                hoverinfo="skip",
                zsmooth="best",
            ),
            **where,
        )
    figure.add_trace(
        go.Heatmap(
            z=np.asarray(values, dtype=np.float32),  # sent as 4 bytes per pixel, not 8
            coloraxis=axis,
            opacity=opacity if crop is not None else 1.0,
            zsmooth="best",
            name=label,
            hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra>" + label + "</extra>",
        ),
        **where,
    )


def _picture_axes(figure: go.Figure, panels: int) -> None:
    """Every panel square, top row of the map at the top, no ticks."""
    for number in range(1, panels + 1):
        suffix = "" if number == 1 else str(number)
        figure.update_layout(
            {
                f"xaxis{suffix}": {"visible": False, "constrain": "domain"},
                f"yaxis{suffix}": {
                    "visible": False,
                    "autorange": "reversed",
                    "scaleanchor": f"x{suffix}",
                    "constrain": "domain",
                },
            }
        )


def difference_limit(differences: Sequence[np.ndarray]) -> float:
    """The symmetric range of a diverging scale for B − A maps: their largest |value|, at least 0.05."""
    return max([float(np.abs(d).max()) for d in differences if np.size(d)] + [0.05])


def _colour_axes(
    limit: float, attention_x: float, difference_x: float, titles: bool = True
) -> dict[str, Any]:
    """coloraxis (attention, 0 to 1) and coloraxis2 (B − A, ±limit, white at 0)."""
    bar: dict[str, Any] = {"thickness": 12, "len": 0.9, "y": 0.5}

    def title(text: str) -> dict[str, Any]:
        return {"title": {"text": text, "side": "right"}} if titles else {}

    return {
        "coloraxis": {
            "colorscale": ATTENTION_SCALE,
            "cmin": 0,
            "cmax": 1,
            "colorbar": {**bar, **title("attention"), "x": attention_x},
        },
        "coloraxis2": {
            "colorscale": DIFFERENCE_SCALE,
            "cmin": -limit,
            "cmid": 0,
            "cmax": limit,
            "colorbar": {**bar, **title("B − A"), "x": difference_x},
        },
    }


def saliency_comparison_figure(
    crop: np.ndarray, maps: Mapping[str, np.ndarray], opacity: float = 0.5, title: str | None = None
) -> go.Figure:
    """Model A's and model B's maps (in that order) over the face crop on one colour scale (0 to 1),
    then B minus A on a diverging scale symmetric about 0 (white where both look alike; red where B
    looks more)."""
    if len(maps) != 2:
        raise ValueError(f"a comparison needs two maps, got {len(maps)}")
    first, second = _check_maps(crop, maps)
    names = list(maps)
    figure = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.02,
        subplot_titles=[f"A · {names[0]}", f"B · {names[1]}", "B − A"],
    )
    for column, (values, label) in enumerate(((first, names[0]), (second, names[1])), start=1):
        _face_panel(figure, crop, values, {"row": 1, "col": column}, opacity, "coloraxis", label)
    _face_panel(figure, crop, second - first, {"row": 1, "col": 3}, opacity, "coloraxis2", "B − A")
    _picture_axes(figure, 3)
    # Colour bars lie under the pictures, so the three pictures take the whole width.
    axes = _colour_axes(difference_limit([second - first]), 0.0, 0.0)
    under = {"orientation": "h", "thickness": 10, "y": -0.04, "yanchor": "top", "title": None}
    axes["coloraxis"]["colorbar"].update(under, x=0.0, xanchor="left", len=0.66)
    axes["coloraxis2"]["colorbar"].update(under, x=1.0, xanchor="right", len=0.32)
    figure = _layout(figure, title, MAP_PANEL_PX + 110, **axes)
    figure.update_layout(margin={"b": 50})
    return figure


def swipe_figure(
    crop: np.ndarray, maps: Mapping[str, np.ndarray], split: float, opacity: float = 0.5
) -> go.Figure:
    """One large picture: model A's map left of `split` (a share of the width, 0 to 1), model B's
    right of it, on the one colour scale, with a line where they meet. split 1 is A alone, 0 B alone."""
    if len(maps) != 2:
        raise ValueError(f"a swipe needs two maps, got {len(maps)}")
    if not 0.0 <= split <= 1.0:
        raise ValueError(f"split must be between 0 and 1, got {split}")
    first, second = _check_maps(crop, maps)
    names = list(maps)
    width = first.shape[1]
    edge = int(round(split * width))
    composed = np.concatenate([first[:, :edge], second[:, edge:]], axis=1)
    figure = go.Figure()
    _face_panel(figure, crop, composed, {}, opacity, "coloraxis", f"A · {names[0]} | B · {names[1]}")
    line_x = edge - 0.5
    if 0 < edge < width:
        figure.add_shape(
            type="line",
            x0=line_x,
            x1=line_x,
            y0=-0.5,
            y1=first.shape[0] - 0.5,
            line={"color": "white", "width": 3},
        )
    for text, x, anchor, shown in (
        (f"A · {names[0]}", -0.5, "left", edge > 0),
        (f"B · {names[1]}", width - 0.5, "right", edge < width),
    ):
        if shown:
            figure.add_annotation(
                text=text,
                x=x,
                y=-0.5,
                xanchor=anchor,
                yanchor="bottom",
                showarrow=False,
                font={"color": "white", "size": 14},
                bgcolor="rgba(0,0,0,0.55)",
            )
    _picture_axes(figure, 1)
    axes = _colour_axes(1.0, 1.0, 1.0)
    return _layout(figure, None, 460, coloraxis=axes["coloraxis"])


def part_share_chart(shares: Mapping[str, Mapping[str, float]], title: str | None = None) -> go.Figure:
    """Where each model looks, in numbers: the share of its map on each facial part (horizontal
    bars, one colour per model, parts top to bottom in the order given)."""
    figure = go.Figure()
    for index, (name, per_part) in enumerate(shares.items()):
        parts = list(per_part)
        values = [float(per_part[p]) for p in parts]
        figure.add_bar(
            x=values,
            y=parts,
            orientation="h",
            name=name,
            marker_color=model_colour(index),
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of the map<extra>" + name + "</extra>",
        )
    parts_count = max((len(p) for p in shares.values()), default=1)
    return _layout(
        figure,
        title,
        110 + 26 * parts_count * max(len(shares), 1),
        barmode="group",
        bargap=0.25,
        xaxis={"tickformat": ".0%", "rangemode": "tozero", "title": None},
        yaxis={"autorange": "reversed"},
    )


def deletion_chart(
    curves: Mapping[str, CurveLike],
    random: Mapping[str, CurveLike] | None = None,
    title: str | None = "Deletion curves",
) -> go.Figure:
    """Each model's probability of its class as the pixels its map ranks highest are removed (solid),
    beside the same for a random order (dotted, same colour). Area under the curve in the legend:
    a faithful map drops faster than random, so its area is smaller."""
    figure = go.Figure()
    for index, (name, curve) in enumerate(curves.items()):
        series = [(curve, f"{name} map", "solid")]
        if random and name in random:
            series.append((random[name], f"{name} random order", "dot"))
        for line, label, dash in series:
            label = f"{label} (area {line.auc:.2f})"
            figure.add_scatter(
                x=np.asarray(line.fractions, dtype=float),
                y=np.asarray(line.probabilities, dtype=float),
                mode="lines",
                name=label,
                line={"color": model_colour(index), "dash": dash},
                hovertemplate="%{x:.0%} removed: %{y:.1%}<extra>" + label + "</extra>",
            )
    figure = _layout(
        figure,
        title,
        400,
        xaxis={"tickformat": ".0%", "range": [0, 1], "title": "share of pixels removed, most attended first"},
        yaxis={"tickformat": ".0%", "range": [0, 1.02], "title": "probability of the explained class"},
    )
    figure.update_layout(legend={"y": -0.22})
    return figure


def mean_maps_figure(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    difference: Mapping[str, np.ndarray] | None = None,
    counts: Mapping[str, str | int] | None = None,
) -> go.Figure:
    """The paper's Figure 5 for two models: the mean map per emotion for A (top row), for B, and B
    minus A (bottom row, diverging, symmetric about 0 = white). `maps` maps each model name (A
    first) to {emotion: mean map}; `difference` (emotion -> map) replaces B's mean minus A's (when
    they were averaged over other faces); `counts` (emotion -> faces) goes beside each title."""
    if len(maps) != 2:
        raise ValueError(f"the figure needs two models' maps, got {len(maps)}")
    names = list(maps)
    first, second = (maps[name] for name in names)
    emotions = [e for e in first if e in second]
    if not emotions:
        raise ValueError("the two models share no emotion with a mean map")
    differences = {
        e: np.asarray(difference[e], float)
        if difference is not None and e in difference
        else np.asarray(second[e], float) - np.asarray(first[e], float)
        for e in emotions
    }
    limit = difference_limit(list(differences.values()))
    titles = [f"{e}" + (f" ({counts[e]})" if counts and e in counts else "") for e in emotions]
    titles += [""] * len(emotions) * 2
    figure = make_subplots(
        rows=3,
        cols=len(emotions),
        horizontal_spacing=0.01,
        vertical_spacing=0.04,
        subplot_titles=titles,
        row_titles=[f"A · {names[0]}", f"B · {names[1]}", "B − A"],
    )
    for column, emotion in enumerate(emotions, start=1):
        for row, (values, axis, label) in enumerate(
            (
                (np.asarray(first[emotion], float), "coloraxis", names[0]),
                (np.asarray(second[emotion], float), "coloraxis", names[1]),
                (differences[emotion], "coloraxis2", "B − A"),
            ),
            start=1,
        ):
            _face_panel(figure, None, values, {"row": row, "col": column}, 1.0, axis, f"{label} · {emotion}")
    _picture_axes(figure, 3 * len(emotions))
    axes = _colour_axes(limit, 1.04, 1.04)
    axes["coloraxis"]["colorbar"].update(len=0.6, y=0.68)
    axes["coloraxis2"]["colorbar"].update(len=0.3, y=0.15)
    return _layout(figure, None, 60 + 3 * 135, **axes)


def sanity_chart(rows: Mapping[str, Sequence[Mapping[str, Any]]], title: str | None = None) -> go.Figure:
    """The randomisation check: per model, the rank correlation of its maps with the trained model's
    after resetting the weights from the top layer down to each layer (line, 95 % band). A method that
    explains the model falls towards 0; one that stays high draws the picture, not the model."""
    figure = go.Figure()
    for index, (name, steps) in enumerate(rows.items()):
        labels = [f"{number}. {row['reset_to']}" for number, row in enumerate(steps, start=1)]
        colour = model_colour(index)
        figure.add_scatter(
            x=labels + labels[::-1],
            y=[row["hi"] for row in steps] + [row["lo"] for row in steps][::-1],
            fill="toself",
            fillcolor=colour,
            opacity=0.2,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
        )
        figure.add_scatter(
            x=labels,
            y=[row["mean"] for row in steps],
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line={"color": colour},
            customdata=[[row["lo"], row["hi"]] for row in steps],
            hovertemplate="reset down to %{x}: %{y:.2f} (95 % CI %{customdata[0]:.2f} to %{customdata[1]:.2f})"
            "<extra>" + name + "</extra>",
        )
    figure.add_hline(y=0, line={"color": "#999999", "dash": "dash", "width": 1})
    lowest = min([row["lo"] for steps in rows.values() for row in steps] + [-0.2])
    figure = _layout(
        figure,
        title,
        380,
        xaxis={"title": "weights reset from the top down to", "type": "category", "tickangle": -35},
        yaxis={"title": "Spearman with the trained maps", "range": [lowest - 0.05, 1.0]},
    )
    figure.update_layout(legend={"y": 1.02, "yanchor": "bottom"})
    return figure


def part_share_ci_chart(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> go.Figure:
    """Per facial part (one small chart each), every emotion's mean share of each model's map on that
    part, with its 95 % interval as an error bar. rows: {"model", "emotion", "part", "share", "low",
    "high"}, models in the order they first appear (A blue, B orange)."""
    parts = list(dict.fromkeys(row["part"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    if not parts:
        raise ValueError("no part shares to draw")
    columns = min(3, len(parts))
    lines = -(-len(parts) // columns)
    figure = make_subplots(
        rows=lines, cols=columns, subplot_titles=parts, horizontal_spacing=0.05, vertical_spacing=0.2
    )
    for number, part in enumerate(parts):
        line, column = number // columns + 1, number % columns + 1
        for index, name in enumerate(models):
            chosen = [row for row in rows if row["part"] == part and row["model"] == name]
            shares = np.array([float(row["share"]) for row in chosen])
            figure.add_bar(
                x=[row["emotion"] for row in chosen],
                y=shares,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.array([float(row["high"]) for row in chosen]) - shares,
                    "arrayminus": shares - np.array([float(row["low"]) for row in chosen]),
                    "thickness": 1,
                    "width": 2,
                },
                name=name,
                legendgroup=name,
                showlegend=number == 0,
                marker_color=model_colour(index),
                customdata=[[row["low"], row["high"]] for row in chosen],
                hovertemplate="%{x}: %{y:.1%} (95 % CI %{customdata[0]:.1%}–%{customdata[1]:.1%})<extra>"
                + f"{name} · {part}</extra>",
                row=line,
                col=column,
            )
    # Each part its own scale: "rest of the crop" holds most of a map and would flatten the others.
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    figure.update_xaxes(tickangle=-45)
    figure = _layout(figure, title, 80 + 260 * lines, barmode="group", bargap=0.2)
    figure.update_layout(legend={"y": 1.08, "yanchor": "bottom"}, margin={"t": 70})
    return figure
