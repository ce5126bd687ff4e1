"""Pictures of a two-model comparison as PNG files (matplotlib, no display): both maps on one colour
scale, their difference, and the deletion curves beside the random baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.explain.compare import FaceComparison

PIXELS = 240  # each picture's side
MAP_COLOURS = "jet"
DIFFERENCE_COLOURS = "RdBu_r"  # red: B looks more, blue: A looks more


def _figure(inches: float = 3.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(inches, inches), dpi=PIXELS / inches)
    return figure, figure.add_subplot()


def _map_axes(axes: Any, crop: np.ndarray, values: np.ndarray, title: str, **kwargs: Any) -> Any:
    axes.imshow(crop, cmap="gray", vmin=0, vmax=255)
    image = axes.imshow(values, alpha=0.5, **kwargs)
    axes.set_title(title, fontsize=8)
    axes.set_axis_off()
    return image


def save_comparison(comparison: FaceComparison, folder: Path, stem: str) -> list[Path]:
    """Write {stem}_{model}.png for both maps, {stem}_difference.png and {stem}_deletion.png; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = comparison.names
    written = []
    for name in comparison.names:
        figure, axes = _figure()
        shares = comparison.parts[name]
        top = max((p for p in shares if p != "rest"), key=shares.__getitem__)
        title = f"{name}: {top.replace('_', ' ')} {shares[top]:.0%}"
        _map_axes(
            axes,
            comparison.crop,
            comparison.maps[name],
            title,
            cmap=MAP_COLOURS,
            vmin=0,
            vmax=comparison.vmax,
        )
        written.append(_save(figure, folder / f"{stem}_{name}.png"))
    figure, axes = _figure()
    limit = max(float(np.abs(comparison.difference).max()), 1e-6)
    image = _map_axes(
        axes,
        comparison.crop,
        comparison.difference,
        f"{b} - {a}",
        cmap=DIFFERENCE_COLOURS,
        vmin=-limit,
        vmax=limit,
    )
    figure.colorbar(image, ax=axes, fraction=0.046)
    written.append(_save(figure, folder / f"{stem}_difference.png"))
    figure, axes = _figure(4.0)
    for name, colour in zip(comparison.names, ("tab:blue", "tab:orange"), strict=True):
        curve, random = comparison.deletion[name], comparison.random_deletion[name]
        axes.plot(curve.fractions, curve.probabilities, color=colour, label=f"{name} (AUC {curve.auc:.2f})")
        axes.plot(
            random.fractions,
            random.probabilities,
            color=colour,
            ls="--",
            label=f"{name} random ({random.auc:.2f})",
        )
    axes.set_xlabel(f"fraction removed (fill: {comparison.deletion[a].fill})", fontsize=8)
    axes.set_ylabel("probability of the explained class", fontsize=8)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    written.append(_save(figure, folder / f"{stem}_deletion.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    return path


def save_mean_maps(
    maps: dict[str, np.ndarray], names: tuple[str, str], path: Path, subset: str = "all"
) -> Path:
    """A grid of a study's mean maps per emotion (see core.evaluation.saliency_store.SaliencyStudy):
    rows A, B (one colour scale) and B - A, one column per emotion."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from core.labels import EMOTIONS

    a, b = names
    rows = [(a, maps[f"a_{subset}"]), (b, maps[f"b_{subset}"]), (f"{b} - {a}", maps[f"difference_{subset}"])]
    top = max(float(rows[0][1].max()), float(rows[1][1].max()), 1e-6)
    limit = max(float(np.abs(rows[2][1]).max()), 1e-6)
    figure = Figure(figsize=(1.3 * len(EMOTIONS) + 0.6, 4.2), dpi=100)
    grid = figure.subplots(3, len(EMOTIONS))
    for row, (label, values) in enumerate(rows):
        difference = row == 2
        for column, emotion in enumerate(EMOTIONS):
            axes = grid[row, column]
            image = axes.imshow(
                values[column],
                cmap=DIFFERENCE_COLOURS if difference else MAP_COLOURS,
                vmin=-limit if difference else 0,
                vmax=limit if difference else top,
            )
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(emotion, fontsize=9)
            if column == 0:
                axes.set_ylabel(label, fontsize=9)
        figure.colorbar(image, ax=list(grid[row]), fraction=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
